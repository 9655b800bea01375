"""Which queues (create_queue.json, the one source of truth for the job queue and its dead-letter queue) and where."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


class QueueSpecError(ValueError):
    """create_queue.json is missing or does not describe two FIFO queues."""


# The front door's queue (`fleet asr`): workers ask it before the folder's, so a Bazarr request overtakes the backlog.
FRONT_DOOR_QUEUE = "asr"


@dataclass(frozen=True)
class QueueSpec:
    """Names and attributes of both queues, with overrides from the settings applied."""

    queue_name: str
    queue_attributes: dict[str, str] = field(hash=False)
    dlq_name: str
    dlq_attributes: dict[str, str] = field(hash=False)
    max_receive_count: int

    def companion(self, suffix: str) -> QueueSpec:
        """A second pair of FIFO queues beside these (`whisper-fleet-transfer.fifo`), with the same attributes."""
        names = fifo_names(f"{self.queue_name.removesuffix('.fifo')}-{suffix}")
        return QueueSpec(names[0], self.queue_attributes, names[1], self.dlq_attributes, self.max_receive_count)

    @property
    def retention_s(self) -> int:
        """How long SQS keeps a message that nobody receives (4 days if unset)."""
        return int(self.queue_attributes.get("MessageRetentionPeriod", 345600))


@dataclass(frozen=True)
class ServiceEndpoint:
    """Where an AWS-style service (the queue, the transfer bucket) is and how patiently to call it (url None: boto3's)."""

    url: str | None
    region: str
    max_attempts: int
    timeout_s: float


def fifo_names(base: str) -> tuple[str, str]:
    """Queue and dead-letter queue names for an override like `fleet-b` (`.fifo` optional)."""
    stem = base.removesuffix(".fifo")
    return f"{stem}.fifo", f"{stem}-dlq.fifo"


def load_queue_spec(path: Path, queue_name: str | None = None, max_receive_count: int | None = None) -> QueueSpec:
    """Load and check create_queue.json; FLEET_QUEUE_NAME / FLEET_MAX_RECEIVE_COUNT override it."""
    try:
        raw = json.loads(path.read_text())
        queue, dlq = raw["queue"], raw["dead_letter_queue"]
        names = (queue["QueueName"], dlq["QueueName"])
        if queue_name:
            names = fifo_names(queue_name)
        spec = QueueSpec(
            queue_name=names[0],
            queue_attributes={k: str(v) for k, v in queue.get("Attributes", {}).items()},
            dlq_name=names[1],
            dlq_attributes={k: str(v) for k, v in dlq.get("Attributes", {}).items()},
            max_receive_count=int(max_receive_count or raw["redrive_policy"]["maxReceiveCount"]),
        )
    except OSError as exc:
        raise QueueSpecError(f"cannot read queue config {path}: {exc.strerror}") from exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise QueueSpecError(f"queue config {path} is invalid: {exc!r}") from exc
    for name, attributes in ((spec.queue_name, spec.queue_attributes), (spec.dlq_name, spec.dlq_attributes)):
        if not name.endswith(".fifo") or attributes.get("FifoQueue") != "true":
            raise QueueSpecError(f"queue config {path}: {name} must be a FIFO queue (name *.fifo, FifoQueue true)")
    if "RedrivePolicy" in spec.queue_attributes:
        raise QueueSpecError(f"queue config {path}: set redrive_policy.maxReceiveCount, not RedrivePolicy")
    return spec
