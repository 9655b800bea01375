"""Typed answers the speech stages give one another, where a string once carried the state."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


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
