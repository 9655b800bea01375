"""The heartbeat of one delivery: extends the message's visibility while the job runs, and keeps its lease honest."""

from __future__ import annotations

import structlog

from fleet.transport.queue import LOST_LEASE_CODES, QUEUE_GONE_CODES, JobQueue, QueueError, ReceivedMessage
from worker.job.lease import Lease

log = structlog.get_logger()


class Heartbeat:
    """Extends one received message every `interval_s` (dramatiq_sqs style); the lease says what the job may still do.

    A refused extension means another worker may own the message now (lease lost: nothing is written);
    a queue deleted and created again since the receive (LocalStack restarted) leaves nobody to own it
    (lease orphaned: the finished transcript is still written, nothing is acknowledged).
    """

    def __init__(self, queue: JobQueue, message: ReceivedMessage, visibility_timeout_s: int, interval_s: float,
                 queue_identity: str | None, now: float) -> None:  # fmt: skip
        self.queue = queue  # short timeouts, few attempts: an answer must come well within the visibility timeout
        self.message = message
        self.visibility_timeout_s = visibility_timeout_s
        self.interval_s = interval_s
        self.queue_identity = queue_identity  # the queue's identity when the message was received
        self.lease = Lease(visibility_timeout_s)
        self.next_beat = now + interval_s

    def due(self, now: float) -> bool:
        return now >= self.next_beat

    def beat(self, now: float) -> None:
        """One heartbeat: extend while the lease is held; once it expired, only ask whether the queue is gone."""
        lease = self.lease
        if lease.held() and not (lease.orphaned or lease.lost):
            self._extend(now)
        elif not (lease.orphaned or lease.lost) and self.queue_recreated():
            self._orphan("the queue was recreated while this worker could not reach it")
        self.next_beat = now + self.interval_s

    def _extend(self, now: float) -> None:
        """Extended, lost (another worker may own the message), or orphaned (its queue is gone)."""
        lease = self.lease
        was_held = lease.held()
        try:
            self.queue.change_visibility(self.message.receipt_handle, self.visibility_timeout_s)
            lease.extended(now)
            return
        except QueueError as exc:
            error = exc
        if error.code in QUEUE_GONE_CODES or (error.code in LOST_LEASE_CODES and self.queue_recreated()):
            self._orphan(str(error))
        elif error.code in LOST_LEASE_CODES:
            lease.lose()
            log.error("lease lost: the message may be with another worker; its outputs will not be written", error=str(error))
        elif was_held and not lease.held():
            log.error("lease expired without a heartbeat: the message may be with another worker; its outputs will not "
                      "be written", error=str(error))  # fmt: skip
        else:
            log.warning("heartbeat failed, retrying", error=str(error))

    def _orphan(self, why: str) -> None:
        self.lease.orphan()
        log.warning("the queue that held this message is gone: its outputs are still written, nothing to acknowledge",
                    error=why)  # fmt: skip

    def queue_recreated(self) -> bool:
        """Whether the queue was deleted and created again since the message was received (LocalStack restarted)."""
        try:
            now = self.queue.lookup()
        except QueueError:
            return False
        return self.queue_identity is not None and (now is None or now.identity != self.queue_identity)
