"""Failure kinds and the failure records people read under <dest>/.fleet/failed/."""

from __future__ import annotations

import time
from pathlib import Path

from fleet.job.messages import SourceFingerprint, TranscriptionJob
from fleet.state.atomic import write_atomic
from fleet.state.paths import failure_record_path
from fleet.state.records import FailureRecord


class JobFailure(Exception):
    """A job that could not finish: a one-line reason, and detail such as ffmpeg's stderr tail."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


class PermanentFailure(JobFailure):
    """The same input will fail the same way: record it and dead-letter the message."""


class TransientFailure(JobFailure):
    """Worth another attempt later (disk full, dest read-only, wrong worker): keep the message."""


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
    record = FailureRecord(
        source=job.path,
        fingerprint=fingerprint,
        settings_key=job.settings.key(),
        reason=reason,
        detail=detail,
        failed_at=time.time(),
        worker=worker_id,
        output_base=job.output_base,
    )
    path = failure_record_path(dest, job.path)
    write_atomic(path, record.model_dump_json(indent=2), owner=owner)
    return path


def clear_failure_record(dest: Path, rel_path: str) -> None:
    """A file that failed before and now succeeded has no failure left to show."""
    failure_record_path(dest, rel_path).unlink(missing_ok=True)
