"""Whisper over VAD windows, one encoder pass per window shared by language detection, decoding and word timings.

whisperX's batched transcription encodes each window, its language detection encodes the first 30 s of
the file once more, and whisper's word timings (the fallback without wav2vec2) a third time. Here each
batch of windows is encoded once and CTranslate2's `detect_language`, `generate` and `align` all take
that encoder output. The windows, the decoding options and the segments are whisperX's own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from worker.encoder import encode_windows
from worker.word_timing import timed_words

# The language is voted by the first speech windows (whisper's own detection looks at the first 30 s of audio,
# music and silence included). Each window weighs its length times its confidence: music the VAD took for
# speech gets a flat guess (en 0.43 on a synthetic intro, where the speech after it said de 0.71), and a short
# greeting in another language weighs little.
LANGUAGE_VOTE_WINDOWS = 3
# Candidates kept in the transcript's JSON when the language was detected.
LANGUAGE_CANDIDATES = 5


@dataclass(frozen=True)
class Window:
    """One stretch of speech (VAD chunks merged to at most 30 s) and its samples."""

    start: float
    end: float
    audio: np.ndarray


@dataclass
class LanguageGuess:
    """The voted language, its probability, and the runners-up."""

    language: str
    probability: float
    candidates: list[tuple[str, float]]


@dataclass
class Decoded:
    """Segments as whisperX returns them, the language, and what the word timings did."""

    segments: list[dict[str, Any]]
    language: str
    guess: LanguageGuess | None
    word_timings: str  # "off", "done" or why they failed
    stage_s: dict[str, float] = field(default_factory=dict)


def vote_language(detections: list[list[tuple[str, float]]], durations: list[float]) -> LanguageGuess:
    """Average the windows' language probabilities, each window weighted by duration x its top probability."""
    totals: dict[str, float] = {}
    weights = [duration * ranking[0][1] for ranking, duration in zip(detections, durations, strict=True)]
    total_weight = sum(weights) or 1.0
    for ranking, weight in zip(detections, weights, strict=True):
        for token, probability in ranking:
            language = token[2:-2]  # "<|de|>" -> "de"
            totals[language] = totals.get(language, 0.0) + probability * weight / total_weight
    ranked = sorted(totals.items(), key=lambda item: -item[1])
    return LanguageGuess(ranked[0][0], round(ranked[0][1], 4), [(lang, round(p, 4)) for lang, p in ranked[:LANGUAGE_CANDIDATES]])


def take(encoder_output: Any, rows: list[int]) -> tuple[Any, Any]:
    """The encoder output of some rows of a batch, and the array that holds its memory (keep both alive)."""
    import ctranslate2

    if encoder_output.device == "cuda":
        import torch

        array = torch.as_tensor(encoder_output, device="cuda")[rows].contiguous()
    else:
        array = np.ascontiguousarray(np.asarray(encoder_output)[rows])
    return ctranslate2.StorageView.from_array(array), array


