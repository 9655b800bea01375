"""Score speaker labels against the two-speaker reference in tests/data/real-speech/diarization/."""

from __future__ import annotations

import json
from collections import Counter
from itertools import permutations
from pathlib import Path
from typing import Any

from tests.support.paths import REPO_ROOT

DIARIZATION = REPO_ROOT / "tests" / "data" / "real-speech" / "diarization"
SAMPLE = DIARIZATION / "sample.wav"


def reference_turns(rttm: Path = DIARIZATION / "sample.rttm") -> list[tuple[float, float, str]]:
    """(start, end, speaker) of each RTTM row."""
    turns = []
    for line in rttm.read_text().splitlines():
        fields = line.split()
        start, duration = float(fields[3]), float(fields[4])
        turns.append((start, start + duration, fields[7]))
    return turns


def diarization_error_rate(hypothesis: list[tuple[float, float, str]], reference: list[tuple[float, float, str]]) -> float:
    """Frame-level DER with the optimal speaker mapping, no collar, overlap scored (pyannote.metrics)."""
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.diarization import DiarizationErrorRate

    def annotation(turns: list[tuple[float, float, str]]) -> Annotation:
        result = Annotation()
        for start, end, speaker in turns:
            result[Segment(start, end)] = speaker
        return result

    return float(DiarizationErrorRate(collar=0.0, skip_overlap=False)(annotation(reference), annotation(hypothesis)))


def word_turns(transcript: dict[str, Any]) -> list[tuple[float, float, str]]:
    """The transcript's labelled words as speaker turns."""
    return [(w["start"], w["end"], w["speaker"]) for s in transcript["segments"] for w in s.get("words", [])
            if "start" in w and "speaker" in w]  # fmt: skip


def sentences_attributed(transcript: dict[str, Any],
                         reference: Path = DIARIZATION / "sample.segments.json") -> tuple[int, int]:  # fmt: skip
    """How many reference sentences got the right speaker (most of the words inside them, best label mapping)."""
    sentences = json.loads(reference.read_text())
    words = [(w["start"], w["end"], w["speaker"]) for s in transcript["segments"] for w in s.get("words", [])
             if "start" in w and "speaker" in w]  # fmt: skip
    said: list[tuple[str, str | None]] = []
    for sentence in sentences:
        inside = Counter(speaker for start, end, speaker in words
                         if min(end, sentence["end"]) - max(start, sentence["start"]) > 0.5 * (end - start))  # fmt: skip
        said.append((sentence["speaker"], inside.most_common(1)[0][0] if inside else None))
    names = sorted({name for name, _ in said})
    labels = sorted({label for _, label in said if label})
    best = 0
    for chosen in permutations(labels, min(len(labels), len(names))):
        mapping = dict(zip(chosen, names, strict=False))
        best = max(best, sum(1 for name, label in said if mapping.get(label or "") == name))
    return best, len(sentences)
