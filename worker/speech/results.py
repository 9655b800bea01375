"""Typed answers the speech stages give one another: decoded windows, the language vote, word timings, aligners."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# Candidates kept in the transcript's JSON when the language was detected.
LANGUAGE_CANDIDATES = 5


class WordTiming(StrEnum):
    """What became of whisper's own word timings while the windows were decoded."""

    OFF = "off"  # not asked: wav2vec2 aligns this language, or no word timings are wanted
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class WordTimings:
    """The word-timing state, and the one-line reason when it failed."""

    state: WordTiming
    failure: str = ""

    @classmethod
    def failed(cls, failure: str) -> WordTimings:
        return cls(WordTiming.FAILED, failure)


WORDS_OFF = WordTimings(WordTiming.OFF)
WORDS_DONE = WordTimings(WordTiming.DONE)


@dataclass(frozen=True)
class Aligner:
    """A wav2vec2 alignment model for one language, as whisperX's `align` takes it."""

    model: Any
    metadata: dict


@dataclass(frozen=True)
class NoAligner:
    """No wav2vec2 model for a language (none exists, or it cannot be downloaded now): why, in one line."""

    reason: str


class SourceKind(StrEnum):
    """How the language was settled."""

    GIVEN = "given"  # by the job's settings
    DETECTED = "detected"  # a sure vote
    ENGLISH_ONLY = "English-only model"
    NO_AUDIO = "no audio"
    FALLBACK = "fallback"  # the vote was below the floor and a fallback language is set
    DECODED = "decoded"  # the vote was unsure: the candidates' decoded text decided
    UNSURE = "unsure"  # unsure, and nothing better to go by: the vote's language


@dataclass(frozen=True)
class LanguageSource:
    """How the language was settled, and the evidence in one line (the JSON's `language_source` is its text)."""

    kind: SourceKind
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}" if self.detail else str(self.kind)


GIVEN = LanguageSource(SourceKind.GIVEN)


@dataclass
class LanguageGuess:
    """The voted language, its probability, the runners-up, and every language's share of the vote."""

    language: str
    probability: float
    candidates: list[tuple[str, float]]
    shares: dict[str, float] = field(default_factory=dict)
    weights: list[float] = field(default_factory=list)  # each voting window's weight (seconds x top probability)

    def probability_of(self, language: str) -> float:
        """The vote's probability of `language` (not of the vote's winner): what the record pairs with a language."""
        return self.shares.get(language, dict(self.candidates).get(language, 0.0))


@dataclass
class Decoded:
    """Segments as whisperX returns them, the language, and what the word timings did."""

    segments: list[dict[str, Any]]
    language: str
    guess: LanguageGuess | None
    word_timings: WordTimings
    stage_s: dict[str, float] = field(default_factory=dict)
    language_source: LanguageSource = GIVEN
    loops: dict[str, int] = field(default_factory=dict)  # windows re-decoded / cut / dropped as silence


def words_of(segments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every word of the segments, in order: a result's `word_segments`."""
    return [word for segment in segments for word in segment.get("words", [])]
