"""The director against real host LocalStack: plan, enqueue, resume, redeploy, bad input."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time

import pytest

from director.main import run_director
from fleet.job.messages import TranscriptionJob
from fleet.media.output_names import output_files
from fleet.transport.queue import JobQueue
from fleet.transport.sqs import SqsQueue
from tests.support.fleet_procs import fleet_env

pytestmark = pytest.mark.queue
ODD_NAMES = ["plain.mp3", "with space.wav", "ünïcødé/日本語.flac", "quotes/it's \"q\".m4a", "-dash.mp3", "video.MKV"]


@pytest.fixture
def corpus(tmp_path):
    source = tmp_path / "source"
    for name in ODD_NAMES:
        path = source / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"audio" + name.encode())
    (source / "notes.txt").write_text("not media")
    return source


@pytest.fixture
def sends(monkeypatch):
    """Counts the messages the director actually sends (a spy on our adapter, SQS stays real)."""
    sent: list[str] = []
    original = SqsQueue.send_batch

    def spy(self, messages):
        sent.extend(m.dedup_id for m in messages)
        return original(self, messages)

    monkeypatch.setattr(SqsQueue, "send_batch", spy)
    return sent


def drain(queue: JobQueue) -> list[TranscriptionJob]:
    jobs = []
    while (received := queue.receive_one(wait_s=1, visibility_timeout_s=60)) is not None:
        jobs.append(TranscriptionJob.model_validate_json(received.body))
        queue.delete(received.receipt_handle)
    return jobs


def mark_done(settings, job: TranscriptionJob) -> None:
    """Write the outputs a worker would, with the commit record at the head of the JSON."""
    for rel in output_files(job.output_base, settings.output_formats):
        path = settings.dest_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith(".json"):
            record = {"source": job.path, "fingerprint": job.fingerprint.model_dump(),
                      "settings_key": job.settings.key(), "settings": job.settings.model_dump()}
            path.write_text(json.dumps({"fleet": record, "segments": []}))
        else:
            path.write_text("transcript")


def run(settings, **kwargs):
    out = io.StringIO()
    code = run_director(settings, out=out, **kwargs).exit_code
    return code, out.getvalue().strip().splitlines()[-1]


def test_enqueues_every_file_once_with_relative_paths(localstack_endpoint, make_settings, open_queue, corpus):
    settings = make_settings(localstack_endpoint)
    # When the director runs on a fresh destination
    code, summary = run(settings)
    # Then every media file is on the queue once, by relative path, each in its own group
    assert code == 0
    assert summary == ("director: found 6, done 0, enqueued 6, already queued 0, failed before 0, skipped 0, settling 0, "
                       "foreign 0, ignored 1")
    jobs = drain(open_queue(settings))
    assert sorted(j.path for j in jobs) == sorted(ODD_NAMES)
    assert len({j.group_id() for j in jobs}) == 6
    assert all(not j.path.startswith("/") and str(corpus) not in j.model_dump_json() for j in jobs)
    assert {j.output_base for j in jobs} >= {"with space", "quotes/it's \"q\"", "-dash"}


def test_rerun_hours_later_enqueues_nothing_twice(localstack_endpoint, make_settings, open_queue, corpus, sends):
    settings = make_settings(localstack_endpoint)
    run(settings, clock=lambda: 1_000_000.0)
    assert len(sends) == 6
    # When the director runs again three hours later (far past SQS's 5-minute dedup window)
    code, summary = run(settings, clock=lambda: 1_000_000.0 + 3 * 3600)
    # Then nothing is sent, and the queue still holds each file once
    assert code == 0 and len(sends) == 6
    assert "enqueued 0, already queued 6" in summary
    assert open_queue(settings).counts().visible == 6


def test_redeploy_with_a_new_queue_enqueues_what_is_not_done_exactly_once(
    localstack_endpoint, make_settings, open_queue, corpus, sends
):
    settings = make_settings(localstack_endpoint)
    run(settings)
    queue = open_queue(settings)
    jobs = drain(queue)
    done_job = next(j for j in jobs if j.path == "plain.mp3")
    mark_done(settings, done_job)
    # Given the queue is gone (LocalStack restarted: free LocalStack keeps nothing)
    for url in (queue.info.url, queue.info.dlq_url):
        queue._client.delete_queue(QueueUrl=url)
    # When the director runs again
    code, summary = run(settings)
    # Then the five unfinished files are queued again, once each, and the finished one is not
    assert code == 0 and "done 1, enqueued 5, already queued 0" in summary
    again = drain(open_queue(settings))
    assert sorted(j.path for j in again) == sorted(set(ODD_NAMES) - {"plain.mp3"})


def test_a_ledger_whose_messages_are_gone_from_the_queue_waits_for_nothing(
    localstack_endpoint, make_settings, open_queue, corpus, sends
):
    # Given files queued, then their messages consumed without any transcript (e.g. a worker that
    # saw an unmounted disk and called every file gone), the queue now empty
    settings = make_settings(localstack_endpoint)
    run(settings, clock=lambda: 1_000_000.0)
    drain(open_queue(settings))
    # When the director runs again (past SQS's 5-minute deduplication window)
    code, summary = run(settings, clock=lambda: 1_000_000.0 + 3600)
    # Then the files are queued again instead of "already queued" until retention runs out
    assert code == 0 and "enqueued 6, already queued 0" in summary, summary
    assert len(sends) == 12
    # (SQS itself drops these re-sends while its 5-minute deduplication window lasts, in real time;
    # the queue stays empty, so a watching director sends again next round until one gets through.)


def test_the_director_refuses_an_empty_source_beside_transcripts(
    localstack_endpoint, make_settings, open_queue, corpus
):
    settings = make_settings(localstack_endpoint)
    run(settings)
    mark_done(settings, drain(open_queue(settings))[0])
    # Given the source disk is not mounted: its mount point is an empty folder
    for path in sorted(settings.source_dir.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    # Then the director plans nothing and says why, with exit code 2
    env = {"AWS_ENDPOINT_URL": localstack_endpoint, "FLEET_QUEUE_NAME": settings.queue_name}
    result = cli("director", "--source", str(settings.source_dir), "--dest", str(settings.dest_dir), env_extra=env)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"fleet: source folder {settings.source_dir} is empty but {settings.dest_dir} "
                                     "holds transcripts: is the disk mounted? nothing was planned")  # fmt: skip
    assert open_queue(settings).counts().pending == 0


def test_changed_source_is_enqueued_again(localstack_endpoint, make_settings, open_queue, corpus):
    settings = make_settings(localstack_endpoint)
    run(settings)
    for job in drain(open_queue(settings)):
        mark_done(settings, job)
    assert "done 6, enqueued 0" in run(settings)[1]
    # When one source is edited after it was transcribed
    changed = corpus / "with space.wav"
    changed.write_bytes(b"a new take, longer than before")
    os.utime(changed, ns=(1, 2))
    # Then exactly that one is enqueued again
    assert "done 5, enqueued 1" in run(settings)[1]
    (job,) = drain(open_queue(settings))
    assert job.path == "with space.wav" and job.fingerprint.mtime_ns == 2


def test_partial_outputs_are_redone(localstack_endpoint, make_settings, open_queue, corpus):
    settings = make_settings(localstack_endpoint)
    run(settings)
    jobs = drain(open_queue(settings))
    for job in jobs:
        mark_done(settings, job)
    (settings.dest_dir / "-dash.srt").unlink()
    assert "done 5, enqueued 1" in run(settings)[1]


def cli(*args, env_extra=None):
    env = {**os.environ, "FLEET_LOG_FORMAT": "json", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, env=env, timeout=120)


def test_cli_dry_run_prints_the_plan_and_enqueues_nothing(localstack_endpoint, make_settings, open_queue, corpus, tmp_path):
    settings = make_settings(localstack_endpoint)
    env = {"AWS_ENDPOINT_URL": localstack_endpoint, "FLEET_QUEUE_NAME": settings.queue_name}
    result = cli("director", "--dry-run", "--source", str(corpus), "--dest", str(tmp_path / "dest"), env_extra=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"plan: {corpus} -> {tmp_path / 'dest'}")
    assert "enqueue (6):" in lines and "  -dash.mp3  [new]" in lines
    assert lines[-1].startswith("director: found 6, done 0, would enqueue 6")
    assert open_queue(settings).counts().visible == 0
    assert not (tmp_path / "dest").exists()


def test_cli_missing_source_is_exit_2_and_nothing_enqueued(localstack_endpoint, make_settings, open_queue, tmp_path):
    settings = make_settings(localstack_endpoint)
    env = {"AWS_ENDPOINT_URL": localstack_endpoint, "FLEET_QUEUE_NAME": settings.queue_name}
    result = cli("director", "--source", str(tmp_path / "nope"), "--dest", str(tmp_path / "dest"), env_extra=env)
    assert result.returncode == 2
    assert result.stderr.strip() == f"fleet: source folder {tmp_path / 'nope'} does not exist"
    assert open_queue(settings).counts().visible == 0


def test_cli_unreachable_queue_retries_then_fails_in_one_line(corpus, tmp_path):
    from tests.support.ports import free_port

    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}", "FLEET_QUEUE_MAX_ATTEMPTS": "3"}
    result = cli("director", "--source", str(corpus), "--dest", str(tmp_path / "dest"), env_extra=env)
    assert result.returncode == 3
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("fleet:")]
    assert len(error_lines) == 1 and "unreachable after 3 attempts" in error_lines[0]


def test_files_still_being_copied_in_wait_for_a_later_round(localstack_endpoint, make_settings, open_queue, corpus):
    # Given files just written (as if still being copied in) and one finished long ago
    settings = make_settings(localstack_endpoint, min_age_s=60)
    old = time.time() - 3600
    os.utime(corpus / "plain.mp3", (old, old))
    # When the director runs
    code, summary = run(settings)
    # Then only the settled one is queued, the others are counted as settling
    assert code == 0 and "enqueued 1, already queued 0, failed before 0, skipped 0, settling 5," in summary, summary
    assert [j.path for j in drain(open_queue(settings))] == ["plain.mp3"]


def test_two_directors_at_once_take_turns_on_the_ledger(localstack_endpoint, make_settings, open_queue, corpus, monkeypatch):
    import threading

    from fleet.transport.sqs import SqsQueue

    # Given a director that is in the middle of sending (the watch service)
    settings = make_settings(localstack_endpoint)
    sending, release = threading.Event(), threading.Event()
    sent: list[str] = []
    original = SqsQueue.send_batch

    def slow_send(self, messages):
        sending.set()
        release.wait(60)
        sent.extend(m.dedup_id for m in messages)
        return original(self, messages)

    monkeypatch.setattr(SqsQueue, "send_batch", slow_send)
    results: dict[str, tuple[int, str]] = {}
    first = threading.Thread(target=lambda: results.update(first=run(settings)))
    first.start()
    assert sending.wait(60)
    # When a second one starts meanwhile (a manual ./build.sh director)
    second_done = threading.Event()
    second = threading.Thread(target=lambda: (results.update(second=run(settings)), second_done.set()))
    second.start()
    # Then it waits for the first to record what it sent, then finds everything already queued
    assert not second_done.wait(1.0), "the second director planned while the first held the ledger"
    release.set()
    first.join(60)
    second.join(60)
    assert "enqueued 6, already queued 0" in results["first"][1]
    assert "enqueued 0, already queued 6" in results["second"][1], results
    assert len(sent) == 6 and open_queue(settings).counts().visible == 6


def test_failures_of_deleted_sources_leave_status_but_not_while_their_folder_is_missing(
    localstack_endpoint, make_settings, corpus
):
    from fleet.job.identity import TranscriptionSettings
    from fleet.job.messages import SourceFingerprint
    from fleet.state.failures import write_failure_record
    from fleet.state.paths import failure_record_path

    # Given failure records of a file deleted since, and of a file whose folder (another disk) is not there now
    settings = make_settings(localstack_endpoint)
    for rel in ("deleted.mp3", "other disk/missing.mp3", "plain.mp3"):
        job = TranscriptionJob(path=rel, output_base=rel.rsplit(".", 1)[0], fingerprint=SourceFingerprint(size=1, mtime_ns=1),
                               settings=TranscriptionSettings(), enqueued_at=0)  # fmt: skip
        write_failure_record(settings.dest_dir, job, job.fingerprint, "not decodable", "", "w", None)
    # When the director runs
    code, _ = run(settings)
    # Then the deleted file's failure is resolved, the others stay
    assert code == 0
    assert not failure_record_path(settings.dest_dir, "deleted.mp3").exists()
    assert failure_record_path(settings.dest_dir, "other disk/missing.mp3").exists()
    assert failure_record_path(settings.dest_dir, "plain.mp3").exists()


def test_a_folders_settings_file_steers_its_files_and_a_change_requeues_only_them(
    localstack_endpoint, make_settings, open_queue, corpus, capsys
):
    settings = make_settings(localstack_endpoint)
    # Given a folder that says its recordings are Japanese, with names the model should spell
    (corpus / "ünïcødé" / ".whisper-fleet.toml").write_text('language = "ja"\nhotwords = "Kubernetes"\n')
    code, _ = run(settings)
    jobs = {job.path: job for job in drain(open_queue(settings))}
    assert code == 0 and len(jobs) == 6
    steered = jobs["ünïcødé/日本語.flac"].settings
    assert steered.language == "ja" and steered.decoding.hotwords == "Kubernetes"
    assert {job.settings for path, job in jobs.items() if not path.startswith("ünïcødé/")} == {settings.transcription()}
    for job in jobs.values():
        mark_done(settings, job)
    assert run(settings)[1].startswith("director: found 6, done 6, enqueued 0")
    # When the folder's file changes, only that folder is queued again
    (corpus / "ünïcødé" / ".whisper-fleet.toml").write_text('language = "ja"\ninitial_prompt = "Tokyo"\n')
    code, summary = run(settings)
    assert code == 0 and summary.startswith("director: found 6, done 5, enqueued 1")
    assert [job.settings.decoding.initial_prompt for job in drain(open_queue(settings))] == ["Tokyo"]
    # And a file the director cannot use is named with its line: its folder waits, the rest goes on, exit 2
    (corpus / "quotes" / ".whisper-fleet.toml").write_text('language = "de"\nlanguge = "fr"\n')
    (corpus / "quotes" / "new.mp3").write_bytes(b"audio")
    code, summary = run(settings)
    assert code == 2 and "skipped 2" in summary
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "fleet: quotes/.whisper-fleet.toml: line 2: unknown key 'languge'; allowed: language, task, audio_language, "
        "diarize, min_speakers, max_speakers, fallback_language, initial_prompt, hotwords"
    )
    assert drain(open_queue(settings)) == []


def test_a_video_on_a_stalled_share_costs_one_probe_timeout_then_an_hour_of_peace(localstack_endpoint, make_settings, open_queue,
                                                                                 tmp_path):  # fmt: skip
    # Given a video whose share does not answer (an ffprobe that never returns) in a media library checked for subtitles
    settings = make_settings(localstack_endpoint)
    (settings.source_dir / "Films").mkdir(parents=True)
    (settings.source_dir / "Films" / "Stalled.mkv").write_bytes(b"\0" * 1000)
    stub, calls = tmp_path / "bin", tmp_path / "probes.log"
    stub.mkdir()
    (stub / "ffprobe").write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexec sleep 3600\n')
    (stub / "ffprobe").chmod(0o755)
    env = fleet_env(settings, PATH=f"{stub}:{os.environ['PATH']}", FLEET_LAYOUT="media", WHISPER_LANGUAGE="en",
                    FLEET_MIN_AGE_S="0", FLEET_PROBE_TIMEOUT_S="1")  # fmt: skip

    def round_() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "app.cli", "director"], env=env, capture_output=True, text=True, timeout=120)

    # When the director runs a round, then another
    first = round_()
    # Then the first round gives up on the probe after its timeout, plans the video as unsubtitled and queues it
    assert first.returncode == 0 and "enqueued 1" in first.stdout, first.stdout + first.stderr
    assert "no answer from a video within the probe timeout" in first.stderr
    assert open_queue(settings).counts().visible == 1
    # And the next round does not wait on it again (its timeout is remembered for an hour)
    second = round_()
    assert second.returncode == 0 and "already queued 1" in second.stdout, second.stdout + second.stderr
    assert len(calls.read_text().splitlines()) == 1
