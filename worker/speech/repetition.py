"""Hallucination loops in decoded text: spotting them, and cutting what is left of one."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

# A phrase of up to this many words, said this many times in a row, is a loop rather than speech:
# "no no no no" and "thank you thank you thank you" are people; "oh" x80 and "it's my girl" x40 are not.
MAX_PHRASE_WORDS = 12
MIN_REPEATS_ONE_WORD = 5
MIN_REPEATS_PHRASE = 4
# More tokens a second than twice the fastest speech (about 6 a second in English) is text the audio cannot hold:
# a decoding above it is a loop, and a re-decoded window is cut off there.
MAX_TOKENS_PER_S = 12.0


@dataclass(frozen=True)
class Confidence:
    """How sure the decoder was of a text: what tells a hallucination loop from speech that really repeats."""

    avg_logprob: float
    logprob_threshold: float | None
    tokens_per_s: float

    def doubt(self) -> str | None:
        """Why this decoding looks like a loop too (whisper's log-probability rule, too much text), or None."""
        if self.logprob_threshold is not None and self.avg_logprob < self.logprob_threshold:
            return f"avg log probability {self.avg_logprob:.2f} < {self.logprob_threshold}"
        if self.tokens_per_s > MAX_TOKENS_PER_S:
            return f"{self.tokens_per_s:.1f} tokens/s > {MAX_TOKENS_PER_S:g}"
        return None


@dataclass(frozen=True)
class Loop:
    """`phrase` said `repeats` times in a row, starting at word `start` of the text."""

    phrase: str
    repeats: int
    start: int
    length: int  # words in the phrase

    def describe(self) -> str:
        return f"{self.phrase!r} x{self.repeats}"


def compression_ratio(text: str) -> float:
    """gzip's ratio on the text, as whisper's fallback uses it: repetitive text compresses well."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def _comparable(word: str) -> str:
    return "".join(c for c in word.lower() if c.isalnum()) or word  # "–" x15 is a loop too


def find_loop(text: str) -> Loop | None:
    """The longest run of one phrase repeated back to back, if it is long enough to be a loop."""
    words = text.split()
    keys = [_comparable(w) for w in words]
    best: Loop | None = None
    for length in range(1, MAX_PHRASE_WORDS + 1):
        needed = MIN_REPEATS_ONE_WORD if length == 1 else MIN_REPEATS_PHRASE
        start = 0
        while start + needed * length <= len(keys):
            phrase = keys[start : start + length]
            repeats = 1
            while keys[start + repeats * length : start + (repeats + 1) * length] == phrase:
                repeats += 1
            if repeats >= needed and any(phrase) and (best is None or repeats * length > best.repeats * best.length):
                best = Loop(" ".join(words[start : start + length]), repeats, start, length)
            start += max(1, (repeats - 1) * length) if repeats > 1 else 1
    return best


def loop_reason(text: str, compression_ratio_threshold: float | None, confidence: Confidence | None = None) -> str | None:
    """Why this text looks like a hallucination loop, or None.

    Text that compresses too well is a loop (whisper's rule). A phrase said again and again is one only when
    the decoding doubts it too (`confidence`: a low log probability, more text than the audio holds), or when
    it has no word in it: a confident "No. No. No. No. No." or a chorus is what was said, "– – – – –" is not.
    Without `confidence` every repeat counts.
    """
    loop = find_loop(text)
    if loop is not None:
        wordless = not any(character.isalnum() for character in loop.phrase)  # "–" x14: nobody says that
        doubt = confidence.doubt() if confidence is not None and not wordless else ""
        if doubt is not None:
            return f"repeats {loop.describe()}" + (f", {doubt}" if doubt else "")
    if compression_ratio_threshold is not None:
        ratio = compression_ratio(text)
        if ratio > compression_ratio_threshold:
            return f"compression ratio {ratio:.2f} > {compression_ratio_threshold}"
    return None


def cut_loops(text: str) -> tuple[str, list[str]]:
    """The text with each loop left as one saying of its phrase, and what was cut."""
    cuts: list[str] = []
    while (loop := find_loop(text)) is not None and len(cuts) < 20:
        words = text.split()
        kept = words[: loop.start + loop.length] + words[loop.start + loop.repeats * loop.length :]
        cuts.append(loop.describe())
        text = " " + " ".join(kept)
    return text, cuts
