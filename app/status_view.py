"""Render a StatusReport for a terminal: plain lines, or a live view with progress bars (rich)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from rich.console import Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from app.status import StatusReport


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    return f"{seconds / 60:.0f}m ago"


def _eta(seconds: float | None) -> str:
    if not seconds:
        return "-"
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m"


def worker_line(worker: dict[str, Any]) -> str:
    """One line per worker: id, state, file and stage with progress, totals, last beat."""
    state = "LOST" if worker["lost"] else worker.get("state", "?")
    doing = ""
    if worker.get("file"):
        progress = worker.get("stage_progress")
        stage = f"{worker.get('stage')}" + (f" {progress:.0f}%" if progress is not None else "")
        doing = f" {worker['file']} [{stage}]"
    hours = worker.get("audio_s_done", 0) / 3600
    return (
        f"{worker['worker']}: {state}{doing}; {worker.get('files_done', 0)} done, {worker.get('files_failed', 0)} failed, "
        f"{hours:.2f} h audio; beat {_ago(worker['beat_age_s'])}"
        + "".join(f"; {what}: {how}" for what, how in (worker.get("fallbacks") or {}).items())
    )


def status_lines(report: StatusReport) -> list[str]:
    """The plain text form of `fleet status`."""
    lines = []
    if report.queue is not None:
        q = report.queue
        lines.append(
            f"queue {report.queue_name}: {q['visible']} waiting, {q['in_flight']} in progress, "
            f"{q['delayed']} delayed, {q['dead_letter']} dead-lettered"
        )
    else:
        lines.append(f"queue {report.queue_name}: unavailable: {report.queue_error}")
    if report.plan:
        c = report.plan.get("counts", {})
        when = datetime.fromtimestamp(report.plan["at"], tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
        ignored = sum(report.plan.get("ignored", {}).values())
        lines.append(
            f"last plan ({when}): found {report.plan.get('found', 0)}, done {c.get('done', 0)}, "
            f"enqueued {c.get('enqueue', 0)}, already queued {c.get('already queued', 0)}, "
            f"failed before {c.get('failed before', 0)}, skipped {c.get('skipped', 0)}, ignored {ignored}"
        )
        p = report.progress
        lines.append(
            f"progress: {p['transcribed']}/{p['found']} files transcribed, {p['remaining']} to go, "
            f"{p['failed']} failed ({p['percent']}%)"
        )
    else:
        lines.append("last plan: none yet (run the director)")
    t = report.throughput
    lines.append(
        f"throughput: {t.get('files_per_hour', 0)} files/h, {t.get('audio_hours_per_hour', 0)} audio h/h, "
        f"ETA {_eta(t.get('eta_s'))}"
    )
    lines.append(f"workers ({len(report.workers)}):")
    lines.extend(f"  {worker_line(w)}" for w in report.workers)
    lines.append(f"failures ({len(report.failures)}):")
    lines.extend(f"  {f['source']}: {f['reason']}" for f in report.failures[:20])
    return lines


def live_view(report: StatusReport) -> Group:
    """The --watch form: overall bar, a bar per busy worker, failures."""
    parts: list[Any] = [Text(status_lines(report)[0])]
    if report.progress:
        p = report.progress
        parts.append(Text(f"overall: {p['transcribed']}/{p['found']} transcribed, {p['failed']} failed"))
        parts.append(ProgressBar(total=100, completed=p["percent"]))
    table = Table("worker", "state", "file", "stage", "progress", "done", "beat", box=None)
    for w in report.workers:
        progress = w.get("stage_progress")
        table.add_row(
            w["worker"], "LOST" if w["lost"] else w.get("state", "?"), w.get("file") or "", w.get("stage") or "",
            ProgressBar(total=100, completed=progress or 0, width=20) if progress is not None else Text(""),
            str(w.get("files_done", 0)), _ago(w["beat_age_s"]),
        )  # fmt: skip
    parts.append(table)
    parts += [Text(line) for line in status_lines(report)[2:4]]
    parts += [Text(f"failed: {f['source']}: {f['reason']}") for f in report.failures[:10]]
    parts.append(Text(time.strftime("updated %H:%M:%S"), style="dim"))
    return Group(*parts)
