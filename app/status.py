"""`fleet status`: queue counts (from attributes, never a receive), the last plan, workers, failures."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, computed_field

from fleet.settings import FleetSettings
from fleet.state.paths import front_door_dir
from fleet.state.plan_summary import PlanSummary
from fleet.state.records import read_failures
from fleet.state.worker_record import WorkerActivity, WorkerRecord, read_worker_records
from fleet.transport.queue import JobQueue, QueueError
from frontdoor.jobs import front_door_counts

WORKER_RECORD_TTL_S = 86_400


class WorkerStatus(WorkerRecord):
    """A worker's record as status shows it: how long ago it beat, and whether it is lost."""

    beat_age_s: float
    lost: bool

    @computed_field
    @property
    def where(self) -> str:
        """The device in use, and for a worker on another machine its host: `cuda (remote: gaming-pc)`."""
        remote = f"remote: {self.host}" if self.remote else ""
        if self.device and remote:
            return f"{self.device} ({remote})"
        return self.device or remote

    @computed_field
    @property
    def shown_state(self) -> str:
        """The state as a person reads it: LOST, "waiting: source not available ... since 14:02", or the state."""
        if self.lost:
            return "LOST"
        unloaded = ", models unloaded" if self.models_unloaded else ""
        if self.state == WorkerActivity.WAITING and self.waiting:
            return f"waiting: {self.waiting} since {_clock(self.waiting_since)}{unloaded}"
        if self.state == WorkerActivity.IDLE:
            return f"idle{unloaded}"
        return self.state


def _clock(at: float | None) -> str:
    """`14:02` today, `Nov 28 14:02` before: when a wait began, in the reader's local time."""
    if at is None:
        return "?"
    moment = time.localtime(at)
    today = time.localtime()
    return time.strftime("%H:%M" if moment[:3] == today[:3] else "%b %d %H:%M", moment)


class StatusReport(BaseModel):
    """Everything `fleet status` and the dashboard show (also the --json output)."""

    at: float
    queue_name: str
    queue: dict[str, int] | None = None
    queue_error: str | None = None
    plan: PlanSummary | None = None
    progress: dict[str, int] = Field(default_factory=dict)
    workers: list[WorkerStatus] = Field(default_factory=list)
    throughput: dict[str, float | None] = Field(default_factory=dict)
    failures: list[dict[str, Any]] = Field(default_factory=list)
    front_door: dict[str, int] | None = None  # `fleet asr`'s jobs: open, done, failed (None: no front door here)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values, the plan's counts under their readable names."""
        return self.model_dump(mode="json", by_alias=True)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)


def worker_records(dest: Path, now: float) -> list[WorkerStatus]:
    """Every recent worker's heartbeat record, marked lost when it has been silent too long.

    Records of workers silent for a day (replaced containers, other machines long gone) age out.
    """
    statuses = []
    for record in read_worker_records(dest):
        age_s = round(now - record.last_beat, 1)
        if age_s > WORKER_RECORD_TTL_S:
            continue
        lost = age_s > record.lost_after_s and record.state != WorkerActivity.STOPPED
        statuses.append(WorkerStatus(**record.model_dump(), beat_age_s=age_s, lost=lost))
    return statuses


def throughput(workers: list[WorkerStatus], now: float) -> dict[str, float | None]:
    """Files and audio hours per hour over the live workers' lifetimes."""
    files_per_s = audio_per_s = 0.0
    for worker in workers:
        if worker.lost or worker.state == WorkerActivity.STOPPED:
            continue
        uptime = max(1.0, now - worker.started_at)
        files_per_s += worker.files_done / uptime
        audio_per_s += worker.audio_s_done / uptime
    return {"files_per_hour": round(files_per_s * 3600, 1), "audio_hours_per_hour": round(audio_per_s, 2)}


def gather_status(settings: FleetSettings, queue: JobQueue | None, now: float | None = None) -> StatusReport:
    """Read queue attributes and the small state files under <dest>/.fleet; no message is touched."""
    now = now or time.time()
    report = StatusReport(at=now, queue_name=queue.spec.queue_name if queue else "")
    if queue is not None:
        try:
            info = queue.lookup()
            if info is None:
                report.queue_error = "queue does not exist yet (run the director)"
            else:
                report.queue = asdict(queue.counts())
        except QueueError as exc:
            report.queue_error = str(exc)
    dest = settings.dest_dir
    report.plan = PlanSummary.read(dest)
    if front_door_dir(dest).is_dir():
        report.front_door = front_door_counts(front_door_dir(dest))
    report.workers = worker_records(dest, now)
    report.throughput = throughput(report.workers, now)
    report.failures = sorted(
        ({"source": f.source, "reason": f.reason, "failed_at": f.failed_at} for f in read_failures(dest).values()),
        key=lambda f: -f["failed_at"],
    )
    if report.plan:
        counts = report.plan.counts
        queued = counts.queued
        remaining = (report.queue or {}).get("visible", 0) + (report.queue or {}).get("in_flight", 0)
        completed = max(0, queued - remaining)
        # Against everything found, not only this round's queue: a watching director's later rounds
        # queue nothing once all is done, and "0 of 0" would hide that the work is finished.
        failed_since_plan = sum(1 for f in report.failures if f["failed_at"] >= report.plan.at)
        found, failed = report.plan.found, counts.failed_before + failed_since_plan
        transcribed = counts.done + max(0, completed - failed_since_plan)
        settled = transcribed + failed + counts.skipped
        report.progress = {
            "queued": queued, "remaining": remaining, "completed": completed, "found": found,
            "transcribed": transcribed, "failed": failed, "percent": round(100 * settled / found) if found else 100,
        }  # fmt: skip
        per_hour = report.throughput["files_per_hour"]
        report.throughput["eta_s"] = round(remaining / per_hour * 3600) if per_hour and remaining else None
    return report
