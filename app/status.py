"""`fleet status`: queue counts (from attributes, never a receive), the last plan, workers, failures."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fleet.layout import last_plan_path, workers_dir
from fleet.queue import JobQueue, QueueError
from fleet.records import read_failures
from fleet.settings import FleetSettings


@dataclass
class StatusReport:
    """Everything `fleet status` and the dashboard show, as plain values (also the --json output)."""

    at: float
    queue_name: str
    queue: dict[str, int] | None = None
    queue_error: str | None = None
    plan: dict[str, Any] | None = None
    progress: dict[str, int] = field(default_factory=dict)
    workers: list[dict[str, Any]] = field(default_factory=list)
    throughput: dict[str, float | None] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


WORKER_RECORD_TTL_S = 86_400


def worker_records(dest: Path, now: float) -> list[dict[str, Any]]:
    """Every recent worker's heartbeat record, marked lost when it has been silent too long.

    Records of workers silent for a day (replaced containers, other machines long gone) age out.
    """
    records = []
    folder = workers_dir(dest)
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        record = read_json(path)
        if not record or now - record.get("last_beat", 0) > WORKER_RECORD_TTL_S:
            continue
        record["beat_age_s"] = round(now - record.get("last_beat", 0), 1)
        silent = record["beat_age_s"] > record.get("lost_after_s", 60)
        record["lost"] = silent and record.get("state") != "stopped"
        records.append(record)
    return records


def throughput(workers: list[dict[str, Any]], now: float) -> dict[str, float | None]:
    """Files and audio hours per hour over the live workers' lifetimes."""
    files_per_s = audio_per_s = 0.0
    for worker in workers:
        if worker["lost"] or worker.get("state") == "stopped":
            continue
        uptime = max(1.0, now - worker.get("started_at", now))
        files_per_s += worker.get("files_done", 0) / uptime
        audio_per_s += worker.get("audio_s_done", 0.0) / uptime
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
    report.plan = read_json(last_plan_path(dest))
    report.workers = worker_records(dest, now)
    report.throughput = throughput(report.workers, now)
    report.failures = sorted(
        ({"source": f.source, "reason": f.reason, "failed_at": f.failed_at} for f in read_failures(dest).values()),
        key=lambda f: -f["failed_at"],
    )
    if report.plan:
        counts = report.plan.get("counts", {})
        queued = counts.get("enqueue", 0) + counts.get("already queued", 0)
        remaining = (report.queue or {}).get("visible", 0) + (report.queue or {}).get("in_flight", 0)
        completed = max(0, queued - remaining)
        # Against everything found, not only this round's queue: a watching director's later rounds
        # queue nothing once all is done, and "0 of 0" would hide that the work is finished.
        failed_since_plan = sum(1 for f in report.failures if f["failed_at"] >= report.plan.get("at", 0))
        found, failed = report.plan.get("found", 0), counts.get("failed before", 0) + failed_since_plan
        transcribed = counts.get("done", 0) + max(0, completed - failed_since_plan)
        settled = transcribed + failed + counts.get("skipped", 0)
        report.progress = {
            "queued": queued, "remaining": remaining, "completed": completed, "found": found,
            "transcribed": transcribed, "failed": failed, "percent": round(100 * settled / found) if found else 100,
        }  # fmt: skip
        per_hour = report.throughput["files_per_hour"]
        report.throughput["eta_s"] = round(remaining / per_hour * 3600) if per_hour and remaining else None
    return report
