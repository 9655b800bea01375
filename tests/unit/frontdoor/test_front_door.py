"""The front door's decisions, in this process: a real HTTP server and Bazarr's requests, the memory queue for the fleet."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests

from fleet.job.identity import TranscriptionSettings
from fleet.job.messages import TranscriptionJob
from fleet.state.atomic import write_atomic
from fleet.state.failures import write_failure_record
from fleet.transport.memory import MemoryQueue
from fleet.transport.spec import FRONT_DOOR_QUEUE, load_queue_spec
from frontdoor.api import FrontDoor, build_app
from frontdoor.detect import LanguageDetector, stretches
from frontdoor.jobs import FrontDoorJobs
from frontdoor.settings import FrontDoorSettings
from tests.support.front_door import BazarrClient, serving
from tests.support.paths import REPO_ROOT
from tests.support.ports import free_port

SRT = "1\n00:00:00,000 --> 00:00:01,500\nAnd so my fellow Americans.\n"


def pcm(seconds: float, seed: int = 0) -> bytes:
    """Quiet noise as Bazarr sends audio: s16le mono 16 kHz."""
    return (np.random.default_rng(seed).normal(0, 300, int(seconds * 16000))).astype("<i2").tobytes()


def spec():
    return load_queue_spec(REPO_ROOT / "create_queue.json", "door-test").companion(FRONT_DOOR_QUEUE)


class Door:
    """A front door on a free port over `dest`, and the queue behind it."""

    def __init__(self, dest: Path, queue: MemoryQueue, **settings: object) -> None:
        self.dest, self.queue = dest, queue
        self.jobs = FrontDoorJobs(dest, queue)
        self.jobs.prepare()
        door_settings = FrontDoorSettings(**{"wait_s": 1.0, **settings})
        detector = LanguageDetector(lambda: None, 1)
        self.door = FrontDoor(door_settings, self.jobs, detector, TranscriptionSettings())

    def messages(self) -> list[TranscriptionJob]:
        """Every message on the queue, received and released again."""
        seen = []
        while (message := self.queue.receive_one(0, 30)) is not None:
            seen.append(message)
        for message in seen:
            self.queue.change_visibility(message.receipt_handle, 0)
        return [TranscriptionJob.model_validate_json(message.body) for message in seen]

    def finish(self, job: TranscriptionJob, srt: str = SRT) -> None:
        """What a worker's commit leaves in the results: the formats, then the JSON twin with its record."""
        results = self.jobs.results
        write_atomic(results / f"{job.output_base}.srt", srt)
        record = {"source": job.path, "fingerprint": job.fingerprint.model_dump(), "settings_key": job.settings.key()}
        write_atomic(results / f"{job.output_base}.json", json.dumps({"fleet": record, "segments": []}))


@pytest.fixture()
def door(tmp_path: Path):
    queue = MemoryQueue(spec())
    queue.ensure()
    made = Door(tmp_path / "dest", queue)
    with serving(build_app(made.door), free_port()) as url:
        made.client = BazarrClient(url, timeout_s=30)
        made.url = url
        yield made


def test_status_answers_bazarrs_test_connection_with_a_version(door):
    answer = door.client.status()
    assert answer.status_code == 200 and answer.json()["version"]


def test_a_job_is_queued_once_answered_202_empty_past_the_wait_and_the_same_upload_later_gets_the_srt(door):
    audio = pcm(3)
    first = door.client.asr(audio, "transcribe", "en")
    assert (first.status_code, first.content) == (202, b"")  # not a subtitle, not a timeout: Bazarr drops it quietly
    [job] = door.messages()
    assert job.settings.language == "en" and job.settings.task == "transcribe" and job.path.endswith(".flac")
    assert (door.jobs.audio / job.path).stat().st_size < len(audio)  # kept as FLAC
    again = door.client.asr(audio, "transcribe", "en")  # Bazarr's next search re-uploads the same track
    assert again.status_code == 202 and len(door.messages()) == 1  # joined, not queued twice
    door.finish(job)
    done = door.client.asr(audio, "transcribe", "en")
    assert done.status_code == 200 and done.content.decode() == SRT
    assert len(door.messages()) == 1
    assert not (door.jobs.audio / job.path).exists()  # settled: the FLAC is no longer needed
    assert door.client.status().json()["jobs"] == {"open": 0, "done": 1, "failed": 0}


def test_requests_during_a_job_wait_for_it_and_all_get_the_srt(door):
    audio = pcm(2, seed=1)
    door.door.settings = door.door.settings.model_copy(update={"wait_s": 30.0})
    answers: list[requests.Response] = []
    requests_sent = [threading.Thread(target=lambda: answers.append(door.client.asr(audio, "transcribe", "en")))
                     for _ in range(3)]  # fmt: skip
    for thread in requests_sent:
        thread.start()
    jobs: list[TranscriptionJob] = []
    while not jobs:
        jobs = door.messages()
    door.finish(jobs[0])
    for thread in requests_sent:
        thread.join(30)
    assert [a.status_code for a in answers] == [200, 200, 200] and {a.text for a in answers} == {SRT}
    assert len(door.messages()) == 1


