"""The delivery journal, <dest>/.fleet/deliveries/<hash>.json: which deliveries of a file began and how each ended.

A worker killed mid-file leaves no trace in the queue but a higher receive count. The journal tells the
next delivery what is known of the one that died (its stage, its last memory reading against the
container's limit), so a file is dead-lettered on evidence that points at it, not because workers were
killed from outside while it happened to be theirs.
"""

from __future__ import annotations

import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from fleet.settings import FleetSettings
from fleet.state.atomic import write_atomic
from fleet.state.paths import delivery_journal_path
from worker.queue_loop.settle import Death

TIME_LIMIT = "time limit"  # `ended` of a delivery abandoned by its own worker: the file hung it


class Delivery(BaseModel):
    """One delivery: who, when, what it was doing at its last heartbeat, and how it ended (None: it died)."""

    model_config = ConfigDict(extra="ignore")

    worker: str
    receive_count: int
    started_at: float
    stage: str | None = None
    rss_mb: float | None = None
    memory_limit_mb: float | None = None
    last_seen: float | None = None
    ended: str | None = None

    def death(self) -> Death:
        return Death(self.worker, self.stage, self.rss_mb, self.memory_limit_mb, hung=self.ended == TIME_LIMIT)


class DeliveryJournal:
    """The journal of one source file, kept in memory by the delivery that runs it and written at each change."""

    def __init__(self, dest: Path, source: str, owner: tuple[int, int] | None = None) -> None:
        self.path = delivery_journal_path(dest, source)
        self.source, self.owner = source, owner
        self.deliveries: list[Delivery] = []
        try:
            raw = self.path.read_bytes()
            self.deliveries = _JournalFile.model_validate_json(raw).deliveries
        except (OSError, ValidationError):
            pass  # none yet, or unreadable: nothing known of earlier deliveries

    def deaths(self) -> list[Death]:
        """Earlier deliveries that never ended, or were abandoned past their time limit."""
        return [d.death() for d in self.deliveries if d.ended is None or d.ended == TIME_LIMIT]

    def first_started_at(self) -> float | None:
        """When the first delivery this journal knows of began (a hand-back resets SQS's own clock, not this)."""
        return min((d.started_at for d in self.deliveries), default=None)

    def begin(self, worker: str, receive_count: int, memory_limit_mb: float | None) -> None:
        self.deliveries.append(Delivery(worker=worker, receive_count=receive_count, started_at=time.time(),
                                        memory_limit_mb=memory_limit_mb))  # fmt: skip
        self._write()

    def seen(self, stage: str | None, rss_mb: float) -> None:
        """A heartbeat: the stage and memory reading a successor reads if this process dies next."""
        current = self.deliveries[-1]
        current.stage, current.rss_mb, current.last_seen = stage, round(rss_mb), time.time()
        self._write()

    def end(self, how: str) -> None:
        """This delivery ended without settling the file for good (a retry, a hand-back, a time limit)."""
        self.deliveries[-1].ended = how
        self._write()

    def close(self) -> None:
        """The file is settled (done or dead-lettered): nothing left to learn from."""
        self.path.unlink(missing_ok=True)

    def _write(self) -> None:
        try:
            write_atomic(self.path, _JournalFile(source=self.source, deliveries=self.deliveries).model_dump_json(),
                         owner=self.owner)  # fmt: skip
        except OSError:
            pass  # the destination is failing: the job finds out itself; the journal only informs


class _JournalFile(BaseModel):
    source: str
    deliveries: list[Delivery]


def job_time_limit_s(settings: FleetSettings, audio_s: float | None) -> float | None:
    """How long a job may run: base + factor x audio once decoded; before that, decoding's own limit too."""
    if not settings.job_time_limit_factor:
        return None
    if audio_s is None:
        return settings.decode_timeout_s + settings.job_time_limit_base_s
    return settings.job_time_limit_base_s + settings.job_time_limit_factor * audio_s
