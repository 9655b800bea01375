"""What a director run shows a person: scan progress, scan warnings, the plan for --dry-run, the one summary line."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

import structlog
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from director.plan import Action, Plan
from director.scan import ScanResult
from fleet.settings import FleetSettings
from fleet.state.plan_summary import PlanSummary

log = structlog.get_logger()
MAX_WARNINGS_LOGGED = 20


@contextmanager
def scan_progress() -> Iterator[Callable[[int], None] | None]:
    """A live 'scanning: N files' line on a terminal (big trees take a while); nothing otherwise."""
    console = Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    columns = (SpinnerColumn(), TextColumn("scanning source: {task.completed} media files"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("scan", total=None)
        yield lambda files: progress.update(task, completed=files)


def log_scan_warnings(scan: ScanResult) -> None:
    for warning in scan.warnings[:MAX_WARNINGS_LOGGED]:
        log.warning(warning)
    if len(scan.warnings) > MAX_WARNINGS_LOGGED:
        log.warning("more scan warnings not shown", count=len(scan.warnings) - MAX_WARNINGS_LOGGED)


def summary_line(summary: PlanSummary, *, dry_run: bool = False) -> str:
    """The one line every run ends with, from the plan summary it records."""
    counts = summary.counts
    verb = "would enqueue" if dry_run else "enqueued"
    return (
        f"director: found {summary.found}, done {counts.done}, {verb} {counts.enqueue}, "
        f"already queued {counts.already_queued}, failed before {counts.failed_before}, "
        f"skipped {counts.skipped}, settling {counts.settling}, foreign {counts.foreign}, "
        + (f"subtitled {counts.subtitled}, " if counts.subtitled else "")  # the media layout only
        + f"ignored {sum(summary.ignored.values())}"
    )


def print_plan(plan: Plan, scan: ScanResult, settings: FleetSettings, queue_name: str, show: int, out: TextIO) -> None:
    """Human-readable plan for --dry-run: counts and the first items of each kind."""
    print(
        f"plan: {settings.source_dir} -> {settings.dest_dir} (queue {queue_name}, "
        f"model {settings.whisper_model}, settings {settings.transcription().key()})",
        file=out,
    )
    for action in (Action.ENQUEUE, Action.QUEUED, Action.FAILED, Action.SKIPPED, Action.SETTLING, Action.FOREIGN,
                   Action.SUBTITLED):  # fmt: skip
        decisions = plan.of(action)
        if decisions:
            print(f"{action.value} ({len(decisions)}):", file=out)
            _print_items([f"{d.source.rel}  [{d.reason}]" for d in decisions], show, out)
    if plan.renamed:
        print(f"renamed outputs ({len(plan.renamed)}):", file=out)
        _print_items([f"{rel} -> {rel}.*  [{why}]" for rel, why in sorted(plan.renamed.items())], show, out)
    print(f"done: {plan.counts()[Action.DONE]}", file=out)
    if scan.ignored:
        reasons = ", ".join(f"{reason} {n}" for reason, n in scan.ignored.most_common())
        print(f"ignored: {sum(scan.ignored.values())} ({reasons})", file=out)


def _print_items(items: list[str], show: int, out: TextIO) -> None:
    for item in items[:show]:
        print(f"  {item}", file=out)
    if len(items) > show:
        print(f"  ... and {len(items) - show} more", file=out)
