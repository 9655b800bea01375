"""The director's last plan, <dest>/.fleet/director/last-plan.json: one schema, written by the director, read by the rest."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fleet.state.atomic import write_atomic
from fleet.state.paths import last_plan_path


class PlanCounts(BaseModel):
    """How many sources got each decision; the JSON keys are the decisions' names as people read them."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    done: int = 0
    enqueue: int = 0
    already_queued: int = Field(0, alias="already queued")
    failed_before: int = Field(0, alias="failed before")
    skipped: int = 0
    settling: int = 0
    foreign: int = 0  # JSON transcripts another tool or person wrote where the fleet would: left alone
    subtitled: int = 0  # videos that have a subtitle in the language the fleet would write (the media layout)

    @property
    def queued(self) -> int:
        """Files this plan leaves on the queue: enqueued now, or enqueued earlier and not finished."""
        return self.enqueue + self.already_queued


class PlanSummary(BaseModel):
    """What one director round found and decided; the local run, status, dashboard and health check read it."""

    model_config = ConfigDict(extra="ignore")

    at: float
    source: str
    dest: str
    queue: str
    settings_key: str
    found: int
    counts: PlanCounts
    ignored: dict[str, int] = Field(default_factory=dict)

    def write(self, dest: Path) -> None:
        """Replace the last plan atomically (a reader never sees half of it)."""
        write_atomic(last_plan_path(dest), self.model_dump_json(by_alias=True, indent=2))

    @classmethod
    def read(cls, dest: Path) -> PlanSummary | None:
        """The last plan under `dest`, or None when no round has finished (or the file is unreadable)."""
        try:
            return cls.model_validate_json(last_plan_path(dest).read_bytes())
        except (OSError, ValidationError):
            return None
