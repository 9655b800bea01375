"""Speaker turns onto a transcript: every word gets a speaker, and a segment that spans a change is split there."""

from __future__ import annotations

from itertools import groupby
from typing import Any

from worker.speech.results import words_of
from worker.speech.speakers import SpeakerTurns

LANGUAGES_WITHOUT_SPACES = ("ja", "zh")  # as whisperX's writers join words


def strip_speakers(result: dict[str, Any]) -> None:
    """Remove every speaker label (before labelling anew, or when speakers were turned off)."""
    for segment in result.get("segments", []):
        segment.pop("speaker", None)
        for word in segment.get("words", []):
            word.pop("speaker", None)
    result["word_segments"] = words_of(result.get("segments", []))


def label_speakers(result: dict[str, Any], turns: SpeakerTurns) -> None:
    """Each word the speaker whose turn it overlaps most (the nearest turn in a pause), then split segments."""
    import whisperx

    strip_speakers(result)
    if not turns.turns:
        return
    whisperx.assign_word_speakers(turns.frame(), result, fill_nearest=True)
    language = result.get("language") or ""
    result["segments"] = [piece for segment in result["segments"] for piece in split_at_changes(segment, language)]
    result["word_segments"] = words_of(result["segments"])


def split_at_changes(segment: dict[str, Any], language: str) -> list[dict[str, Any]]:
    """`segment` as one piece per run of words with the same speaker (itself when one speaker says all of it).

    A word without a speaker of its own (no timing: a number wav2vec2 could not place) takes its neighbour's.
    """
    words = segment.get("words") or []
    speakers = _speaker_per_word(words)
    if len(set(speakers)) <= 1:
        if speakers and speakers[0] is not None:
            segment["speaker"] = speakers[0]
        return [segment]
    joiner = "" if language in LANGUAGES_WITHOUT_SPACES else " "
    pieces: list[dict[str, Any]] = []
    position = 0
    for speaker, run in groupby(speakers):
        count = len(list(run))
        piece_words = words[position:position + count]
        position += count
        starts = [word["start"] for word in piece_words if "start" in word]
        ends = [word["end"] for word in piece_words if "end" in word]
        pieces.append({
            "start": starts[0] if starts else (pieces[-1]["end"] if pieces else segment["start"]),
            "end": ends[-1] if ends else segment["end"],
            "text": joiner.join(word["word"] for word in piece_words),
            "words": piece_words,
            "speaker": speaker,
        })  # fmt: skip
    return pieces


def _speaker_per_word(words: list[dict[str, Any]]) -> list[str | None]:
    """Each word's speaker; a word without one takes the previous word's, or the next word's at the start."""
    speakers = [word.get("speaker") for word in words]
    for index in range(1, len(speakers)):
        if speakers[index] is None:
            speakers[index] = speakers[index - 1]
    for index in range(len(speakers) - 2, -1, -1):
        if speakers[index] is None:
            speakers[index] = speakers[index + 1]
    for word, speaker in zip(words, speakers, strict=True):
        if speaker is not None:
            word["speaker"] = speaker
    return speakers
