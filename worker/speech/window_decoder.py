"""Whisper over VAD windows, one encoder pass per window shared by language detection, decoding and word timings.

whisperX's batched transcription encodes each window, its language detection encodes the first 30 s of
the file once more, and whisper's word timings (the fallback without wav2vec2) a third time. Here each
batch of windows is encoded once and CTranslate2's `detect_language`, `generate` and `align` all take
that encoder output. The windows, the decoding options and the segments are whisperX's own; the stages
are vad, language, decoding and word_timing beside this module.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from fleet.job.identity import DecodingOptions
from worker.audio.samples import Audio, as_audio
from worker.speech.decoding import TextDecoder, WindowText, previous_tokens
from worker.speech.encoder import Window, encode_windows, with_samples
from worker.speech.language import choose_language, decode_candidates, detect_language, language_without_speech
from worker.speech.results import GIVEN, WORDS_DONE, WORDS_OFF, Decoded, LanguageGuess, SourceKind, WordTiming
from worker.speech.vad import speech_spans
from worker.speech.word_timing import time_window_words


class WindowDecoder:
    """Decodes a file window by window with whisperX's pipeline parts (VAD, model, options)."""

    def __init__(self, asr: Any) -> None:
        self.asr = asr  # whisperX's FasterWhisperPipeline
        self.text = TextDecoder(asr)

    def speech_windows(self, audio: np.ndarray | Audio) -> list[Window]:
        """whisperX's VAD and chunk merging as its transcribe does them, each window with its samples."""
        audio = as_audio(audio)
        return with_samples(audio, speech_spans(self.asr, audio))

    def decode(
        self,
        audio: np.ndarray | Audio,
        *,
        language: str | None,
        task: str,
        options: DecodingOptions,
        batch_size: int,
        want_word_timings: Callable[[str], bool],
        progress: Callable[[float], None] | None = None,
    ) -> Decoded:
        """All windows of `audio`; the language is detected from the first batch unless given.

        Only one batch of windows' samples is in memory at a time.
        """
        audio = as_audio(audio)
        seconds = {"vad": 0.0, "language": 0.0, "transcribe": 0.0, "word timings": 0.0}
        started = time.perf_counter()
        spans = speech_spans(self.asr, audio)
        seconds["vad"] = time.perf_counter() - started
        if not spans:
            language, guess, source = language_without_speech(self.text, audio, language, options)
            return Decoded([], language, guess, WORDS_OFF, _rounded(seconds), source)
        segments: list[dict[str, Any]] = []
        guess: LanguageGuess | None = None
        source = GIVEN
        tokenizer = None
        word_timings = WORDS_OFF
        loops = {"re-decoded": 0, "cut": 0, "silent": 0}
        previous: list[int] = []
        for first in range(0, len(spans), batch_size):
            batch = with_samples(audio, spans[first : first + batch_size])
            started = time.perf_counter()
            encoded = encode_windows(self.text.model, [window.audio for window in batch])
            seconds["transcribe"] += time.perf_counter() - started
            if tokenizer is None:  # the first batch: settle the language, then decode the whole file in it
                started = time.perf_counter()
                if language is None:
                    guess = detect_language(self.text, encoded, batch)
                    language, source = choose_language(guess, options)
                    if source.kind is SourceKind.UNSURE and guess is not None:  # no fallback taken: the text decides
                        language, source = decode_candidates(self.text, encoded, batch, guess, options)
                tokenizer = self.text.tokenizer(language, task)
                seconds["language"] += time.perf_counter() - started
                word_timings = WORDS_DONE if want_word_timings(language) else WORDS_OFF
            started = time.perf_counter()
            decoded = self.text.decode_batch(encoded, [w.end - w.start for w in batch], tokenizer, options, previous)
            seconds["transcribe"] += time.perf_counter() - started
            batch_segments = [_segment(window, text) for window, text in zip(batch, decoded, strict=True)]
            if word_timings == WORDS_DONE:
                started = time.perf_counter()
                tokens = [text.tokens for text in decoded]
                word_timings = time_window_words(self.text.model, encoded, batch, batch_segments, tokens, tokenizer)
                seconds["word timings"] += time.perf_counter() - started
            for text, segment in zip(decoded, batch_segments, strict=True):
                note = text.note or {}
                loops["silent"] += text.silent
                loops["re-decoded"] += "temperature" in note
                loops["cut"] += "cut" in note
                if not text.silent:
                    segments.append(segment)
            if options.condition_on_previous_text:
                previous = previous_tokens(previous, decoded)
            if progress is not None:
                progress(min(100.0, (first + len(batch)) * 100 / len(spans)))
        if word_timings.state is WordTiming.FAILED:
            for segment in segments:
                segment.pop("words", None)  # no half-timed transcript
        loops = {kind: count for kind, count in loops.items() if count}
        return Decoded(segments, language or "en", guess, word_timings, _rounded(seconds), source, loops)


def _segment(window: Window, text: WindowText) -> dict[str, Any]:
    segment = {"text": text.text, "start": round(window.start, 3), "end": round(window.end, 3), "avg_logprob": text.avg_logprob}
    if text.note:
        segment["decoding"] = text.note
    return segment


def _rounded(seconds: dict[str, float]) -> dict[str, float]:
    return {stage: round(value, 3) for stage, value in seconds.items()}
