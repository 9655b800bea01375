"""The failure records people read under <dest>/.fleet/failed/: written when a file fails, cleared when it succeeds."""

from __future__ import annotations

import time
from pathlib import Path

from fleet.job.messages import SourceFingerprint, TranscriptionJob
from fleet.process.secrets import redact
from fleet.state.atomic import write_atomic
from fleet.state.paths import failure_record_path
from fleet.state.records import FailureRecord


def write_failure_record(
    dest: Path,
    job: TranscriptionJob,
    fingerprint: SourceFingerprint,
    reason: str,
    detail: str,
    worker_id: str,
    owner: tuple[int, int] | None = None,
) -> Path:
    """Record why this version of the source failed; the director then reports it as failed before."""
    return save_failure_record(dest, FailureRecord(
        source=job.path,
        fingerprint=fingerprint,
        settings_key=job.settings.key(),
        reason=reason,
        detail=detail,
        failed_at=time.time(),
        worker=worker_id,
        output_base=job.output_base,
    ), owner)  # fmt: skip


def save_failure_record(dest: Path, record: FailureRecord, owner: tuple[int, int] | None = None) -> Path:
    """Write a failure record where the director looks (a remote worker's arrives whole, through the bucket)."""
    path = failure_record_path(dest, record.source)
    shown = record.model_copy(update={"reason": redact(record.reason), "detail": redact(record.detail)})  # error texts name URLs
    write_atomic(path, shown.model_dump_json(indent=2), owner=owner)
    return path


def clear_failure_record(dest: Path, rel_path: str) -> None:
    """A file that failed before and now succeeded has no failure left to show."""
    failure_record_path(dest, rel_path).unlink(missing_ok=True)
