"""The loop's parts that need no queue: the lease, the heartbeat, signals, draining."""

from __future__ import annotations

import time
from types import SimpleNamespace

from fleet.job.identity import TranscriptionSettings
from fleet.job.messages import SourceFingerprint, TranscriptionJob
from fleet.settings import FleetSettings
from fleet.transport.queue import QueueError, ReceivedMessage
from fleet.transport.sqs import SqsQueue
from worker.job.result import JobResult, Outcome
from worker.queue_loop.loop import Worker
from worker.queue_loop.shutdown import Shutdown


class StaleQueue:
    """A queue whose heartbeat is refused: the receipt handle now belongs to someone else."""

    info = SimpleNamespace(identity="queue@1")
    spec = SimpleNamespace(max_receive_count=5)

    def __init__(self) -> None:
        self.calls: list[str] = []

    def change_visibility(self, handle, timeout_s):
        self.calls.append(f"visibility {timeout_s}")
        raise QueueError("change visibility failed: ReceiptHandleIsInvalid: gone", "ReceiptHandleIsInvalid")

    def lookup(self):
        return self.info  # the same queue: the handle was refused because another worker has the message

    def delete(self, handle):
        self.calls.append("delete")


def test_a_refused_heartbeat_means_the_worker_neither_writes_nor_deletes(monkeypatch, tmp_path):
    settings = FleetSettings(heartbeat_interval_s=0.1, visibility_timeout_s=5, dest_dir=tmp_path)
    queue = StaleQueue()
    seen_lease = []

    def slow_job(job, ctx, lease, on_stage, on_decoded):
        deadline = time.monotonic() + 3
        while lease.held() and time.monotonic() < deadline:
            time.sleep(0.05)
        seen_lease.append(lease.held())
        return JobResult(Outcome.LEASE_LOST if not lease.held() else Outcome.TRANSCRIBED)

    worker = Worker(settings, queue, ctx=None, shutdown=Shutdown(), rss_mb=lambda: 0, run_job=slow_job)
    pipeline = SimpleNamespace(fallbacks={}, device_in_use=lambda: "cpu", loaded=True)
    worker.ctx = SimpleNamespace(pipeline=pipeline, worker_id="w", owner=None)
    job = TranscriptionJob(path="a.mp3", output_base="a", fingerprint=SourceFingerprint(size=1, mtime_ns=1),
                           settings=TranscriptionSettings(), enqueued_at=0)  # fmt: skip
    worker.handle(ReceivedMessage("m1", "handle", job.model_dump_json(), 1))
    assert seen_lease == [False]
    assert "delete" not in queue.calls and queue.calls[0] == "visibility 5"


class SignalDuringPoll:
    """A queue whose long poll returns a message while the stop signal arrives (the race at a redeploy)."""

    def __init__(self, shutdown: Shutdown, body: str) -> None:
        self.shutdown, self.body, self.calls = shutdown, body, []

    def receive_one(self, wait_s, visibility_timeout_s=None):
        import signal

        self.shutdown._handle(signal.SIGTERM, None)  # the signal lands while the response is on its way
        return ReceivedMessage("m1", "handle", self.body, 1)

    def hand_back(self, message, group_id):
        self.calls.append(("hand back", message.message_id, group_id))


def test_a_message_received_as_the_stop_signal_arrives_is_handed_back_at_once(tmp_path):
    # Given a worker idle in its long poll
    job = TranscriptionJob(path="talks/a.mp3", output_base="talks/a", fingerprint=SourceFingerprint(size=1, mtime_ns=1),
                           settings=TranscriptionSettings(), enqueued_at=0)  # fmt: skip
    shutdown = Shutdown()
    queue = SignalDuringPoll(shutdown, job.model_dump_json())
    (tmp_path / "source" / "talks").mkdir(parents=True)
    settings = FleetSettings(source_dir=tmp_path / "source", dest_dir=tmp_path / "dest", min_free_mb=0)
    settings.dest_dir.mkdir()
    worker = Worker(settings, queue, ctx=None, shutdown=shutdown, rss_mb=lambda: 0)
    # When the stop signal arrives just as a message comes back from the poll
    assert worker.run() == 0
    # Then the message is handed back at once (a fresh copy, visible now), not hidden for a visibility timeout
    assert queue.calls == [("hand back", "m1", job.group_id())]


def test_a_lease_is_held_by_time_not_by_hope_and_an_orphaned_one_may_still_write():
    from worker.job.lease import Lease

    now = [100.0]
    lease = Lease(visibility_timeout_s=60, clock=lambda: now[0])
    # Held for the visibility timeout less a margin after each successful heartbeat
    now[0] = 154.9
    assert lease.held()
    lease.extended(150.0)
    now[0] = 204.9
    assert lease.held()
    # Past that, however long the heartbeat call keeps retrying, the message may be someone else's
    now[0] = 205.0
    assert not lease.held()
    lease.extended(205.0)  # a late success does not revive it
    assert not lease.held()
    # But when the queue that held the message is gone, nobody else can own it: writing is safe
    lease.orphan()
    assert lease.held() and lease.orphaned


def test_heartbeats_use_a_client_with_short_timeouts_and_few_attempts():
    from fleet.transport.sqs import HEARTBEAT_ATTEMPTS, HEARTBEAT_TIMEOUT_S

    settings = FleetSettings(aws_endpoint_url="http://127.0.0.1:9", queue_timeout_s=10, queue_max_attempts=6)
    config = SqsQueue.connect(settings.queue_endpoint(), settings.queue_spec(), for_heartbeats=True)._client.meta.config
    assert (config.connect_timeout, config.read_timeout, config.retries["total_max_attempts"]) == (
        HEARTBEAT_TIMEOUT_S, HEARTBEAT_TIMEOUT_S, HEARTBEAT_ATTEMPTS)  # fmt: skip
    long_poll = SqsQueue.connect(settings.queue_endpoint(), settings.queue_spec())._client.meta.config
    assert long_poll.read_timeout == 35 and long_poll.retries["total_max_attempts"] == 6


class IdleQueue:
    """An empty queue: every poll comes back with nothing; `drained()` answers as told."""

    def __init__(self, drained: list[bool]) -> None:
        self.waits: list[int] = []
        self.answers = drained

    def receive_one(self, wait_s, visibility_timeout_s=None):
        self.waits.append(wait_s)
        if len(self.waits) > 10:
            raise AssertionError("the worker kept polling after the queue was drained")
        return None

    def drained(self):
        return self.answers.pop(0)


def test_sigusr1_makes_an_idle_worker_leave_once_the_queue_is_drained_without_a_long_poll(tmp_path):
    import os
    import signal

    # Given a worker that long-polls an empty queue, with its signal handlers installed
    settings = FleetSettings(source_dir=tmp_path / "source", dest_dir=tmp_path / "dest", min_free_mb=0, receive_wait_s=20)
    (settings.source_dir / "talks").mkdir(parents=True)  # an empty source looks like a share not mounted
    settings.dest_dir.mkdir()
    shutdown = Shutdown()
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)}
    shutdown.install()
    try:
        queue = IdleQueue(drained=[False, True])  # another worker still holds the last file at first
        worker = Worker(settings, queue, ctx=None, shutdown=shutdown, rss_mb=lambda: 0)
        # When the local run says everything is queued (SIGUSR1) before the worker's first poll
        os.kill(os.getpid(), signal.SIGUSR1)
        # Then the worker short-polls until the queue is drained, and leaves by itself
        assert worker.run() == 0
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    assert queue.waits == [0, 0] and queue.answers == []
    assert not shutdown.requested.is_set()  # not a stop: nothing was handed back or cut short
