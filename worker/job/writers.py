"""Render a transcript in every requested format and write them durably, JSON (the commit record) last."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fleet.job.identity import TranscriptionSettings
from fleet.outputs.commit import BesideVideo, commit_outputs
from fleet.state.records import CommitRecord
from worker.job import speaker_writers


def render(result: dict[str, Any], fmt: str, options: dict[str, Any]) -> str:
    """One format as text, with whisperX's own writers (so output matches the whisperx CLI).

    With speakers: txt and srt carry whisperX's `[SPEAKER_00]: ` prefix, vtt a voice tag `<v SPEAKER_00>`,
    tsv a speaker column; no subtitle cue spans a speaker change.
    """
    from whisperx.utils import WriteTXT

    writers = {"txt": WriteTXT, "srt": speaker_writers.SpeakerSRT, "vtt": speaker_writers.SpeakerVTT,
               "tsv": speaker_writers.SpeakerTSV}  # fmt: skip
    buffer = io.StringIO()
    writers[fmt]("").write_result(result, buffer, options)
    return buffer.getvalue()


def write_outputs(
    dest: Path,
    base: str,
    formats: tuple[str, ...],
    result: dict[str, Any],
    record: CommitRecord,
    subtitle_options: dict[str, Any],
    still_ours: Callable[[], bool],
    owner: tuple[int, int] | None = None,
    beside: BesideVideo | None = None,
) -> list[Path]:
    """Render with whisperX's writers and commit (fleet.outputs.commit): every format atomically, JSON last."""
    return commit_outputs(dest, base, formats, lambda fmt: render(result, fmt, subtitle_options), result, record, still_ours,
                          owner, beside, render_any=render_with)  # fmt: skip


def render_with(result: dict[str, Any], fmt: str, settings: TranscriptionSettings) -> str:
    """Any transcript in `fmt`, as the fleet writes it under `settings` (an older JSON's own)."""
    return render(result, fmt, settings.subtitle_options())
