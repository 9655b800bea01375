"""Render a StatusReport for a terminal: plain lines, or a live view with progress bars (rich)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from rich.console import Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from app.status import StatusReport, WorkerStatus


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    return f"{seconds / 60:.0f}m ago"


def _eta(seconds: float | None) -> str:
    if not seconds:
        return "-"
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m"


def worker_line(worker: WorkerStatus) -> str:
    """One line per worker: id, state, file and stage with progress, totals, last beat."""
    state = worker.shown_state
    doing = ""
    if worker.file:
        progress = worker.stage_progress
        stage = f"{worker.stage}" + (f" {progress:.0f}%" if progress is not None else "")
        doing = f" {worker.file} [{stage}]"
    hours = worker.audio_s_done / 3600
    device = f" on {worker.where}" if worker.where else ""
    return (
        f"{worker.worker}{device}: {state}{doing}; {worker.files_done} done, {worker.files_failed} failed, "
        f"{hours:.2f} h audio; beat {_ago(worker.beat_age_s)}"
        + "".join(f"; {what}: {how}" for what, how in worker.fallbacks.items())
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
        plan, c = report.plan, report.plan.counts
        when = datetime.fromtimestamp(plan.at, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
        lines.append(
            f"last plan ({when}): found {plan.found}, done {c.done}, enqueued {c.enqueue}, already queued "
            f"{c.already_queued}, failed before {c.failed_before}, skipped {c.skipped}, foreign {c.foreign}, "
            + (f"subtitled {c.subtitled}, " if c.subtitled else "")
            + f"ignored {sum(plan.ignored.values())}"
        )
        p = report.progress
        lines.append(
            f"progress: {p['transcribed']}/{p['found']} files transcribed, {p['remaining']} to go, "
            f"{p['failed']} failed ({p['percent']}%)"
        )
    else:
        lines.append("last plan: none yet (run the director)")
    if report.front_door is not None:
        d = report.front_door
        lines.append(f"front door (fleet asr): {d['open']} open, {d['done']} done, {d['failed']} failed")
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
    """The --watch form: overall bar, a bar per busy worker, failures. File names are Text, never markup."""
    parts: list[Any] = [Text(status_lines(report)[0])]
    if report.progress:
        p = report.progress
        parts.append(Text(f"overall: {p['transcribed']}/{p['found']} transcribed, {p['failed']} failed"))
        parts.append(ProgressBar(total=100, completed=p["percent"]))
    table = Table("worker", "state", "file", "stage", "progress", "done", "beat", box=None)
    for w in report.workers:
        progress = w.stage_progress
        cells = (w.worker, w.shown_state, w.file or "", w.stage or "")
        table.add_row(
            *(Text(cell) for cell in cells),
            ProgressBar(total=100, completed=progress or 0, width=20) if progress is not None else Text(""),
            Text(str(w.files_done)), Text(_ago(w.beat_age_s)),
        )  # fmt: skip
    parts.append(table)
    parts += [Text(line) for line in status_lines(report)[2:4]]
    parts += [Text(f"failed: {f['source']}: {f['reason']}") for f in report.failures[:10]]
    parts.append(Text(time.strftime("updated %H:%M:%S"), style="dim"))
    return Group(*parts)