def test_task_and_language_make_different_jobs_of_the_same_audio(door):
    audio = pcm(2, seed=2)
    door.client.asr(audio, "transcribe", "fr")
    door.client.asr(audio, "translate", "fr")
    jobs = door.messages()
    assert sorted(job.settings.task for job in jobs) == ["transcribe", "translate"]
    assert len({job.output_base for job in jobs}) == 2


def test_a_failed_job_answers_its_reason_in_json_never_text_that_parses_as_a_subtitle(door):
    audio = pcm(2, seed=3)
    door.client.asr(audio, "transcribe", "en")
    [job] = door.messages()
    write_failure_record(door.jobs.results, job, job.fingerprint, "audio has no samples", "", "worker-1")
    answer = door.client.asr(audio, "transcribe", "en")
    assert answer.status_code == 422 and "audio has no samples" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("body", "params", "status", "says"),
    [
        (b"", {}, 400, "empty"),
        (b"\x00\x01\x02", {}, 400, "truncated"),
        (pcm(1), {"language": "klingon"}, 400, "unknown language"),
        (b"PK\x03\x04 this is a zip file, not audio", {"encode": "true"}, 400, "not audio"),
        (b"RIFF\x00\x00\x00\x00WAVEjunk", {}, 400, "not audio"),  # a container's signature is read as one
    ],
)
def test_bad_uploads_get_a_clear_error_and_queue_nothing(door, body, params, status, says):
    answer = door.client.session.post(f"{door.url}/asr", params={"task": "transcribe", "output": "srt", "encode": "false",
                                                                 **params}, files={"audio_file": body}, timeout=30)  # fmt: skip
    assert answer.status_code == status and says in answer.json()["detail"]
    assert door.messages() == [] and list(door.jobs.uploads.iterdir()) == []


def test_a_body_without_the_audio_field_or_not_multipart_is_refused(door):
    wrong_field = door.client.session.post(f"{door.url}/asr", files={"file": pcm(1)}, timeout=30)
    assert wrong_field.status_code == 400 and "audio_file" in wrong_field.json()["detail"]
    raw_body = door.client.session.post(f"{door.url}/asr", data=pcm(1), timeout=30)
    assert raw_body.status_code == 400 and "multipart" in raw_body.json()["detail"]


def test_an_upload_over_the_cap_is_refused_before_it_is_stored(tmp_path):
    queue = MemoryQueue(spec())
    queue.ensure()
    small = Door(tmp_path / "dest", queue, max_upload_mb=1)
    with serving(build_app(small.door), free_port()) as url:
        answer = BazarrClient(url).asr(pcm(40), "transcribe", "en")  # 1.28 MB
        assert answer.status_code == 413 and "FLEET_ASR_MAX_UPLOAD_MB" in answer.json()["detail"]
    assert list(small.jobs.uploads.iterdir()) == [] and small.messages() == []


def test_basic_auth_when_configured(tmp_path):
    queue = MemoryQueue(spec())
    queue.ensure()
    guarded = Door(tmp_path / "dest", queue, user="bazarr", password="correct horse battery")
    with serving(build_app(guarded.door), free_port()) as url:
        assert requests.get(f"{url}/status", timeout=10).status_code == 401
        assert requests.get(f"{url}/status", auth=("bazarr", "wrong password!"), timeout=10).status_code == 401
        assert requests.get(f"{url}/status", auth=("bazarr", "correct horse battery"), timeout=10).status_code == 200


def test_a_restarted_door_sends_open_jobs_again_to_a_queue_that_lost_them(tmp_path):
    queue = MemoryQueue(spec())
    queue.ensure()
    first = Door(tmp_path / "dest", queue)
    with serving(build_app(first.door), free_port()) as url:
        BazarrClient(url).asr(pcm(2, seed=4), "transcribe", "en")
    [job] = first.messages()
    queue.delete_queues()  # LocalStack restarted: the queue came back empty
    second = Door(tmp_path / "dest", queue)
    assert second.jobs.look_after() == 1
    assert [j.dedup_id() for j in second.messages()] == [job.dedup_id()]
    assert second.jobs.look_after() == 0  # the queue that holds it is not sent it twice


def test_the_language_detector_looks_along_the_whole_track_not_at_its_start():
    hour = 3600 * 16000
    places = stretches(hour)
    assert len(places) == 8 and places[0][0] == 0 and places[-1][1] == hour
    assert stretches(90 * 16000) == [(0, 60 * 16000), (60 * 16000, 90 * 16000)]


def test_two_hundred_parallel_requests_are_each_answered_and_the_door_keeps_serving(door):
    bodies = [pcm(0.5, seed=100 + i % 40) for i in range(200)]  # 40 recordings, each asked five times
    with ThreadPoolExecutor(200) as pool:
        answers = list(pool.map(lambda body: door.client.asr(body, "transcribe", "en").status_code, bodies))
    assert answers == [202] * 200  # none refused, none failed: each queued or joined, then told to ask again
    assert len(door.messages()) == 40
    assert door.client.status().status_code == 200 and list(door.jobs.uploads.iterdir()) == []
