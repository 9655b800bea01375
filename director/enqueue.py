"""Send planned jobs to the queue in batches of 10, a few batches at a time."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

from fleet.job.messages import TranscriptionJob
from fleet.transport.queue import SEND_BATCH_MAX, JobQueue, OutgoingMessage, QueueError

REFUSED_RETRIES = 3


@dataclass
class EnqueueResult:
    """Dedup ids that reached the queue, and those it kept refusing."""

    sent: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def to_message(job: TranscriptionJob) -> OutgoingMessage:
    """A job as SQS sees it: one group per file, explicit dedup id, JSON body."""
    return OutgoingMessage(dedup_id=job.dedup_id(), group_id=job.group_id(), body=job.model_dump_json())


def enqueue_jobs(
    queue: JobQueue,
    jobs: Iterable[TranscriptionJob],
    threads: int,
    on_batch: Callable[[int], None] | None = None,
) -> EnqueueResult:
    """Enqueue every job; on a queue failure raise PartialEnqueue, which says what was sent."""
    messages = [to_message(job) for job in jobs]
    batches = [messages[i : i + SEND_BATCH_MAX] for i in range(0, len(messages), SEND_BATCH_MAX)]
    result = EnqueueResult()

    def send(batch: list[OutgoingMessage]) -> tuple[list[str], list[str]]:
        pending = batch
        for _ in range(REFUSED_RETRIES):
            refused = set(queue.send_batch(pending))
            pending = [m for m in pending if m.dedup_id in refused]
            if not pending:
                break
        refused_ids = [m.dedup_id for m in pending]
        return [m.dedup_id for m in batch if m.dedup_id not in refused_ids], refused_ids

    error: BaseException | None = None
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="enqueue") as pool:
        futures = [pool.submit(send, batch) for batch in batches]
        for future in as_completed(futures):
            if future.cancelled():
                continue
            if future.exception() is not None:
                if error is None:
                    error = future.exception()
                    for other in futures:
                        other.cancel()  # batches not started yet stay unsent; running ones finish
                continue
            sent, refused = future.result()
            result.sent.extend(sent)
            result.refused.extend(refused)
            if on_batch:
                on_batch(len(sent) + len(refused))
    if error is not None:
        raise PartialEnqueue(str(error), result) from error
    return result


class PartialEnqueue(QueueError):
    """The queue failed mid-way; `result` says what was sent before it did."""

    def __init__(self, message: str, result: EnqueueResult) -> None:
        super().__init__(message)
        self.result = result
