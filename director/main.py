"""`fleet director`: scan -> plan -> enqueue, ending with one summary line."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import structlog

from director.enqueue import PartialEnqueue, enqueue_jobs
from director.folder_settings import FolderSettings
from director.ledger import ledger_lock, load_ledger, save_ledger
from director.plan import Action, Plan, PlanInputs, candidate_bases, plan_sources
from director.report import log_scan_warnings, print_plan, scan_progress, summary_line
from director.round_report import follow_round
from director.scan import ScanResult, scan_sources
from director.subtitle_check import SubtitleCheck
from fleet.job.messages import TranscriptionJob
from fleet.media.layout import is_video_name
from fleet.media.output_names import names_for, stem_base
from fleet.process import exits
from fleet.roots.readiness import SourceError, source_unavailable
from fleet.settings import FleetSettings
from fleet.state.done import probe_outputs
from fleet.state.paths import FLEET_DIR, failure_record_path
from fleet.state.plan_summary import PlanCounts, PlanSummary
from fleet.state.planned_settings import PlannedSettings, write_planned_settings
from fleet.state.records import read_failures, read_subtitled
from fleet.transport.queue import JobQueue, QueueError
from fleet.transport.sqs import SqsQueue

log = structlog.get_logger()


class DestError(Exception):
    """The destination root cannot be created or written."""


@dataclass(frozen=True)
class DirectorRun:
    """How one director run ended: its exit code, and the plan summary it wrote (or would write, dry)."""

    exit_code: int
    summary: PlanSummary
    # Folder settings files that could not be used (one line each): their folders were skipped, the rest planned.
    setting_errors: tuple[str, ...] = ()
    # Of the files to redrive: those queued again, already queued, done, or deleted (their dead letters may go).
    redriven: frozenset[str] = frozenset()


def run_director(
    settings: FleetSettings,
    *,
    dry_run: bool = False,
    retry_failed: bool = False,
    redrive: frozenset[str] = frozenset(),
    show: int = 20,
    out: TextIO = sys.stdout,
    clock: Callable[[], float] = time.time,
    before_queue: Callable[[], None] | None = None,
    queue: JobQueue | None = None,
    on_outstanding: Callable[[list[TranscriptionJob]], None] | None = None,
) -> DirectorRun:
    """Run the director once: plan, enqueue, record the plan; returns the exit code and the plan's summary.

    `before_queue` runs between the scan and the first queue call (a local run waits there for its LocalStack);
    `queue` is the settings' SQS queue unless given (tests give an in-memory one); `on_outstanding` is told every
    job on the queue after the round, oldest first (the home side stages remote workers' audio ahead from it).
    """
    spec = settings.queue_spec()
    source, dest = settings.source_dir, settings.dest_dir
    with scan_progress() as on_folder:
        scan = scan_sources(source, exclude=dest, on_folder=on_folder)  # SourceError (exit 2) before any queue call
    _refuse_unmounted_source(source, dest, scan)
    log_scan_warnings(scan)
    if before_queue is not None:
        before_queue()
    queue = queue or SqsQueue.connect(settings.queue_endpoint(), spec)
    if dry_run:
        identity: str | None
        try:
            info = queue.lookup()
            identity = info.identity if info else "(queue not created yet)"
        except QueueError as exc:
            log.warning("queue not reachable, plan trusts the ledger", error=str(exc))
            identity = None
        now = clock()
        plan = build_plan(settings, scan, identity, spec.retention_s, now, retry_failed, redrive=redrive, keep_cache=False)
        summary = plan_summary(plan, scan, settings, spec.queue_name, now)
        print_plan(plan, scan, settings, spec.queue_name, show, out)
        print(summary_line(summary, dry_run=True), file=out)
        return DirectorRun(_report_setting_errors(plan, exits.OK), summary, tuple(plan.setting_errors))
    _ensure_dest(dest)
    # Ledger read, enqueue, ledger written: one director at a time (the watch service and a manual run).
    with ledger_lock(dest):
        identity = queue.ensure().identity
        queue_empty = queue.counts().pending == 0
        now = clock()
        plan = build_plan(settings, scan, identity, spec.retention_s, now, retry_failed, queue_empty, redrive)
        code, summary, sent = _enqueue_and_record(plan, scan, settings, queue, identity, now, out)
        if on_outstanding is not None:
            outstanding = [d for d in plan.decisions if d.action is Action.QUEUED or d.dedup_id in sent]
            on_outstanding(sorted((plan.job(d) for d in outstanding), key=lambda job: job.enqueued_at))
        redriven = _redriven(plan, scan, settings, redrive, sent) if redrive else frozenset()
        return DirectorRun(_report_setting_errors(plan, code), summary, tuple(plan.setting_errors), redriven)


def _report_setting_errors(plan: Plan, code: int) -> int:
    """A folder settings file that cannot be used: its files were skipped; say which file and line, exit 2."""
    for error in plan.setting_errors:
        log.error("folder settings file unusable: the files below it are skipped", error=error)
        print(f"fleet: {error}", file=sys.stderr)
    return code or (exits.BAD_INPUT if plan.setting_errors else exits.OK)


def build_plan(
    settings: FleetSettings,
    scan: ScanResult,
    queue_identity: str | None,
    retention_s: float,
    now: float,
    retry_failed: bool,
    queue_empty: bool = False,
    redrive: frozenset[str] = frozenset(),
    keep_cache: bool = True,
) -> Plan:
    """Read what exists under dest (outputs, failures, ledger) and plan every scanned source.

    An empty queue holds none of the ledger's messages: they were consumed without a transcript
    (or lost), so nothing may wait for them as "already queued".
    """
    dest = settings.dest_dir
    ledger = load_ledger(dest, queue_identity)
    if queue_empty and ledger:
        log.info("the queue holds no message: ledger entries dropped, unfinished files are queued again", entries=len(ledger))
        ledger = {}
    folder_settings = FolderSettings(settings.transcription(), settings.source_dir, scan.settings_folders,
                                     (settings.whisper_min_speakers, settings.whisper_max_speakers))  # fmt: skip
    names = names_for(dest)
    media = settings.layout == "media" and settings.skip_subtitled
    subtitles = SubtitleCheck(settings.source_dir, dest, settings.probe_timeout_s, now) if media else None
    outputs = probe_outputs(dest, candidate_bases(scan.files, names), settings.formats(), settings.source_dir)
    language = settings.transcription().subtitle_language_known()
    if subtitles is not None and language:
        new_videos = [s for s in scan.files if is_video_name(s.rel) and names.fit(stem_base(s.rel)) not in outputs]
        subtitles.prefetch(new_videos, language, settings.enqueue_threads * 2)
    plan = plan_sources(
        PlanInputs(
            sources=scan.files,
            outputs=outputs,
            names=names,
            failures=read_failures(dest),
            ledger=ledger,
            settings=settings.transcription(),
            formats=settings.formats(),
            settings_for=folder_settings.for_source if scan.settings_folders else None,
            now=now,
            retention_s=retention_s,
            retry_failed=retry_failed,
            redrive=redrive,
            min_age_s=settings.min_age_s,
            subtitled=subtitles,
            subtitled_records=read_subtitled(dest) if media else {},
            sidecar_holds=subtitles.sidecar_holds if subtitles is not None else None,
        )
    )
    if subtitles is not None and keep_cache:  # a dry run writes nothing
        _save_quietly(subtitles)
    plan.setting_errors = [str(error) for error in folder_settings.errors()]
    return plan


def finish_round(settings: FleetSettings, clock: Callable[[], float] = time.time) -> str | None:
    """Plan once more without queueing (a local run's end): the round's summary goes out if its files are finished."""
    if not settings.notify_urls:
        return None
    scan = scan_sources(settings.source_dir, exclude=settings.dest_dir)
    with ledger_lock(settings.dest_dir):
        now = clock()
        plan = build_plan(settings, scan, None, settings.queue_spec().retention_s, now, retry_failed=False)
        return _follow_round(plan, set(), settings, now)


def _follow_round(plan: Plan, sent: set[str], settings: FleetSettings, now: float) -> str | None:
    """The round summary's bookkeeping must never fail a director round."""
    try:
        return follow_round(plan, sent, settings.dest_dir, settings.notify_urls, now)
    except OSError as exc:
        log.warning("round summary not kept", error=str(exc))
        return None


def _save_quietly(subtitles: SubtitleCheck) -> None:
    """The probe cache is an optimisation: a destination that refuses it (a dry run on a read-only dest) costs only time."""
    try:
        subtitles.save()
    except OSError as exc:
        log.warning("subtitle probe cache not saved", error=str(exc))


def _redriven(plan: Plan, scan: ScanResult, settings: FleetSettings, redrive: frozenset[str],
              sent: set[str]) -> frozenset[str]:  # fmt: skip
    """The files to redrive that need their dead letters no more: on the queue again, done, or deleted."""
    settled = {d.source.rel for d in plan.decisions if d.source.rel in redrive and (
        d.action in (Action.DONE, Action.QUEUED) or (d.action is Action.ENQUEUE and d.dedup_id in sent))}  # fmt: skip
    scanned = {source.rel for source in scan.files}
    deleted = {rel for rel in redrive - scanned if _deleted(settings.source_dir, rel)}
    return frozenset(settled | deleted)


def _enqueue_and_record(
    plan: Plan, scan: ScanResult, settings: FleetSettings, queue: JobQueue, identity: str, now: float, out: TextIO
) -> tuple[int, PlanSummary, set[str]]:
    """Enqueue the plan's new jobs, then persist the ledger and the last plan, even on failure."""
    dest = settings.dest_dir
    _drop_failures_of_deleted_sources(settings, scan)
    ledger = {d.dedup_id: d.enqueued_at for d in plan.of(Action.QUEUED)}
    to_send = plan.of(Action.ENQUEUE)
    # Before the round's messages exist: a worker never takes one of them for stale, only older ones.
    write_planned_settings(dest, PlannedSettings(written_at=now, folders=plan.folder_keys))
    exit_code = exits.OK
    try:
        result = enqueue_jobs(queue, (plan.job(d) for d in to_send), settings.enqueue_threads)
    except PartialEnqueue as exc:
        result = exc.result
        log.error("enqueue interrupted", error=str(exc), sent=len(result.sent), planned=len(to_send))
        exit_code = exits.QUEUE
    ledger.update(dict.fromkeys(result.sent, now))
    save_ledger(dest, identity, ledger)
    if result.refused:
        log.error("queue refused some messages; the next run retries them", refused=len(result.refused))
        exit_code = exits.QUEUE
    summary = plan_summary(plan, scan, settings, queue.spec.queue_name, now, enqueued=len(result.sent))
    summary.write(dest)
    _follow_round(plan, set(result.sent), settings, now)
    print(summary_line(summary), file=out)
    return exit_code, summary, set(result.sent)


def plan_summary(plan: Plan, scan: ScanResult, settings: FleetSettings, queue_name: str, now: float,
                 enqueued: int | None = None) -> PlanSummary:  # fmt: skip
    """The plan as last-plan.json keeps it; `enqueued` what the queue took (all of the plan's new jobs, dry)."""
    counts = {action.value: count for action, count in plan.counts().items()}
    if enqueued is not None:
        counts[Action.ENQUEUE.value] = enqueued
    return PlanSummary(
        at=now, source=str(settings.source_dir), dest=str(settings.dest_dir), queue=queue_name,
        settings_key=settings.transcription().key(), found=len(scan.files), counts=PlanCounts.model_validate(counts),
        ignored=dict(scan.ignored),
    )  # fmt: skip


def _drop_failures_of_deleted_sources(settings: FleetSettings, scan: ScanResult) -> None:
    """A failure of a file deleted since is resolved: its record leaves status. Not while its folder is missing
    (a disk not mounted is no deletion)."""
    found = {source.rel for source in scan.files}
    for rel in read_failures(settings.dest_dir).keys() - found:
        if _deleted(settings.source_dir, rel):
            failure_record_path(settings.dest_dir, rel).unlink(missing_ok=True)
            log.info("failure record dropped: its source was deleted", file=rel)


def _deleted(source: Path, rel: str) -> bool:
    """Whether the file is gone from a source that is there (a folder missing is a disk not mounted, no deletion)."""
    return source_unavailable(source, rel) is None and not os.path.lexists(source / rel)


def _refuse_unmounted_source(source: Path, dest: Path, scan: ScanResult) -> None:
    """An empty source beside a destination full of transcripts is a disk not mounted, not a library emptied."""
    if scan.files or source_unavailable(source, "") is None:
        return
    transcripts = (p for p in dest.rglob("*.json") if FLEET_DIR not in p.relative_to(dest).parts) if dest.is_dir() else iter(())
    if next(transcripts, None) is not None:
        raise SourceError(
            f"source folder {source} is empty but {dest} holds transcripts: is the disk mounted? nothing was planned"
        )


def _ensure_dest(dest: Path) -> None:
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DestError(f"destination folder {dest} cannot be created: {exc.strerror}") from exc
    if not dest.is_dir():
        raise DestError(f"destination {dest} is not a folder")
