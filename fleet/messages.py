"""The job message schema (versioned) and the identities derived from it."""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from fleet.settings import TranscriptionSettings

MAX_PATH_BYTES = 4096


def unsafe_path_reason(value: str) -> str | None:
    """Why `value` is not a clean relative POSIX path inside a root, or None if it is."""
    if not value:
        return "empty path"
    if len(value.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        return f"path longer than {MAX_PATH_BYTES} bytes"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return "control character in path"
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        return "path is not valid UTF-8"
    if value.startswith("/"):
        return "absolute path"
    parts = value.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "path is not normalised (empty, '.' or '..' component)"
    return None


def _check_relative_path(value: str) -> str:
    reason = unsafe_path_reason(value)
    if reason:
        raise ValueError(reason)
    return value


RelativePath = Annotated[str, AfterValidator(_check_relative_path)]


class SourceFingerprint(BaseModel):
    """What identifies one version of a source file without reading it: size and mtime."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    size: int = Field(ge=0)
    mtime_ns: int

    def token(self) -> str:
        """Compact form used inside ids."""
        return f"{self.size}:{self.mtime_ns}"


class TranscriptionJob(BaseModel):
    """One message on the queue: transcribe `path` (relative to the source root) into `output_base`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = 1
    path: RelativePath
    output_base: RelativePath
    fingerprint: SourceFingerprint
    settings: TranscriptionSettings
    enqueued_at: float
    # Empty for a first attempt. A deliberate second run of a job that already ran (retrying a
    # failure, redoing deleted outputs) needs a fresh id, or SQS would drop it as a duplicate.
    attempt: str = ""

    def dedup_id(self) -> str:
        """MessageDeduplicationId: same file version with the same settings is the same job."""
        return job_dedup_id(self.path, self.fingerprint, self.settings.key(), self.attempt)

    def group_id(self) -> str:
        """MessageGroupId: one group per source file, so files never block one another."""
        return job_group_id(self.path)


def job_dedup_id(path: str, fingerprint: SourceFingerprint, settings_key: str, salt: str = "") -> str:
    """Hash of (relative path, fingerprint, settings key); 64 hex chars fit SQS's 128 limit."""
    raw = f"{path}\0{fingerprint.token()}\0{settings_key}\0{salt}"
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def job_group_id(path: str) -> str:
    """Hash of the relative path: SQS group ids allow only 128 ASCII characters."""
    return hashlib.sha256(path.encode("utf-8")).hexdigest()

