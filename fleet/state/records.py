"""On-disk records under dest: the commit record inside each JSON transcript, and failure records."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import NamedTuple, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fleet.job.identity import TranscriptionSettings
from fleet.job.messages import Fingerprint, RelativePath, SourceFingerprint
from fleet.state.atomic import open_regular
from fleet.state.paths import failed_dir, subtitled_dir

COMMIT_KEY = "fleet"
# The commit record is the first key of the JSON transcript, so the done-check reads a few KiB,
# not a transcript that can be megabytes of word timings.
_HEAD_BYTES = 4096
_DECODER = json.JSONDecoder()
_RECORD_START = re.compile(rb'\A\s*\{\s*"' + COMMIT_KEY.encode() + rb'"\s*:\s*')


class RecordSummary(NamedTuple):
    """The facts the director's done-check compares; plain values, the director holds 100,000s."""

    source: str
    fingerprint: Fingerprint
    settings_key: str
    transcript_key: str | None = None  # None in records written before re-rendering existed
    words_key: str | None = None  # None in records written before speakers could be re-labelled
    media: tuple[tuple[str, str], ...] = ()  # (format, path under the source root) of subtitles beside the video
    silent: tuple[str, ...] = ()  # formats not written beside the video: it has no speech


class RecordHead(BaseModel):
    """What identifies the job a record was written for: source version and settings."""

    model_config = ConfigDict(extra="ignore")

    version: int = 1
    source: RelativePath
    fingerprint: SourceFingerprint
    settings_key: str
    transcript_key: str | None = None
    words_key: str | None = None
    # Subtitles written beside the video (the media layout): format -> path relative to the source root.
    media: dict[str, RelativePath] = Field(default_factory=dict)
    # Formats that belong beside the video but were not written there: no speech, and an empty subtitle would be
    # offered by media servers as a track. Done all the same.
    silent: list[str] = Field(default_factory=list)

    def summary(self) -> RecordSummary:
        """Plain values for the done-check; only these are validated when the director reads."""
        return RecordSummary(self.source, self.fingerprint.value(), self.settings_key, self.transcript_key,
                             self.words_key, tuple(sorted(self.media.items())), tuple(self.silent))  # fmt: skip


class LanguageCandidate(BaseModel):
    """One language the detection considered, with its probability."""

    language: str
    probability: float


class CommitRecord(RecordHead):
    """What a finished JSON transcript says about how it was made: every field it carries, declared here.

    Fields after `settings` default to empty so that records written by earlier versions still read.
    """

    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    settings: TranscriptionSettings
    model: str = ""
    model_path: str = ""
    device: str = ""
    language: str = ""
    language_probability: float | None = None
    language_candidates: list[LanguageCandidate] = Field(default_factory=list)
    language_source: str = ""  # "given", "detected", or why the fallback language was taken
    loops: dict[str, int] = Field(default_factory=dict)  # windows re-decoded, cut or dropped as silence
    audio_stream: dict[str, object] | None = None  # which stream of a multi-track file, and why
    alignment: str = ""  # how the words were timed, in words people read
    diarization: str = ""  # "off", or the backend and what it found ("senko 0.2.2: 2 speakers")
    speakers: dict[str, object] | None = None  # backend, count, labels, and any adjustment to the asked count
    audio_duration_s: float = 0.0
    stage_s: dict[str, float] = Field(default_factory=dict)
    worker: str = ""
    fleet_version: str = ""
    whisperx_version: str = ""
    finished_at: float = 0.0
    rendered_at: float | None = None  # set when only the layout or the formats were rewritten from this JSON
    rendered_by: str | None = None
    # sha256 of each output as written: a file that no longer matches was edited by someone, and is theirs now.
    outputs: dict[str, str] = Field(default_factory=dict)
    # Formats left alone because another tool or a person wrote that file (never replaced).
    kept: list[str] = Field(default_factory=list)


R = TypeVar("R", bound=RecordHead)


class FailureRecord(RecordHead):
    """Why a source file failed permanently; written by the worker under .fleet/failed/."""

    reason: str
    detail: str = ""
    failed_at: float
    worker: str = ""
    output_base: str = ""


class SubtitledRecord(RecordHead):
    """A video a worker found subtitled in its detected language (the media layout): not transcribed, and why."""

    reason: str
    language: str
    at: float
    worker: str = ""
    # What it relied on, so the director sees when that is gone: the sidecar (a name in the video's folder) as it
    # was, or the embedded stream's tag (the video's fingerprint covers it). Neither: a record from before, re-checked.
    sidecar: str | None = None
    sidecar_fingerprint: SourceFingerprint | None = None
    stream: str | None = None


def read_subtitled(dest: Path) -> dict[str, SubtitledRecord]:
    """All subtitled records under dest, by source path; unreadable ones are skipped."""
    return _read_records(subtitled_dir(dest), SubtitledRecord)


def read_commit_record(json_path: str | Path) -> RecordSummary | None:
    """Read the commit record at the head of a JSON transcript; None if absent or unreadable."""
    try:
        with os.fdopen(open_regular(Path(json_path)), "rb") as handle:  # a FIFO there must not hang a round
            head = handle.read(_HEAD_BYTES)
            match = _RECORD_START.match(head)
            record = None
            if match:
                try:
                    record, _ = _DECODER.raw_decode(head.decode("utf-8", "ignore"), match.end())
                except ValueError:
                    record = None  # record longer than the head: fall back to the whole file
            if record is None:
                record = json.loads(head + handle.read()).get(COMMIT_KEY)
        return RecordHead.model_validate(record).summary()
    except (OSError, ValueError, ValidationError, AttributeError):
        return None


def read_failures(dest: Path) -> dict[str, FailureRecord]:
    """All failure records under dest, by source path; unreadable ones are skipped."""
    return _read_records(failed_dir(dest), FailureRecord)


def _read_records(folder: Path, model: type[R]) -> dict[str, R]:
    """The records of one kind in `folder`, by source path; unreadable ones are skipped."""
    records: dict[str, R] = {}
    for path in folder.glob("*.json") if folder.is_dir() else ():
        try:
            record = model.model_validate_json(path.read_bytes())
        except (OSError, ValidationError):
            continue
        records[record.source] = record
    return records
