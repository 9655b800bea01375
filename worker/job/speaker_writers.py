"""whisperX's srt, vtt and tsv writers, made to show speakers: cues end at each speaker change, vtt voice tags."""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import groupby
from typing import Any, TextIO

from whisperx.utils import SubtitlesWriter, WriteSRT, WriteTSV, WriteVTT

SPEAKER_PREFIX = re.compile(r"^\[([^\]]+)\]: ")


def speaker_runs(result: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The result cut into consecutive segments of one speaker (all of it, once, without speakers)."""
    for _, run in groupby(result["segments"], key=lambda segment: segment.get("speaker")):
        yield {**result, "segments": list(run)}


class SpeakerCues(SubtitlesWriter):
    """whisperX's cues, laid out one speaker run at a time so a cue never joins two speakers' words."""

    def iterate_result(self, result: dict, options: dict) -> Iterator[tuple[str, str, str]]:
        for run in speaker_runs(result):
            yield from super().iterate_result(run, options)


class SpeakerSRT(SpeakerCues, WriteSRT):
    """srt with whisperX's `[SPEAKER_00]: ` prefix on each cue."""


class SpeakerVTT(SpeakerCues, WriteVTT):
    """vtt with WebVTT's voice tag `<v SPEAKER_00>` where whisperX writes a `[SPEAKER_00]: ` prefix."""

    def iterate_result(self, result: dict, options: dict) -> Iterator[tuple[str, str, str]]:
        for start, end, text in super().iterate_result(result, options):
            yield start, end, SPEAKER_PREFIX.sub(lambda match: f"<v {match.group(1)}>", text)


class SpeakerTSV(WriteTSV):
    """whisperX's tsv; with speakers a `speaker` column before the text."""

    def write_result(self, result: dict, file: TextIO, options: dict) -> None:
        if not any("speaker" in segment for segment in result["segments"]):
            super().write_result(result, file, options)
            return
        print("start", "end", "speaker", "text", sep="\t", file=file)
        for segment in result["segments"]:
            text = segment["text"].strip().replace("\t", " ")
            print(round(1000 * segment["start"]), round(1000 * segment["end"]), segment.get("speaker", ""), text,
                  sep="\t", file=file)  # fmt: skip
