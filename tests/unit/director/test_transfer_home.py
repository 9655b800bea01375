"""The home side of remote workers, in process: staging decisions and FLAC, results committed, each message kind."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from director.transfer import home as home_module
from director.transfer.bring_in import bring_in
from director.transfer.home import HomeTransfer
from director.transfer.stage import stage_job
from fleet.job.identity import TranscriptionSettings
from fleet.job.messages import SourceFingerprint, TranscriptionJob
from fleet.process.notify import Notifier
from fleet.settings import FleetSettings
from fleet.state.paths import failure_record_path
from fleet.state.planned_settings import PlannedSettingsReader
from fleet.state.records import CommitRecord, FailureRecord
from fleet.transfer.documents import get_document, put_document
from fleet.transfer.protocol import (
    FailureReady,
    ResultBundle,
    ResultReady,
    StagedAudio,
    StagedOutcome,
    StageRequest,
    TransferKeys,
    outgoing,
)
from fleet.transport.memory import MemoryQueue
from fleet.transport.memory_objects import MemoryObjectStore
from fleet.transport.objects import BucketLocation
from worker.audio.samples import decode_audio

JFK = Path(__file__).resolve().parents[2] / "data" / "real-speech" / "jfk.flac"
LOCATION = BucketLocation("fleet", "home")


@pytest.fixture
def home(tmp_path):
    settings = FleetSettings(source_dir=tmp_path / "source", dest_dir=tmp_path / "dest", transfer_bucket=LOCATION)
    settings.source_dir.mkdir()
    settings.dest_dir.mkdir()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    return settings, MemoryObjectStore(LOCATION, 1 << 30), TransferKeys(LOCATION), scratch


def queued(settings: FleetSettings, rel: str) -> TranscriptionJob:
    info = os.stat(settings.source_dir / rel) if (settings.source_dir / rel).exists() else None
    fingerprint = SourceFingerprint(size=info.st_size if info else 1, mtime_ns=info.st_mtime_ns if info else 1)
    return TranscriptionJob(path=rel, output_base=rel.rsplit(".", 1)[0], fingerprint=fingerprint,
                            settings=TranscriptionSettings(), enqueued_at=1.0)  # fmt: skip


def stage(job, home) -> StagedAudio:  # noqa: ANN001
    settings, store, keys, scratch = home
    return stage_job(job, settings, store, keys, scratch, PlannedSettingsReader(settings.dest_dir))


def test_staged_audio_is_what_a_local_worker_would_decode_sample_for_sample(home, tmp_path):
    settings, store, keys, scratch = home
    shutil.copy(JFK, settings.source_dir / "jfk.flac")
    job = queued(settings, "jfk.flac")
    staged = stage(job, home)
    assert staged.outcome is StagedOutcome.STAGED and staged.fingerprint == job.fingerprint
    assert get_document(store, keys.staged(job), StagedAudio, scratch) == staged  # the manifest, written after the audio
    store.get_file(keys.audio(job), tmp_path / "fetched.flac")
    assert staged.size == (tmp_path / "fetched.flac").stat().st_size < JFK.stat().st_size
    assert np.array_equal(decode_audio(tmp_path / "fetched.flac", 60), decode_audio(JFK, 60))
    assert list(scratch.iterdir()) == []  # nothing left behind at home


def test_staging_says_why_there_is_nothing_to_stage(home):
    settings, store, keys, _ = home
    (settings.source_dir / "other.mp3").write_bytes(b"still here")
    assert stage(queued(settings, "gone.mp3"), home).outcome is StagedOutcome.SOURCE_GONE
    (settings.source_dir / "noise.mp3").write_bytes(b"not audio at all " * 100)
    broken = stage(queued(settings, "noise.mp3"), home)
    assert broken.outcome is StagedOutcome.FAILED and "not decodable" in broken.reason
    assert store.keys(LOCATION.key("audio")) == sorted([keys.staged(queued(settings, "gone.mp3")),
                                                        keys.staged(queued(settings, "noise.mp3"))])  # fmt: skip


def test_a_source_disk_that_is_away_is_not_a_gone_file(home):
    settings, *_ = home
    assert stage(queued(settings, "talks/a.mp3"), home).outcome is StagedOutcome.UNAVAILABLE  # empty source root


def bundle_for(job: TranscriptionJob, text: str = "Hello there.") -> ResultBundle:
    record = CommitRecord(source=job.path, fingerprint=job.fingerprint, settings_key=job.settings.key(), settings=job.settings,
                          language="en")  # fmt: skip
    result = {"segments": [{"text": f" {text}", "start": 0.0, "end": 1.0}], "language": "en"}
    rendered = {fmt: f"{fmt}: {text}\n" for fmt in job.formats if fmt != "json"}
    return ResultBundle(record=record, result=result, rendered=rendered)


def ready_in_bucket(job: TranscriptionJob, home) -> ResultReady:  # noqa: ANN001
    _, store, keys, scratch = home
    stored = put_document(store, keys.result(job), bundle_for(job), scratch)
    return ResultReady(job=job, key=stored.key, sha256=stored.sha256, worker="gaming-pc", audio_s=1.0)


def test_a_result_is_committed_json_last_and_the_jobs_objects_are_dropped(home):
    settings, store, keys, scratch = home
    (settings.source_dir / "a.mp3").write_bytes(b"x")
    job = queued(settings, "a.mp3")
    failure_record_path(settings.dest_dir, job.path).parent.mkdir(parents=True)
    failure_record_path(settings.dest_dir, job.path).write_text("{}")  # a last-attempt mark from an earlier delivery
    ready = ready_in_bucket(job, home)
    written = bring_in(ready, settings, store, keys, scratch, None)
    assert [p.name for p in written] == ["a.txt", "a.srt", "a.vtt", "a.tsv", "a.json"]
    assert (settings.dest_dir / "a.srt").read_text() == "srt: Hello there.\n"
    assert not failure_record_path(settings.dest_dir, job.path).exists()
    assert store.keys("") == []
    assert bring_in(ready, settings, store, keys, scratch, None) == []  # the same message again: nothing to do


def test_a_result_over_a_json_the_fleet_did_not_write_becomes_a_failure_record(home):
    settings, store, keys, scratch = home
    (settings.dest_dir / "a.json").write_text('{"segments": []}')  # a plain whisperX run's
    job = queued(settings, "a.mp3")
    assert bring_in(ready_in_bucket(job, home), settings, store, keys, scratch, None) == []
    assert (settings.dest_dir / "a.json").read_text() == '{"segments": []}'
    failure = FailureRecord.model_validate_json(failure_record_path(settings.dest_dir, job.path).read_text())
    assert "not written by whisper-fleet" in failure.reason and failure.worker == "gaming-pc"


def home_transfer(home) -> tuple[HomeTransfer, MemoryQueue]:  # noqa: ANN001
    settings, store, _, scratch = home
    queue = MemoryQueue(settings.transfer_queue_spec())
    queue.ensure()
    return HomeTransfer(settings, store, queue, Notifier(), scratch=scratch), queue


def test_each_kind_of_transfer_message_is_done_then_deleted(home):
    settings, store, keys, _ = home
    transfer, queue = home_transfer(home)
    job = queued(settings, "gone.mp3")
    failure = FailureRecord(source="b.mp3", fingerprint=job.fingerprint, settings_key="k", reason="no audio stream",
                            failed_at=1.0)  # fmt: skip
    queue.send_batch([outgoing(StageRequest(job=job, worker="w")), outgoing(FailureReady(record=failure))])
    for _ in range(2):
        transfer.handle(queue.receive_one(0, 60))
    transfer._stagers.shutdown(wait=True)  # noqa: SLF001 - staging runs beside the loop
    assert queue.drained()
    assert store.head(keys.staged(job)) is not None  # the manifest says "source gone": the worker settles at once
    recorded = FailureRecord.model_validate_json(failure_record_path(settings.dest_dir, "b.mp3").read_text())
    assert recorded.reason == "no audio stream"


def test_a_result_the_destination_cannot_take_now_comes_back_later(home, monkeypatch):
    settings, store, keys, _ = home
    transfer, queue = home_transfer(home)
    job = queued(settings, "a.mp3")

    def full(*args: object) -> list[Path]:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(home_module, "bring_in", full)
    queue.send_batch([outgoing(ready_in_bucket(job, home))])
    transfer.handle(queue.receive_one(0, 60))
    assert queue.counts().in_flight == 1 and store.head(keys.result(job)) is not None  # kept for the retry, nothing lost


def test_staged_audio_nobody_fetched_is_swept_after_hours_fresh_audio_stays(home, tmp_path):
    settings, store, keys, scratch = home
    transfer, _ = home_transfer(home)
    (tmp_path / "a.flac").write_bytes(b"audio")
    for rel, age_h in (("old.mp3", 7), ("new.mp3", 1)):
        job = queued(settings, rel)
        store.put_file(keys.audio(job), tmp_path / "a.flac")
        put_document(store, keys.staged(job), StagedAudio(outcome=StagedOutcome.STAGED, staged_at=1e9 - age_h * 3600), scratch)
    assert transfer.sweep_stale_staging(now=1e9) == 1
    assert store.keys("") == sorted([keys.audio(queued(settings, "new.mp3")), keys.staged(queued(settings, "new.mp3"))])


def test_audio_is_staged_ahead_three_files_per_live_remote_worker_and_dropped_once_done(home, tmp_path):
    import time

    from fleet.state.worker_record import WorkerActivity, WorkerRecord, worker_record_path, write_worker_record

    settings, store, keys, _ = home
    transfer, _ = home_transfer(home)
    jobs = []
    for i in range(5):
        shutil.copy(JFK, settings.source_dir / f"talk {i}.flac")
        jobs.append(queued(settings, f"talk {i}.flac"))
    transfer.offer(jobs)
    assert transfer.stage_ahead() == 0  # no remote worker: nothing is copied into the bucket for nobody
    record = WorkerRecord(worker="gaming-pc-1", lost_after_s=35, remote=True, state=WorkerActivity.IDLE, last_beat=time.time())
    write_worker_record(worker_record_path(settings.dest_dir, record.worker), record)
    assert transfer.stage_ahead() == 3
    assert [store.head(keys.staged(job)) is not None for job in jobs] == [True, True, True, False, False]
    bring_in(ready_in_bucket(jobs[0], home), settings, store, keys, tmp_path / "scratch", None)  # the first one came home
    assert transfer.stage_ahead() == 1 and store.head(keys.staged(jobs[3])) is not None


def test_a_destination_away_is_waited_for_and_never_created_on_the_bare_mount_point(home):
    settings, store, keys, _ = home
    transfer, queue = home_transfer(home)
    job = queued(settings, "a.mp3")
    queue.send_batch([outgoing(ready_in_bucket(job, home))])
    settings.dest_dir.rmdir()  # the share is not mounted
    transfer.handle(queue.receive_one(0, 60))
    transfer.copy_worker_records()
    assert not settings.dest_dir.exists() and queue.counts().in_flight == 1 and store.head(keys.result(job)) is not None