class WindowDecoder:
    """Decodes a file window by window with whisperX's pipeline parts (VAD, model, options)."""

    def __init__(self, asr: Any) -> None:
        self.asr = asr  # whisperX's FasterWhisperPipeline
        self.model = asr.model  # its faster-whisper WhisperModel
        self.multilingual = bool(self.model.model.is_multilingual)

    def speech_windows(self, audio: np.ndarray) -> list[Window]:
        """whisperX's VAD and chunk merging, exactly as its transcribe does them."""
        from whisperx.audio import SAMPLE_RATE
        from whisperx.vads import Pyannote, Vad

        vad = self.asr.vad_model
        if isinstance(vad, Vad):
            waveform, merge_chunks = vad.preprocess_audio(audio), vad.merge_chunks
        else:
            waveform, merge_chunks = Pyannote.preprocess_audio(audio), Pyannote.merge_chunks
        params = self.asr._vad_params
        chunks = merge_chunks(
            vad({"waveform": waveform, "sample_rate": SAMPLE_RATE}),
            params.get("chunk_size", 30),
            onset=params["vad_onset"],
            offset=params["vad_offset"],
        )
        return [
            Window(chunk["start"], chunk["end"], audio[int(chunk["start"] * SAMPLE_RATE) : int(chunk["end"] * SAMPLE_RATE)])
            for chunk in chunks
        ]

    def encode(self, windows: list[Window]) -> Any:
        """The windows through the encoder in one batch."""
        return encode_windows(self.model, [window.audio for window in windows])

    def decode(
        self,
        audio: np.ndarray,
        *,
        language: str | None,
        task: str,
        batch_size: int,
        want_word_timings: Callable[[str], bool],
        progress: Callable[[float], None] | None = None,
    ) -> Decoded:
        """All windows of `audio`; the language is detected from the first batch unless given."""
        seconds = {"vad": 0.0, "language": 0.0, "transcribe": 0.0, "word timings": 0.0}
        started = time.perf_counter()
        windows = self.speech_windows(audio)
        seconds["vad"] = time.perf_counter() - started
        if not windows:
            language, guess = self._language_without_speech(audio, language)
            return Decoded([], language, guess, "off", _rounded(seconds))
        segments: list[dict[str, Any]] = []
        guess: LanguageGuess | None = None
        tokenizer = None
        word_timings = "off"
        for first in range(0, len(windows), batch_size):
            batch = windows[first : first + batch_size]
            started = time.perf_counter()
            encoded = self.encode(batch)
            seconds["transcribe"] += time.perf_counter() - started
            if tokenizer is None:  # the first batch: settle the language, then decode the whole file in it
                started = time.perf_counter()
                if language is None:
                    guess = self._detect(encoded, batch)
                    language = guess.language if guess else "en"
                tokenizer = self._tokenizer(language, task)
                seconds["language"] += time.perf_counter() - started
                word_timings = "done" if want_word_timings(language) else "off"
            started = time.perf_counter()
            tokens, scores = self._generate(encoded, tokenizer)
            seconds["transcribe"] += time.perf_counter() - started
            texts = tokenizer.tokenizer.decode_batch(tokens)
            batch_segments = [
                {"text": text, "start": round(window.start, 3), "end": round(window.end, 3), "avg_logprob": score}
                for window, text, score in zip(batch, texts, scores, strict=True)
            ]
            if word_timings == "done":
                started = time.perf_counter()
                word_timings = self._add_word_timings(encoded, batch, batch_segments, tokens, tokenizer)
                seconds["word timings"] += time.perf_counter() - started
            segments.extend(batch_segments)
            if progress is not None:
                progress(min(100.0, (first + len(batch)) * 100 / len(windows)))
        if word_timings not in ("off", "done"):
            for segment in segments:
                segment.pop("words", None)  # no half-timed transcript
        return Decoded(segments, language or "en", guess, word_timings, _rounded(seconds))

    def _language_without_speech(self, audio: np.ndarray, language: str | None) -> tuple[str, LanguageGuess | None]:
        """No speech found: the given language, else what the first 30 s sound like (as whisperX would say)."""
        if language is not None or not self.multilingual or audio.shape[0] == 0:
            return language or "en", None
        window = Window(0.0, audio.shape[0] / 16000, audio)
        guess = self._detect(self.encode([window]), [window])
        return (guess.language if guess else "en"), guess

    def _detect(self, encoded: Any, batch: list[Window]) -> LanguageGuess | None:
        if not self.multilingual:
            return None
        voters = batch[:LANGUAGE_VOTE_WINDOWS]
        detections = self.model.model.detect_language(encoded)[: len(voters)]
        return vote_language(detections, [min(w.end - w.start, 30.0) for w in voters])

    def _tokenizer(self, language: str, task: str) -> Any:
        from faster_whisper.tokenizer import Tokenizer

        return Tokenizer(self.model.hf_tokenizer, self.multilingual, task=task, language=language)

    def _suppressed_tokens(self, tokenizer: Any) -> list[int]:
        options = self.asr.options
        if not self.asr.suppress_numerals:
            return list(options.suppress_tokens)
        from whisperx.asr import find_numeral_symbol_tokens

        return sorted(set(find_numeral_symbol_tokens(tokenizer)) | set(options.suppress_tokens))

    def _generate(self, encoded: Any, tokenizer: Any) -> tuple[list[list[int]], list[float]]:
        """whisperX's batched decoding (same prompt, options and scores) on encoder output already at hand."""
        options = self.asr.options
        previous = tokenizer.encode(" " + options.initial_prompt.strip()) if options.initial_prompt else []
        prompt = self.model.get_prompt(
            tokenizer, previous, without_timestamps=options.without_timestamps, prefix=options.prefix, hotwords=options.hotwords
        )
        results = self.model.model.generate(
            encoded,
            [prompt] * encoded.shape[0],
            beam_size=options.beam_size,
            patience=options.patience,
            length_penalty=options.length_penalty,
            max_length=self.model.max_length,
            suppress_blank=options.suppress_blank,
            suppress_tokens=self._suppressed_tokens(tokenizer),
            no_repeat_ngram_size=options.no_repeat_ngram_size,
            repetition_penalty=options.repetition_penalty,
            return_scores=True,
        )
        tokens, scores = [], []
        for result in results:
            sequence = result.sequences_ids[0]
            scores.append(result.scores[0] * (len(sequence) ** options.length_penalty) / (len(sequence) + 1))
            tokens.append([token for token in sequence if token < tokenizer.eot])
        return tokens, scores

    def _add_word_timings(self, encoded: Any, batch: list[Window], segments: list[dict], tokens: list[list[int]],
                          tokenizer: Any) -> str:  # fmt: skip
        """Force-align each window's tokens to its cross-attention on the same encoder output; "done" or why not."""
        from whisperx.audio import HOP_LENGTH, N_SAMPLES

        for segment in segments:
            segment["words"] = []
        rows = [i for i, window in enumerate(batch) if tokens[i] and window.audio.shape[0] >= HOP_LENGTH]
        if not rows:
            return "done"
        try:
            encoder_rows, _memory = take(encoded, rows) if len(rows) < len(batch) else (encoded, None)
            frames = [min(batch[i].audio.shape[0], N_SAMPLES) // HOP_LENGTH for i in rows]  # the unpadded part
            alignments = self.model.find_alignment(tokenizer, [tokens[i] for i in rows], encoder_rows, frames)
        except Exception as exc:  # noqa: BLE001 - timing words must never cost the transcript itself
            return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        for row, alignment in zip(rows, alignments, strict=True):
            segments[row]["words"] = timed_words(alignment, segments[row]["start"], segments[row]["end"])
        return "done"


def _rounded(seconds: dict[str, float]) -> dict[str, float]:
    return {stage: round(value, 3) for stage, value in seconds.items()}
