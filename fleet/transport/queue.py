"""The job queue as the fleet uses it: the protocol every implementation honours, the values it passes, its errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from fleet.transport.spec import QueueSpec

SEND_BATCH_MAX = 10  # SQS SendMessageBatch limit
# SQS deduplicates a MessageDeduplicationId for this long only.
DEDUP_WINDOW_S = 300


class QueueError(Exception):
    """A queue operation failed; str() is one line fit for the user, `code` the server's error code if it gave one."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


# The queue itself no longer exists (LocalStack restarted, someone deleted it).
QUEUE_GONE_CODES = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})
# Receipt handles that SQS no longer honours: someone else received the message since, or it is visible again.
LOST_LEASE_CODES = frozenset({"ReceiptHandleIsInvalid", "MessageNotInflight", "InvalidParameterValue"})
# A delete refused with these: the receipt handle ran out (the message came back, or was acted on already).
EXPIRED_HANDLE_CODES = frozenset({"ReceiptHandleIsInvalid", "InvalidParameterValue"})


class QueueUnavailable(QueueError):
    """The endpoint did not answer, even after retries with backoff."""


@dataclass(frozen=True)
class QueueInfo:
    """A queue as it exists now; `identity` changes when the queue is deleted and recreated."""

    url: str
    arn: str
    created_timestamp: str  # as the server says it: seconds, an integer on AWS, a float on moto
    dlq_url: str

    @property
    def identity(self) -> str:
        return f"{self.arn}@{self.created_timestamp}"


@dataclass(frozen=True)
class OutgoingMessage:
    """One message for SendMessageBatch."""

    dedup_id: str
    group_id: str
    body: str


@dataclass(frozen=True)
class ReceivedMessage:
    """One received message and what is needed to extend, release or delete it."""

    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    first_received_at: float | None = None  # epoch seconds of the first delivery, where the server says


# What a dead letter carries beside its body: why it failed, and (once `fleet dlq` moved it) when and by which pass.
DEAD_LETTER_ATTRIBUTES = ("failure_reason", "dead_lettered_at", "fleet_listing")
NO_REASON = "no reason recorded (SQS redrive after too many receives: crash, out of memory, kill)"


@dataclass(frozen=True)
class DeadLetter:
    """A message in the dead-letter queue, received for listing or redriving."""

    message: ReceivedMessage
    group_id: str
    reason: str
    dead_lettered_at: float
    listing: str = ""  # the `fleet dlq` pass that moved it to the back of the dead-letter queue, if one did


@dataclass(frozen=True)
class QueueCounts:
    """Approximate counts from queue attributes (never from a receive)."""

    visible: int
    in_flight: int
    delayed: int
    dead_letter: int

    @property
    def pending(self) -> int:
        """Messages the job queue still holds: waiting, in progress or delayed."""
        return self.visible + self.in_flight + self.delayed


class JobQueue(Protocol):
    """The job queue and its dead-letter queue as the fleet uses them: SQS FIFO semantics, whoever serves them.

    Implementations: `fleet.transport.sqs.SqsQueue` (any SQS endpoint) and `fleet.transport.memory.MemoryQueue`
    (in-process, for tests of the loop); tests/integration/test_queue_contract.py runs one suite against both.
    """

    spec: QueueSpec

    @property
    def info(self) -> QueueInfo: ...

    def ensure(self) -> QueueInfo:
        """Create both queues if missing (idempotent) and wire the redrive policy."""
        ...

    def lookup(self) -> QueueInfo | None:
        """The queue if it exists, without creating anything."""
        ...

    def send_batch(self, messages: list[OutgoingMessage]) -> list[str]:
        """Send up to 10 messages; returns the dedup ids refused."""
        ...

    def receive_one(self, wait_s: int, visibility_timeout_s: int | None = None) -> ReceivedMessage | None:
        """Long-poll for a single message, hidden from others for the visibility timeout."""
        ...

    def change_visibility(self, receipt_handle: str, timeout_s: int) -> None:
        """Extend (heartbeat) or release (0) a received message."""
        ...

    def delete(self, receipt_handle: str) -> None:
        """Acknowledge a job whose outputs are durably on disk."""
        ...

    def dead_letter(self, message: ReceivedMessage, group_id: str, reason: str) -> None:
        """Move a message that can never succeed to the dead-letter queue now, with the reason."""
        ...

    def hand_back(self, message: ReceivedMessage, group_id: str) -> None:
        """Give an unfinished message back as a fresh copy whose receive count starts again."""
        ...

    def receive_dead_letters(self, hide_s: int) -> list[DeadLetter]:
        """Up to 10 dead-lettered messages with their reasons, hidden for `hide_s`."""
        ...

    def requeue_dead_letter(self, letter: DeadLetter, listing: str) -> str:
        """Move a dead letter to the back of its group, marked with `listing`; the copy's id."""
        ...

    def forget_dead_letter(self, letter: DeadLetter) -> bool:
        """Delete a dead letter already acted on; False when its hide ran out first."""
        ...

    def release_dead_letter(self, letter: DeadLetter) -> None:
        """Make a received dead letter visible again, as it was."""
        ...

    def delete_dead_letter(self, letter: DeadLetter) -> None:
        """Drop one dead letter."""
        ...

    def purge_dead_letters(self) -> None:
        """Drop every dead-lettered message."""
        ...

    def counts(self) -> QueueCounts:
        """Visible, in-flight, delayed and dead-letter counts."""
        ...

    def drained(self) -> bool:
        """Nothing waiting, in flight or delayed; False when the queue cannot be asked."""
        ...
