"""The worker loop: receive one message, run it in the job thread while heartbeating, then ack."""

from __future__ import annotations

import contextlib
import contextvars
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import structlog
from pydantic import ValidationError

from fleet.job.messages import TranscriptionJob, job_group_id
from fleet.process import exits
from fleet.process.notify import Notifier
from fleet.roots.readiness import RootsWatch, models_problem, scratch_problem
from fleet.settings import FleetSettings
from fleet.state.worker_record import WorkerActivity
from fleet.transport.backoff import retry_delay_s
from fleet.transport.queue import JobQueue, QueueError, ReceivedMessage
from worker.job.lease import Lease
from worker.job.result import JobResult, Outcome
from worker.job.run import JobContext, run_job
from worker.queue_loop.beacon import Beacon, WorkerState, lost_after_s
from worker.queue_loop.deliveries import TIME_LIMIT, DeliveryJournal, job_time_limit_s
from worker.queue_loop.heartbeat import Heartbeat
from worker.queue_loop.idle import IdleUnload
from worker.queue_loop.lane import FrontDoorLane
from worker.queue_loop.settler import Settler
from worker.queue_loop.shutdown import Shutdown, exit_now

log = structlog.get_logger()
WAIT_SLICE_S = 0.25  # how often the loop looks at the job, the heartbeat and the stop flag
INVALID_GROUP = "invalid-messages"
DRAIN_POLL_S = 0.5
QUEUE_RETRY_BASE_S, QUEUE_RETRY_CAP_S = 2, 60  # a lost queue is asked again after 2, 4, 8 ... s, at most 60 s apart


def job_places(settings: FleetSettings) -> tuple[Callable[[], str | None], ...]:
    """Where a job needs room besides the roots: the scratch folder (TMPDIR) and the models folder."""
    scratch = Path(tempfile.gettempdir())
    return (lambda: scratch_problem(scratch, settings.min_scratch_mb), lambda: models_problem(settings.models_dir))


