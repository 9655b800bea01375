"""The job message schema (versioned) and the identities derived from it."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Literal, NamedTuple

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from fleet.job.identity import OUTPUT_FORMATS, OutputFormat, TranscriptionSettings

MAX_PATH_BYTES = 4096
_CONTROL_CHARS = re.compile("[\x00-\x1f\x7f]")
_SURROGATES = re.compile("[\ud800-\udfff]")  # how Python spells file names that are not UTF-8
_UNCLEAN_PARTS = re.compile(r"(^|/)\.{0,2}(/|$)")  # an empty, '.' or '..' component


def unsafe_path_reason(value: str) -> str | None:
    """Why `value` is not a clean relative POSIX path inside a root, or None if it is."""
    if not value:
        return "empty path"
    if len(value.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        return f"path longer than {MAX_PATH_BYTES} bytes"
    if _CONTROL_CHARS.search(value):
        return "control character in path"
    if _SURROGATES.search(value):
        return "path is not valid UTF-8"
    if value.startswith("/"):
        return "absolute path"
    if _UNCLEAN_PARTS.search(value):
        return "path is not normalised (empty, '.' or '..' component)"
    return None


def _check_relative_path(value: str) -> str:
    reason = unsafe_path_reason(value)
    if reason:
        raise ValueError(reason)
    return value


RelativePath = Annotated[str, AfterValidator(_check_relative_path)]


def _check_job_path(value: str) -> str:
    # The director never queues hidden files, and a hidden output base could overwrite .fleet/ state.
    if any(part.startswith(".") for part in value.split("/")):
        raise ValueError("hidden path component")
    return value


JobPath = Annotated[RelativePath, AfterValidator(_check_job_path)]


class Fingerprint(NamedTuple):
    """One version of a source file, known without reading it: its size and modification time. A plain value:
    the director compares 100,000s of them; messages and records carry it as SourceFingerprint."""

    size: int
    mtime_ns: int

    @classmethod
    def of(cls, info: os.stat_result) -> Fingerprint:
        return cls(info.st_size, info.st_mtime_ns)


class SourceFingerprint(BaseModel):
    """A Fingerprint as messages and records carry it (validated JSON)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    size: int = Field(ge=0)
    mtime_ns: int

    def value(self) -> Fingerprint:
        return Fingerprint(self.size, self.mtime_ns)


class AttemptKind(StrEnum):
    """Why a job runs again although it ran before: each kind gives the job a fresh deduplication id."""

    FIRST = ""
    RETRY = "retry"  # after a recorded failure (--retry-failed), marked with when it failed
    REDO = "redo"  # its outputs were deleted since it finished, marked with what is missing
    REDRIVE = "redrive"  # sent back from the dead-letter queue, marked with when


@dataclass(frozen=True)
class Attempt:
    """Which run of a job a message is; on the wire as `kind:mark` ("" for a first attempt)."""

    kind: AttemptKind = AttemptKind.FIRST
    mark: str = ""

    def __str__(self) -> str:
        return f"{self.kind}:{self.mark}" if self.kind else ""


FIRST_ATTEMPT = Attempt()


class TranscriptionJob(BaseModel):
    """One message on the queue: transcribe `path` (relative to the source root) into `output_base`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = 1
    path: JobPath
    output_base: JobPath
    fingerprint: SourceFingerprint
    settings: TranscriptionSettings
    # The outputs to write; the director's done-check expects exactly these.
    formats: tuple[OutputFormat, ...] = OUTPUT_FORMATS
    enqueued_at: float
    # str(Attempt): empty for a first attempt. A deliberate second run of a job that already ran (retrying a
    # failure, redoing deleted outputs) needs a fresh id, or SQS would drop it as a duplicate.
    attempt: str = ""
    # The JSON on disk holds this transcript already: rewrite the other formats from it, run no model.
    render_only: bool = False

    def dedup_id(self) -> str:
        """MessageDeduplicationId: same file version with the same settings is the same job."""
        return job_dedup_id(self.path, self.fingerprint.size, self.fingerprint.mtime_ns, self.settings.key(), self.attempt)

    def group_id(self) -> str:
        """MessageGroupId: one group per source file, so files never block one another."""
        return job_group_id(self.path)


def job_dedup_id(path: str, size: int, mtime_ns: int, settings_key: str, attempt: str = "") -> str:
    """Hash of (relative path, fingerprint, settings key, attempt); 64 hex chars fit SQS's 128 limit."""
    raw = f"{path}\0{size}:{mtime_ns}\0{settings_key}\0{attempt}"
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def job_group_id(path: str) -> str:
    """Hash of the relative path: SQS group ids allow only 128 ASCII characters."""
    return hashlib.sha256(path.encode("utf-8")).hexdigest()

