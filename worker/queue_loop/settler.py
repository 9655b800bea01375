"""Carries out the settle policy (settle.py) for one delivery: acknowledge, retry later, leave, or dead-letter.

Every queue call here comes after the job: a failure only delays the message, it never loses it, and no
message is deleted before its outputs are on disk (the job wrote them before it returned its result).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import structlog

from fleet.job.messages import TranscriptionJob, job_group_id
from fleet.process.notify import Notifier
from fleet.settings import FleetSettings
from fleet.state.failures import write_failure_record
from fleet.transport.queue import JobQueue, QueueError, ReceivedMessage
from worker.job.result import JobResult, Outcome
from worker.queue_loop.deliveries import DeliveryJournal
from worker.queue_loop.settle import SettleAction, SettleLimits, decide, judge_redelivery

log = structlog.get_logger()


class Settler:
    """Settles deliveries on the queue and on disk (failure records, the delivery journal, notifications)."""

    def __init__(self, queue: JobQueue, settings: FleetSettings, notifier: Notifier, owner: tuple[int, int] | None) -> None:
        self.queue = queue
        self.settings = settings
        self.notifier = notifier
        self.owner = owner
        # A remote worker's records must reach the home side's destination too (worker.remote.transfer).
        self.on_failure_recorded: Callable[[Path], None] | None = None

    def limits(self) -> SettleLimits:
        return SettleLimits(self.queue.spec.max_receive_count, self.settings.retry_backoff_s, self.settings.retry_budget_s)

    def settle(self, message: ReceivedMessage, job: TranscriptionJob, result: JobResult, journal: DeliveryJournal,
               lease_orphaned: bool = False) -> None:  # fmt: skip
        """Carry out the settle policy's decision for a delivery whose job returned `result`."""
        settlement = decide(result.outcome, message.receive_count, first_attempt_age_s(message, journal), self.limits(),
                            result.reason, lease_orphaned)  # fmt: skip
        if settlement.action is SettleAction.LEAVE:
            journal.end("orphaned" if lease_orphaned else "lease lost")
            if lease_orphaned:
                log.info("the queue that held this message is gone: nothing to acknowledge", outcome=result.outcome.value)
        elif settlement.action is SettleAction.ACKNOWLEDGE:
            self.ack(lambda: self.queue.delete(message.receipt_handle))
            journal.close()
        elif settlement.action is SettleAction.RETRY:
            journal.end("retry")
            log.warning("will retry", reason=result.reason, retry_in_s=settlement.delay_s, attempt=message.receive_count)
            self.ack(lambda: self.queue.change_visibility(message.receipt_handle, settlement.delay_s))
        else:
            self.dead_letter(message, job, result, settlement.failure_reason or result.reason, journal)

    def dead_letter(self, message: ReceivedMessage, job: TranscriptionJob, result: JobResult, reason: str,
                    journal: DeliveryJournal) -> None:  # fmt: skip
        """Record why, then move the message to the dead-letter queue: the file is settled, for now for good."""
        self.record_failure(job, result, reason)
        self.ack(lambda: self.queue.dead_letter(message, job_group_id(job.path), reason))
        journal.close()
        self.notifier.message("whisper-fleet: a file failed", f"{job.path}: {reason}")
        self.notifier.event({"event": "dead-lettered", "file": job.path, "reason": reason, "worker": self.settings.worker_id})

    def died_of_it_before(self, message: ReceivedMessage, job: TranscriptionJob, journal: DeliveryJournal) -> bool:
        """Earlier deliveries that died: say what is known, and dead-letter the file when the deaths point at it."""
        deaths = journal.deaths()
        if not deaths:
            return False
        log.warning("earlier deliveries of this file died", deaths=len(deaths), last=deaths[-1].describe())
        settlement = judge_redelivery(deaths, first_attempt_age_s(message, journal), self.limits())
        if settlement is None:
            return False
        self.dead_letter(message, job, JobResult(Outcome.FAILED), settlement.failure_reason or "workers died on it", journal)
        return True

    def mark_last_attempt(self, job: TranscriptionJob, receive_count: int) -> None:
        """Leave a failure record before the last attempt: if this one dies too (out of memory, killed),
        SQS dead-letters the message silently, and without a record the director would call the file
        'already queued' for weeks. A success removes the record again."""
        reason = f"the worker stopped without finishing it {receive_count - 1} time(s) (crash, out of memory, kill)"
        self.record_failure(job, JobResult(Outcome.RETRY), f"last attempt of {receive_count}: {reason}")

    def record_failure(self, job: TranscriptionJob, result: JobResult, reason: str) -> None:
        try:
            path = write_failure_record(self.settings.dest_dir, job, result.fingerprint or job.fingerprint, reason,
                                        result.detail, self.settings.worker_id, self.owner)  # fmt: skip
            log.error("file failed", reason=reason, record=str(path))
            if self.on_failure_recorded is not None:
                self.on_failure_recorded(path)
        except OSError as exc:
            log.error("file failed, and its failure record could not be written", reason=reason, error=str(exc))

    @staticmethod
    def ack(action: Callable[[], None]) -> None:
        """A queue call after a job: a failure here only delays the message, it never loses it."""
        try:
            action()
        except QueueError as exc:
            log.error("queue call after the job failed; the message reappears after its visibility timeout", error=str(exc))


def first_attempt_age_s(message: ReceivedMessage, journal: DeliveryJournal | None) -> float:
    """Since the first delivery of this file: SQS's clock, or the journal's where a hand-back reset SQS's."""
    now = time.time()
    first = [t for t in (message.first_received_at, journal and journal.first_started_at()) if t]
    return now - min(first, default=now)