class Worker:
    """Owns the queue connection; the job thread only touches files."""

    def __init__(
        self,
        settings: FleetSettings,
        queue: JobQueue,
        ctx: JobContext,
        shutdown: Shutdown,
        rss_mb: Callable[[], float],
        beacon: Beacon | None = None,
        heartbeat_queue: JobQueue | None = None,
        run_job: Callable[..., JobResult] = run_job,
    ) -> None:
        self.settings = settings
        self.queue = queue
        # Short timeouts, few attempts (SqsQueue.connect(for_heartbeats=True)); the same client in unit tests.
        self.heartbeat_queue = heartbeat_queue or queue
        self.ctx = ctx
        self.run_job = run_job  # the job in the job thread; tests of the loop give it a stand-in
        self.shutdown = shutdown
        self.rss_mb = rss_mb
        self.beacon = beacon or Beacon(
            settings.dest_dir, WorkerState(worker=settings.worker_id, lost_after_s=lost_after_s(settings.receive_wait_s))
        )
        self.state = self.beacon.state
        self.roots = RootsWatch(settings.source_dir, settings.dest_dir, settings.min_free_mb, settings.layout == "media",
                                job_places(settings))  # fmt: skip
        self.journal: DeliveryJournal | None = None  # the running file's, while one runs
        self.notifier = Notifier(settings.notify_urls, settings.webhook_url)  # closed by run_worker
        self.settler = Settler(queue, settings, self.notifier, ctx.owner if ctx else None)
        self.idle = IdleUnload(settings.unload_idle_s, lambda: self.ctx.pipeline.loaded, lambda: self.ctx.pipeline.unload())
        self.lane: FrontDoorLane | None = None  # the front door's jobs, asked for first (worker.queue_loop.lane)

    def run(self, until_empty: bool = False, max_files: int = 0) -> int:
        """Take messages until stopped, recycled, or (with until_empty) the queue is drained."""
        max_files = max_files or self.settings.max_files
        queue_errors = 0
        backlog = False  # the folder's queue gave a message last time: ask again without waiting
        while not self.shutdown.requested.is_set():
            draining = until_empty or self.shutdown.drain.is_set()
            # Draining: no long poll, so the last worker notices the empty queue at once, not 20 s later.
            wait_s = 0 if draining else self.settings.receive_wait_s
            if self._recycle_due(max_files):
                break
            # The lane first, and with the long poll (a front-door job is taken the moment it comes); it needs only
            # the destination, so it is served while the source is away too.
            if self.lane is not None and self.lane.take_one(0 if draining or backlog or self.state.waiting else wait_s):
                self.idle.worked()
                continue
            if self._roots_unusable():
                self._unload_if_idle()  # a share away for hours need not hold the GPU meanwhile
                continue
            self.state.state = WorkerActivity.IDLE
            self.beacon.beat()
            wait_s = 0 if self.lane is not None else wait_s
            try:
                # Not interrupted by a stop signal: a message already on its way back would be lost for a
                # whole visibility timeout. A stop waits for this poll (at most FLEET_RECEIVE_WAIT_S).
                message = self.queue.receive_one(wait_s, self.settings.visibility_timeout_s)
                queue_errors = 0
                backlog = message is not None
            except QueueError as exc:
                queue_errors += 1
                self._wait_for_queue(exc, queue_errors)
                continue
            if message is not None and self.shutdown.requested.is_set():
                self.hand_back_unstarted(message)
                break
            if message is None:
                self._unload_if_idle()
                if draining:
                    if self.queue.drained():
                        log.info("queue drained, exiting", files_done=self.state.files_done)
                        break
                    self.shutdown.requested.wait(DRAIN_POLL_S)  # others still hold messages that may come back
                continue
            self.handle(message)
            self.idle.worked()
        self.state.state = WorkerActivity.STOPPED
        self.beacon.beat(force=True)
        return 0

    def _unload_if_idle(self) -> None:
        if self.idle.unload_if_idle():
            self.state.models_unloaded = True
            self.beacon.beat(force=True)

    def handle(self, message: ReceivedMessage) -> None:
        """Validate, process with a heartbeat, then acknowledge according to the outcome."""
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(message_id=message.message_id)
        try:
            job = TranscriptionJob.model_validate_json(message.body)
        except ValidationError as exc:
            reason = f"invalid message: {exc.errors()[0]['msg']} at {'.'.join(map(str, exc.errors()[0]['loc'])) or 'body'}"
            log.error("message rejected", reason=reason)
            self.settler.ack(lambda: self.queue.dead_letter(message, INVALID_GROUP, reason))
            return
        structlog.contextvars.bind_contextvars(file=job.path)
        self.journal = journal = DeliveryJournal(self.settings.dest_dir, job.path, self.ctx.owner)
        if self.settler.died_of_it_before(message, job, journal):
            self.journal = None
            return
        log.info("file started", receive_count=message.receive_count, output=job.output_base)
        journal.begin(self.settings.worker_id, message.receive_count, self.state.memory_limit_mb)
        self.state.start_job(job.path, message.receive_count)
        self.beacon.beat(force=True)
        if message.receive_count >= self.queue.spec.max_receive_count > 1:
            self.settler.mark_last_attempt(job, message.receive_count)
        started = time.monotonic()
        result, lease = self._run_with_heartbeat(message, job)
        elapsed = time.monotonic() - started
        self.settler.settle(message, job, result, journal, lease.orphaned)
        self.journal = None
        self.state.end_job(result.outcome.value, result.outcome is Outcome.TRANSCRIBED, result.outcome is Outcome.FAILED,
                           result.audio_s)  # fmt: skip
        self.state.fallbacks = self.ctx.pipeline.fallbacks
        self.state.device = self.ctx.pipeline.device_in_use()  # a worker that moved to the CPU says so
        self.state.models_unloaded = not self.ctx.pipeline.loaded  # a job that needed no model leaves them unloaded
        self.beacon.beat(force=True)
        rtf = round(elapsed / result.audio_s, 3) if result.audio_s else None
        log.info(
            "file finished", outcome=result.outcome.value, reason=result.reason or None, elapsed_s=round(elapsed, 2),
            audio_s=round(result.audio_s, 2), realtime_factor=rtf,
        )  # fmt: skip
        if result.outcome in (Outcome.TRANSCRIBED, Outcome.RENDERED):
            self.notifier.event({"event": result.outcome.value, "file": job.path, "outputs": list(result.outputs),
                                 "language": result.language or None, "audio_s": round(result.audio_s, 3),
                                 "worker": self.settings.worker_id})  # fmt: skip
        structlog.contextvars.clear_contextvars()

    def hand_back_unstarted(self, message: ReceivedMessage) -> None:
        """A message that arrived with the stop signal goes back at once, as a first delivery for the next worker."""
        try:
            group_id = job_group_id(TranscriptionJob.model_validate_json(message.body).path)
        except ValidationError:
            self.settler.ack(lambda: self.queue.change_visibility(message.receipt_handle, 0))  # the next worker rejects it
            return
        self.settler.ack(lambda: self.queue.hand_back(message, group_id))
        log.info("stop requested: the message just received was handed back", message_id=message.message_id)

    def _run_with_heartbeat(self, message: ReceivedMessage, job: TranscriptionJob) -> tuple[JobResult, Lease]:
        """Run the job in its own thread; extend the message's visibility until it ends (rq style)."""
        started = time.monotonic()
        heartbeat = Heartbeat(self.heartbeat_queue, message, self.settings.visibility_timeout_s,
                              self.settings.heartbeat_interval_s, self._queue_identity(), started)  # fmt: skip
        lease = heartbeat.lease
        outcome: list[JobResult] = []
        context = contextvars.copy_context()  # carries the bound message id and file into the thread
        thread = threading.Thread(
            target=lambda: outcome.append(context.run(self.run_job, job, self.ctx, lease, self.state.on_stage,
                                                      self.state.on_decoded)),  # fmt: skip
            name="job",
            daemon=True,
        )
        thread.start()
        grace_deadline: float | None = None
        while thread.is_alive():
            thread.join(WAIT_SLICE_S)
            self.beacon.beat()
            now = time.monotonic()
            limit_s = self._time_limit_s()
            if thread.is_alive() and limit_s is not None and now - started > limit_s:
                self._abandon_and_exit(message, lease, limit_s)
            if thread.is_alive() and heartbeat.due(now):
                if self.journal is not None:
                    self.journal.seen(self.state.stage, self.rss_mb())
                heartbeat.beat(now)
            if self.shutdown.requested.is_set() and thread.is_alive():
                self.state.state = WorkerActivity.STOPPING
                grace_deadline = grace_deadline or now + self.settings.grace_period_s
                if now >= grace_deadline:
                    self._release_and_exit(message, job, lease)
        return (outcome[0] if outcome else JobResult(Outcome.RETRY, "job thread ended without a result")), lease

    def _queue_identity(self) -> str | None:
        with contextlib.suppress(QueueError):
            return self.queue.info.identity
        return None

    def _release_and_exit(self, message: ReceivedMessage, job: TranscriptionJob, lease: Lease) -> None:
        """Grace period over: hand the message back at once, as a fresh copy that spends no retry, and leave."""
        lease.lose()
        self._end_delivery("handed back")
        try:
            self.queue.hand_back(message, job_group_id(job.path))
            log.warning("grace period over: message handed back for another worker", stage=self.state.stage)
        except QueueError as exc:
            log.error("could not hand the message back; it reappears after its visibility timeout", error=str(exc))
        self.state.state = WorkerActivity.STOPPED
        self.beacon.beat(force=True)
        exit_now(0)  # the job thread is busy in native code and cannot be stopped otherwise

    def _time_limit_s(self) -> float | None:
        return job_time_limit_s(self.settings, self.state.job_audio_s)

    def _abandon_and_exit(self, message: ReceivedMessage, lease: Lease, limit_s: float) -> None:
        """A job past its time limit is hung in native code: release the message (an attempt spent: a hang may
        repeat, and must reach the dead-letter queue), then leave so the container restarts a fresh process."""
        lease.lose()
        self._end_delivery(TIME_LIMIT)
        log.error("job time limit exceeded: message released, worker exits to restart", limit_s=round(limit_s, 1),
                  stage=self.state.stage, audio_s=self.state.job_audio_s)  # fmt: skip
        try:
            self.queue.change_visibility(message.receipt_handle, 0)
        except QueueError as exc:
            log.error("could not release the message; it reappears after its visibility timeout", error=str(exc))
        self.state.state = WorkerActivity.STOPPED
        self.beacon.beat(force=True)
        exit_now(exits.JOB_TIME_LIMIT)

    def _end_delivery(self, how: str) -> None:
        if self.journal is not None:
            self.journal.end(how)
            self.journal = None

    def _roots_unusable(self) -> bool:
        """Check the roots before receiving; while one cannot be used, say why and wait (no delivery is spent)."""
        problem = self.roots.problem()
        was_waiting, since = self.state.waiting, self.state.waiting_since
        self.state.wait_for(problem)
        if problem is None:
            if was_waiting:
                log.info("roots available again: receiving", waited_s=round(time.time() - (since or time.time())))
            return False
        if problem != was_waiting:
            log.warning("waiting: nothing is received until this is fixed", reason=problem)
        self.beacon.beat(force=problem != was_waiting)
        self.shutdown.requested.wait(self.settings.roots_check_s)
        return True

    def _wait_for_queue(self, error: QueueError, attempt: int) -> None:
        """The queue is gone or unreachable (LocalStack restarted): back off, then re-create it."""
        delay = retry_delay_s(attempt, QUEUE_RETRY_BASE_S, cap_s=QUEUE_RETRY_CAP_S)
        log.warning("queue unavailable, waiting", error=str(error), retry_in_s=delay)
        if self.shutdown.requested.wait(delay):
            return
        try:
            self.queue.ensure()
        except QueueError:
            pass

    def _recycle_due(self, max_files: int) -> bool:
        """Exit after N files or above an RSS limit, so a long-running worker starts fresh."""
        if max_files and self.state.files_done >= max_files:
            log.info("file limit reached, exiting for a fresh start", files_done=self.state.files_done)
            return True
        limit = self.settings.max_rss_mb
        if limit and self.rss_mb() > limit:
            log.info("memory limit reached, exiting for a fresh start", rss_mb=round(self.rss_mb()), limit_mb=limit)
            return True
        return False
