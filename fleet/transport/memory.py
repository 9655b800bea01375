"""The job queue in memory (as dramatiq's StubBroker): SQS FIFO semantics in one process, for tests of the loop.

It honours what the fleet relies on, and the contract suite (tests/integration/test_queue_contract.py) holds it
to LocalStack and moto: one message of a group in flight at a time, in order; a receipt handle per delivery;
visibility and its extension; receive counts; deduplication for five minutes; redrive to the dead-letter queue
after maxReceiveCount receives. `clock` (epoch seconds) may be a test's own, so time passes without sleeping.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from fleet.transport.queue import (
    DEDUP_WINDOW_S,
    EXPIRED_HANDLE_CODES,
    NO_REASON,
    DeadLetter,
    OutgoingMessage,
    QueueCounts,
    QueueError,
    QueueInfo,
    ReceivedMessage,
)
from fleet.transport.spec import QueueSpec

_ids = itertools.count(1)


@dataclass
class _Stored:
    """One message as a queue holds it."""

    message_id: str
    group_id: str
    body: str
    attributes: dict[str, str] = field(default_factory=dict)
    sent_at: float = 0.0
    visible_at: float = 0.0
    receive_count: int = 0
    first_received_at: float | None = None
    receipt_handle: str | None = None  # the latest delivery's; None until first received
    handles: set[str] = field(default_factory=set)  # every delivery's: SQS still honours an older one


class _FifoQueue:
    """One FIFO queue: messages in send order, a group blocked while one of its messages is in flight."""

    def __init__(self, name: str, visibility_timeout_s: int) -> None:
        self.name = name
        self.visibility_timeout_s = visibility_timeout_s
        self.messages: list[_Stored] = []
        self.dedup: dict[str, tuple[float, str]] = {}  # dedup id -> (sent at, message id)

    def in_flight(self, stored: _Stored, now: float) -> bool:
        return stored.receipt_handle is not None and stored.visible_at > now

    def send(self, group_id: str, body: str, dedup_id: str, now: float, attributes: dict[str, str] | None = None) -> str:
        """A new message at the back of its group; a dedup id seen in the last five minutes sends nothing."""
        self.dedup = {d: seen for d, seen in self.dedup.items() if now - seen[0] < DEDUP_WINDOW_S}
        if dedup_id in self.dedup:
            return self.dedup[dedup_id][1]
        stored = _Stored(f"m-{next(_ids)}", group_id, body, dict(attributes or {}), sent_at=now, visible_at=now)
        self.messages.append(stored)
        self.dedup[dedup_id] = (now, stored.message_id)
        return stored.message_id

    def next_visible(self, now: float) -> _Stored | None:
        """The first message whose group has nothing in flight and nothing visible before it."""
        blocked: set[str] = set()
        for stored in self.messages:
            if stored.group_id in blocked:
                continue
            blocked.add(stored.group_id)  # FIFO: only the head of a group can be delivered
            if stored.visible_at <= now:
                return stored
        return None

    def by_handle(self, receipt_handle: str) -> _Stored:
        """The message a delivery's handle names, also an older delivery's (as LocalStack and moto do); gone: refused."""
        for stored in self.messages:
            if receipt_handle in stored.handles:
                return stored
        raise QueueError(f"receipt handle {receipt_handle} is invalid", "ReceiptHandleIsInvalid")


class MemoryQueue:
    """A `JobQueue` in this process: the job queue and its dead-letter queue as `spec` describes them."""

    def __init__(self, spec: QueueSpec, clock: Callable[[], float] = time.time) -> None:
        self.spec = spec
        self._clock = clock
        self._lock = threading.Condition()
        self._main: _FifoQueue | None = None
        self._dlq: _FifoQueue | None = None
        self._created_at = 0.0
        self._generation = 0
        self.endpoint = "memory"

    # -- the queues themselves

    def ensure(self) -> QueueInfo:
        with self._lock:
            if self._main is None or self._dlq is None:
                visibility_s = int(self.spec.queue_attributes.get("VisibilityTimeout", "30"))
                self._main = _FifoQueue(self.spec.queue_name, visibility_s)
                self._dlq = _FifoQueue(self.spec.dlq_name, visibility_s)
                self._generation += 1
                self._created_at = self._clock()
            return self._describe()

    def lookup(self) -> QueueInfo | None:
        with self._lock:
            return None if self._main is None else self._describe()

    @property
    def info(self) -> QueueInfo:
        with self._lock:
            if self._main is None:
                raise QueueError(f"queue {self.spec.queue_name} not opened: call ensure() or lookup() first")
            return self._describe()

    def delete_queues(self) -> None:
        """Both queues gone with everything in them (what a LocalStack restart does): calls fail until ensure()."""
        with self._lock:
            self._main = self._dlq = None
            self._lock.notify_all()

    def _describe(self) -> QueueInfo:
        name = self.spec.queue_name
        return QueueInfo(url=f"memory://{name}", arn=f"arn:memory:sqs:{name}:{self._generation}",
                         created_timestamp=repr(self._created_at), dlq_url=f"memory://{self.spec.dlq_name}")  # fmt: skip

    def _queues(self) -> tuple[_FifoQueue, _FifoQueue]:
        if self._main is None or self._dlq is None:
            raise QueueError(f"{self.spec.queue_name} failed: AWS.SimpleQueueService.NonExistentQueue: the queue does "
                             "not exist", "AWS.SimpleQueueService.NonExistentQueue")  # fmt: skip
        return self._main, self._dlq

    # -- the job queue

    def send_batch(self, messages: list[OutgoingMessage]) -> list[str]:
        with self._lock:
            main, _ = self._queues()
            now = self._clock()
            for message in messages:
                main.send(message.group_id, message.body, message.dedup_id, now)
            self._lock.notify_all()
        return []

    def receive_one(self, wait_s: int, visibility_timeout_s: int | None = None) -> ReceivedMessage | None:
        deadline = time.monotonic() + wait_s  # the wait is real time: a test's clock need not move for it to end
        with self._lock:
            while True:
                main, dlq = self._queues()
                now = self._clock()
                stored = main.next_visible(now)
                while stored is not None and stored.receive_count >= self.spec.max_receive_count:
                    self._redrive(main, dlq, stored, now)  # SQS moves it on the receive that would exceed the count
                    stored = main.next_visible(now)
                if stored is not None:
                    return self._deliver(stored, now, visibility_timeout_s or main.visibility_timeout_s)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._lock.wait(min(remaining, 0.05))  # a hidden message may become visible on the clock alone

    def _deliver(self, stored: _Stored, now: float, visibility_timeout_s: int) -> ReceivedMessage:
        stored.receive_count += 1
        stored.first_received_at = stored.first_received_at or now
        stored.receipt_handle = f"r-{next(_ids)}"
        stored.handles.add(stored.receipt_handle)
        stored.visible_at = now + visibility_timeout_s
        return ReceivedMessage(stored.message_id, stored.receipt_handle, stored.body, stored.receive_count,
                               stored.first_received_at)  # fmt: skip

    def _redrive(self, main: _FifoQueue, dlq: _FifoQueue, stored: _Stored, now: float) -> None:
        main.messages.remove(stored)
        dlq.messages.append(_Stored(stored.message_id, stored.group_id, stored.body, stored.attributes, sent_at=now,
                                    visible_at=now))  # fmt: skip

    def change_visibility(self, receipt_handle: str, timeout_s: int) -> None:
        with self._lock:
            main, _ = self._queues()
            now = self._clock()
            main.by_handle(receipt_handle).visible_at = now + timeout_s
            self._lock.notify_all()

    def delete(self, receipt_handle: str) -> None:
        with self._lock:
            main, _ = self._queues()
            self._remove(main, receipt_handle)
            self._lock.notify_all()

    def _remove(self, queue: _FifoQueue, receipt_handle: str) -> None:
        queue.messages.remove(queue.by_handle(receipt_handle))

    def dead_letter(self, message: ReceivedMessage, group_id: str, reason: str) -> None:
        with self._lock:
            main, dlq = self._queues()
            dlq.send(group_id, message.body, message.message_id, self._clock(), {"failure_reason": reason or "unknown"})
            self._remove(main, message.receipt_handle)
            self._lock.notify_all()

    def hand_back(self, message: ReceivedMessage, group_id: str) -> None:
        with self._lock:
            main, _ = self._queues()
            main.send(group_id, message.body, f"handback-{message.message_id}", self._clock())
            self._remove(main, message.receipt_handle)
            self._lock.notify_all()

    # -- the dead-letter queue

    def receive_dead_letters(self, hide_s: int) -> list[DeadLetter]:
        with self._lock:
            _, dlq = self._queues()
            now = self._clock()
            letters: list[DeadLetter] = []
            blocked: set[str] = set()
            for stored in list(dlq.messages):
                if len(letters) == 10:
                    break
                if stored.group_id in blocked:
                    continue
                blocked.add(stored.group_id)
                if stored.visible_at > now:
                    continue
                received = self._deliver(stored, now, hide_s)
                attributes = stored.attributes
                letters.append(DeadLetter(received, stored.group_id, attributes.get("failure_reason") or NO_REASON,
                                          float(attributes.get("dead_lettered_at") or stored.sent_at),
                                          attributes.get("fleet_listing", "")))  # fmt: skip
            return letters

    def requeue_dead_letter(self, letter: DeadLetter, listing: str) -> str:
        with self._lock:
            _, dlq = self._queues()
            attributes = {"failure_reason": letter.reason, "dead_lettered_at": repr(letter.dead_lettered_at),
                          "fleet_listing": listing}  # fmt: skip
            copy_id = dlq.send(letter.group_id or "dead", letter.message.body,
                               f"listing-{listing}-{letter.message.message_id}", self._clock(), attributes)  # fmt: skip
        self.forget_dead_letter(letter)
        return copy_id

    def forget_dead_letter(self, letter: DeadLetter) -> bool:
        try:
            self.delete_dead_letter(letter)
        except QueueError as exc:
            if exc.code not in EXPIRED_HANDLE_CODES:
                raise  # a queue gone is an error here as on SQS, not a letter that came back
            return False
        return True

    def release_dead_letter(self, letter: DeadLetter) -> None:
        with self._lock:
            _, dlq = self._queues()
            now = self._clock()
            dlq.by_handle(letter.message.receipt_handle).visible_at = now

    def delete_dead_letter(self, letter: DeadLetter) -> None:
        with self._lock:
            _, dlq = self._queues()
            self._remove(dlq, letter.message.receipt_handle)

    def purge_dead_letters(self) -> None:
        with self._lock:
            _, dlq = self._queues()
            dlq.messages.clear()

    # -- counts

    def counts(self) -> QueueCounts:
        with self._lock:
            main, dlq = self._queues()
            now = self._clock()
            in_flight = sum(1 for m in main.messages if main.in_flight(m, now))
            delayed = 0  # the fleet sends no DelaySeconds; a retry's wait counts as in flight, as on SQS
            dead_visible = sum(1 for m in dlq.messages if not dlq.in_flight(m, now))  # as SQS counts them
            return QueueCounts(visible=len(main.messages) - in_flight, in_flight=in_flight, delayed=delayed,
                               dead_letter=dead_visible)  # fmt: skip

    def drained(self) -> bool:
        try:
            return self.counts().pending == 0
        except QueueError:
            return False

    def bodies(self) -> list[dict]:
        """Every message body the job queue holds now, parsed (for tests)."""
        with self._lock:
            main, _ = self._queues()
            return [json.loads(m.body) for m in main.messages]
