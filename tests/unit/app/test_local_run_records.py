"""What a local run counts: its own workers' files, and only this run's files of remote workers that serve many runs."""

from __future__ import annotations

import time

from app.run_records import RunRecords
from fleet.state.worker_record import WorkerRecord, worker_record_path, write_worker_record


def record(dest, worker: str, pid: int, transcribed: int, *, remote: bool = False, started_at: float = 100.0) -> None:  # noqa: ANN001
    write_worker_record(worker_record_path(dest, worker),
                        WorkerRecord(worker=worker, lost_after_s=35, pid=pid, started_at=started_at, remote=remote,
                                     outcomes={"transcribed": transcribed}, audio_s_done=10.0 * transcribed))  # fmt: skip


def test_a_remote_worker_counts_from_where_it_stood_when_the_run_began(tmp_path):
    record(tmp_path, "gaming-pc", 4242, 7, remote=True)
    record(tmp_path, "local-1", 11, 3)  # an earlier run's local worker: not this run's
    records = RunRecords(tmp_path, {12}, time.time())
    records.note_remote_workers()
    record(tmp_path, "gaming-pc", 4242, 9, remote=True)
    record(tmp_path, "local-1", 12, 1)
    assert records.outcomes()["transcribed"] == 3
    assert records.by_remote_workers() == 2
    assert records.audio_s_done() == 30.0


def test_a_remote_worker_restarted_since_counts_all_it_did(tmp_path):
    record(tmp_path, "gaming-pc", 4242, 7, remote=True)
    records = RunRecords(tmp_path, set(), time.time())
    records.note_remote_workers()
    record(tmp_path, "gaming-pc", 4243, 2, remote=True, started_at=200.0)
    record(tmp_path, "rented-gpu", 7, 1, remote=True)  # first seen during the run
    assert records.by_remote_workers() == 3
    assert records.settled() == 3


def test_a_local_workers_pid_on_a_remote_machine_is_not_mistaken_for_ours(tmp_path):
    records = RunRecords(tmp_path, {4242}, time.time())
    records.note_remote_workers()
    record(tmp_path, "gaming-pc", 4242, 2, remote=True)
    assert records.by_remote_workers() == 2 and records.outcomes()["transcribed"] == 2
