"""The done-check: which outputs exist for an output base, and whether they are current."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from fleet.job.identity import TranscriptionSettings
from fleet.job.messages import Fingerprint
from fleet.state.records import RecordSummary, read_commit_record


@dataclass(frozen=True, slots=True)
class OutputState:
    """Which output formats exist for one output base, and the commit record if readable."""

    formats: frozenset[str]
    record: RecordSummary | None


def probe_outputs(
    dest: Path, bases: Iterable[str], formats: tuple[str, ...], source: Path | None = None
) -> dict[str, OutputState]:
    """Output state of every base that has at least one output; one listing per folder.

    A subtitle the record says was written beside its video (the media layout) counts where it is, under `source`.
    """
    by_folder: dict[str, list[str]] = defaultdict(list)
    for base in bases:
        folder, _, name = base.rpartition("/")
        by_folder[folder].append(name)
    states: dict[str, OutputState] = {}
    shared_sets: dict[tuple[str, ...], frozenset[str]] = {}  # a few distinct sets, 100,000s of states
    for folder, names in by_folder.items():
        folder_path = os.path.join(dest, folder)  # strings, not Paths: this loop runs per source
        try:
            listing = set(os.listdir(folder_path))
        except OSError:
            continue  # nothing written there yet (or unreadable): every base in it counts as new
        for name in names:
            found = tuple(fmt for fmt in formats if f"{name}.{fmt}" in listing)
            if found:
                present = shared_sets.setdefault(found, frozenset(found))
                record = read_commit_record(os.path.join(folder_path, f"{name}.json")) if "json" in present else None
                if record is not None and record.media and source is not None:
                    beside = {fmt for fmt, rel in record.media if fmt in formats and os.path.exists(os.path.join(source, rel))}
                    present = frozenset(present | beside)
                if record is not None and record.silent:  # nothing to show beside the video: nothing written, done
                    present = frozenset(present | {fmt for fmt in record.silent if fmt in formats})
                states[f"{folder}/{name}" if folder else name] = OutputState(present, record)
    return states


def same_job(record: RecordSummary, rel: str, fingerprint: Fingerprint, settings_key: str) -> bool:
    """Whether a record was written for this source version with these settings."""
    return (record.source, record.fingerprint, record.settings_key) == (rel, fingerprint, settings_key)


class DoneCheck(NamedTuple):
    """Whether a source's outputs are complete and current, and if not, why (`needed`)."""

    needed: str | None  # None: done
    # This exact job ran to completion once (its commit record is current, but outputs were deleted since):
    # running it again is a redo and needs a fresh job id.
    redo: bool = False

    @property
    def done(self) -> bool:
        return self.needed is None


DONE = DoneCheck(None)


def done_check(
    rel: str, fingerprint: Fingerprint, settings_key: str, wanted: frozenset[str], state: OutputState | None
) -> DoneCheck:
    """Done, or why the source needs transcribing (and whether that is a redo of a finished job)."""
    if state is None:
        return DoneCheck("new")
    record = state.record
    current = record is not None and same_job(record, rel, fingerprint, settings_key)
    missing = wanted - state.formats
    if missing:
        return DoneCheck(f"outputs incomplete (missing {', '.join(sorted(missing))})", current)
    if record is None:
        return DoneCheck("json output has no readable commit record")
    if record.source != rel:
        return DoneCheck(f"outputs belong to {record.source}")
    if record.fingerprint != fingerprint:
        return DoneCheck("source changed since it was transcribed")
    if record.settings_key != settings_key:
        return DoneCheck("transcription settings changed")
    return DONE


def renders_only(rel: str, fingerprint: Fingerprint, settings: TranscriptionSettings, state: OutputState | None) -> bool:
    """Whether the JSON on disk already holds this transcript's words (same source version, same transcript
    settings but for layout and speakers), so no speech model runs: the outputs are rendered from it, after
    the speakers are labelled anew where those settings differ."""
    if state is None or state.record is None:
        return False
    record = state.record
    if (record.source, record.fingerprint) != (rel, fingerprint):
        return False
    return record.transcript_key == settings.transcript_key() or record.words_key == settings.words_key()
