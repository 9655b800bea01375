"""Whisper over VAD windows, one encoder pass per window shared by language detection, decoding and word timings.

whisperX's batched transcription encodes each window, its language detection encodes the first 30 s of
the file once more, and whisper's word timings (the fallback without wav2vec2) a third time. Here each
batch of windows is encoded once and CTranslate2's `detect_language`, `generate` and `align` all take
that encoder output. The windows, the decoding options and the segments are whisperX's own.

What whisperX's batched decoding leaves out, faster-whisper's sequential mode does and this does too:
a window whose text loops is decoded again at the fallback temperatures (then its repeats are cut),
and whisper's no-speech rule drops windows that are silence the model put words on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from fleet.job.identity import DecodingOptions
from fleet.process.errors import first_line
from worker.audio.samples import Audio, as_audio
from worker.speech.encoder import encode_windows
from worker.speech.repetition import MAX_TOKENS_PER_S, Confidence, cut_loops, loop_reason
from worker.speech.results import WORDS_DONE, WORDS_OFF, Decoded, LanguageGuess, WordTiming, WordTimings
from worker.speech.word_timing import timed_words

# The language is voted by the first speech windows, in order, until they hold this much confident speech
# (seconds x top probability): one clear 30 s window decides alone, as whisper's own detection on the first
# 30 s of audio would, while music the VAD took for speech (a flat guess: en 0.43 on a synthetic intro) or a
# short greeting weighs little and the windows after it are heard too.
LANGUAGE_VOTE_WEIGHT_S = 15.0
# Candidates kept in the transcript's JSON when the language was detected.
LANGUAGE_CANDIDATES = 5
# A vote this sure is taken as it is. Below it (and above WHISPER_LANGUAGE_MIN_PROBABILITY, or below it with no
# fallback language set) the first speech windows are decoded in each of the DECODED_CANDIDATES likeliest
# languages, at least DECODED_CANDIDATE_S of speech, and the text decides. On the real two-speaker call, "Hello?
# Hello?" votes Korean at 0.60-0.62 (English second); decoded, English scores -0.33 and Korean -0.92.
LANGUAGE_SURE_PROBABILITY = 0.8
DECODED_CANDIDATES = 3
DECODED_CANDIDATE_S = 30.0
UNSURE = "unsure"
# whisper's own: a fallback decoded this hot no longer conditions the next window on its text.
PROMPT_RESET_ON_TEMPERATURE = 0.5
# The VAD hears a file this many seconds at a time (38 MB of float32), so its memory does not grow with the
# file; a speech region reaching into a piece's last VAD_PIECE_MARGIN_S is heard again by the next piece
# (longer than the longest region, 30 s, and its padding).
VAD_PIECE_S = 600.0
VAD_PIECE_MARGIN_S = 40.0


@dataclass(frozen=True)
class Window:
    """One stretch of speech (VAD chunks merged to at most 30 s) and its samples."""

    start: float
    end: float
    audio: np.ndarray


@dataclass
class WindowText:
    """What the decoder made of one window, and whether a loop or silence changed that."""

    tokens: list[int]
    text: str
    avg_logprob: float
    no_speech_prob: float
    temperature: float = 0.0
    note: dict[str, Any] | None = None  # a loop that was re-decoded or cut: goes into the segment's JSON
    silent: bool = False


def with_samples(audio: Audio, spans: list[tuple[float, float]]) -> list[Window]:
    """The windows at `spans`, each with its samples read from `audio`."""
    return [Window(start, end, audio.read(start, end)) for start, end in spans]


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

    def speech_windows(self, audio: np.ndarray | Audio) -> list[Window]:
        """whisperX's VAD and chunk merging as its transcribe does them, each window with its samples."""
        audio = as_audio(audio)
        return with_samples(audio, self.speech_spans(audio))

    def speech_spans(self, audio: Audio) -> list[tuple[float, float]]:
        """whisperX's VAD over the file a piece at a time, then its chunk merging over the whole file.

        A speech region that runs into the last VAD_PIECE_MARGIN_S of a piece is left to the next piece,
        which starts where that region starts: each region is found whole, by one piece, as in one pass.
        """
        from whisperx.diarize import Segment
        from whisperx.vads.vad import Vad

        params = self.asr._vad_params
        regions: list[tuple[float, float]] = []
        start = 0.0
        while start < audio.duration_s:
            end = min(start + VAD_PIECE_S, audio.duration_s)
            found = [(start + first, start + last) for first, last in self._speech_regions(audio.read(start, end))]
            if end >= audio.duration_s:
                regions.extend(found)
                break
            cut = end - VAD_PIECE_MARGIN_S
            late = [region for region in found if region[1] >= cut]
            following = min([first for first, last in late] + [cut])
            if following <= start:  # one region fills the piece up to its margin: taken as found, the rest follows
                following = late[0][1]
            regions.extend(region for region in found if region[0] < following)
            start = following
        if not regions:
            return []
        segments = [Segment(first, last, "UNKNOWN") for first, last in regions]
        merged = Vad.merge_chunks(segments, params.get("chunk_size", 30), onset=params["vad_onset"], offset=params["vad_offset"])
        return [(chunk["start"], chunk["end"]) for chunk in merged]

    def _speech_regions(self, piece: np.ndarray) -> list[tuple[float, float]]:
        """The VAD's speech regions in one piece of audio (seconds from the piece's start), before merging."""
        from whisperx.audio import SAMPLE_RATE
        from whisperx.vads import Pyannote, Vad
        from whisperx.vads.pyannote import Binarize

        vad = self.asr.vad_model
        params = self.asr._vad_params
        if piece.shape[0] == 0:
            return []
        if isinstance(vad, Vad) and not isinstance(vad, Pyannote):  # silero: regions at once
            found = vad({"waveform": vad.preprocess_audio(piece), "sample_rate": SAMPLE_RATE})
            return [(segment.start, segment.end) for segment in found]
        # pyannote's scores, binarized as its merge_chunks does it
        scores = vad({"waveform": Pyannote.preprocess_audio(piece), "sample_rate": SAMPLE_RATE})
        binarize = Binarize(max_duration=params.get("chunk_size", 30), onset=params["vad_onset"], offset=params["vad_offset"])
        return [(region.start, region.end) for region in binarize(scores).get_timeline()]

    def encode(self, windows: list[Window]) -> Any:
        """The windows through the encoder in one batch."""
        return encode_windows(self.model, [window.audio for window in windows])

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
        spans = self.speech_spans(audio)
        seconds["vad"] = time.perf_counter() - started
        if not spans:
            language, guess, source = self._language_without_speech(audio, language, options)
            return Decoded([], language, guess, WORDS_OFF, _rounded(seconds), source)
        segments: list[dict[str, Any]] = []
        guess: LanguageGuess | None = None
        source = "given"
        tokenizer = None
        word_timings = WORDS_OFF
        loops = {"re-decoded": 0, "cut": 0, "silent": 0}
        previous: list[int] = []
        for first in range(0, len(spans), batch_size):
            batch = with_samples(audio, spans[first : first + batch_size])
            started = time.perf_counter()
            encoded = self.encode(batch)
            seconds["transcribe"] += time.perf_counter() - started
            if tokenizer is None:  # the first batch: settle the language, then decode the whole file in it
                started = time.perf_counter()
                if language is None:
                    guess = self._detect(encoded, batch)
                    language, source = self._choose(guess, options)
                    if source == UNSURE:  # below 0.8 and no fallback taken: the text decides among the likeliest
                        language, source = self._decode_candidates(encoded, batch, guess, options)
                tokenizer = self._tokenizer(language, task)
                seconds["language"] += time.perf_counter() - started
                word_timings = WORDS_DONE if want_word_timings(language) else WORDS_OFF
            started = time.perf_counter()
            decoded = self._decode_batch(encoded, [w.end - w.start for w in batch], tokenizer, options, previous)
            seconds["transcribe"] += time.perf_counter() - started
            batch_segments = [self._segment(window, text) for window, text in zip(batch, decoded, strict=True)]
            if word_timings == WORDS_DONE:
                started = time.perf_counter()
                tokens = [text.tokens for text in decoded]
                word_timings = self._add_word_timings(encoded, batch, batch_segments, tokens, tokenizer)
                seconds["word timings"] += time.perf_counter() - started
            for text, segment in zip(decoded, batch_segments, strict=True):
                note = text.note or {}
                loops["silent"] += text.silent
                loops["re-decoded"] += "temperature" in note
                loops["cut"] += "cut" in note
                if not text.silent:
                    segments.append(segment)
            if options.condition_on_previous_text:
                previous = self._previous_tokens(previous, decoded)
            if progress is not None:
                progress(min(100.0, (first + len(batch)) * 100 / len(spans)))
        if word_timings.state is WordTiming.FAILED:
            for segment in segments:
                segment.pop("words", None)  # no half-timed transcript
        loops = {kind: count for kind, count in loops.items() if count}
        return Decoded(segments, language or "en", guess, word_timings, _rounded(seconds), source, loops)

    @staticmethod
    def _segment(window: Window, text: WindowText) -> dict[str, Any]:
        segment = {"text": text.text, "start": round(window.start, 3), "end": round(window.end, 3),
                   "avg_logprob": text.avg_logprob}  # fmt: skip
        if text.note:
            segment["decoding"] = text.note
        return segment

    @staticmethod
    def _previous_tokens(previous: list[int], decoded: list[WindowText]) -> list[int]:
        """What conditions the next batch (whisper's condition_on_previous_text): reset after a hot fallback."""
        for text in decoded:
            previous = [] if text.temperature > PROMPT_RESET_ON_TEMPERATURE else previous + text.tokens
        return previous

    def _choose(self, guess: LanguageGuess | None, options: DecodingOptions) -> tuple[str, str]:
        """The detected language when the vote is sure; the fallback language (if set) below the floor; else UNSURE."""
        if guess is None:
            return "en", "English-only model"
        if guess.probability >= max(options.language_min_probability, LANGUAGE_SURE_PROBABILITY):
            return guess.language, "detected"
        if guess.probability < options.language_min_probability and options.fallback_language:
            return options.fallback_language, (
                f"fallback: detected {guess.language} at {guess.probability} < {options.language_min_probability}"
            )
        return guess.language, UNSURE

    def _decode_candidates(self, encoded: Any, batch: list[Window], guess: LanguageGuess,
                           options: DecodingOptions) -> tuple[str, str]:  # fmt: skip
        """The candidate language whose text of the first speech windows the model finds likeliest, and the scores.

        Each of the likeliest few languages decodes the windows that hold the first DECODED_CANDIDATE_S of speech
        (greedy, not conditioned, the encoder output at hand); a text that loops or runs longer than the audio can
        hold is out. The spoken language reads as fluent text, another one as a strained translation or noise.
        """
        rows, speech_s = [], 0.0
        for row, window in enumerate(batch):
            rows.append(row)
            speech_s += window.end - window.start
            if speech_s >= DECODED_CANDIDATE_S:
                break
        subset, _memory = take(encoded, rows) if len(rows) < len(batch) else (encoded, None)
        greedy = options.model_copy(update={"beam_size": 1, "initial_prompt": None, "hotwords": None})
        windows_s = [batch[row].end - batch[row].start for row in rows]
        scores: dict[str, float | str] = {}
        for language, _ in guess.candidates[:DECODED_CANDIDATES]:
            texts = [row[0] for row in self._generate(subset, self._tokenizer(language, "transcribe"), greedy, 0.0, [])]
            tokens = sum(len(text.tokens) for text in texts)
            if not tokens:
                scores[language] = "no text"
            elif any(_loop_reason(text, seconds, options) for text, seconds in zip(texts, windows_s, strict=True)):
                scores[language] = "loops"
            else:
                scores[language] = sum(text.avg_logprob * len(text.tokens) for text in texts) / tokens
        ranked = sorted(scores.items(), key=lambda item: -item[1] if isinstance(item[1], float) else float("inf"))
        if not isinstance(ranked[0][1], float):
            return guess.language, f"detected at {guess.probability}; no candidate decoded cleanly"
        shown = " vs ".join(f"{lang} {score:.2f}" if isinstance(score, float) else f"{lang} {score}" for lang, score in ranked)
        return ranked[0][0], f"decoded: {shown}"

    def _decode_batch(self, encoded: Any, windows_s: list[float], tokenizer: Any, options: DecodingOptions,
                      previous: list[int]) -> list[WindowText]:  # fmt: skip
        """Each window's text; windows whose text loops are decoded again hotter, then cut if still looping."""
        temperatures = options.temperatures()
        if options.condition_on_previous_text:
            texts = []
            for row in range(encoded.shape[0]):  # each window's prompt is the text before it: one at a time
                window, _memory = take(encoded, [row])
                text = self._generate(window, tokenizer, options, temperatures[0], previous)[0][0]
                previous = self._previous_tokens(previous, [text])
                texts.append(text)
        else:
            texts = [row[0] for row in self._generate(encoded, tokenizer, options, temperatures[0], previous)]
        looping: dict[int, str] = {}
        for row, text in enumerate(texts):
            if self._silent(text, options):
                texts[row] = WindowText([], "", text.avg_logprob, text.no_speech_prob, silent=True)
            elif reason := _loop_reason(text, windows_s[row], options):
                looping[row] = reason
        # The first temperature with a loop-free text wins, its likeliest loop-free sample: whisper would go on while
        # the log probability is low too, which costs up to five sampled decodings per window where the language was
        # misheard (26 s instead of 2 s on one clip). A looping sample stops at a generous length for the window
        # rather than at whisper's 448 tokens.
        for temperature in temperatures[1:]:
            if not looping:
                break
            rows = sorted(looping)
            subset, _memory = take(encoded, rows)
            longest_s = max(windows_s[row] for row in rows)
            # Not conditioned on earlier text (in that mode `previous` has moved past these windows by now, and
            # whisper drops the prompt for hot fallbacks anyway).
            retries = self._generate(subset, tokenizer, options, temperature, [],
                                     max_new_tokens=int(MAX_TOKENS_PER_S * longest_s) + 16)  # fmt: skip
            for row, samples in zip(rows, retries, strict=True):
                loop_free = [s for s in samples if _loop_reason(s, windows_s[row], options) is None]
                if loop_free:
                    loop_free[0].note = {"loop": looping.pop(row), "temperature": temperature}
                    texts[row] = loop_free[0]
        for row, reason in looping.items():
            text = texts[row]  # still looping at the hottest temperature: keep one saying of each repeat
            cut_text, cuts = cut_loops(text.text)
            if cuts:
                text.tokens, text.text = tokenizer.encode(cut_text), cut_text
            text.note = {"loop": reason, "temperatures_tried": list(temperatures[1:]), "cut": cuts}
        return texts

    @staticmethod
    def _silent(text: WindowText, options: DecodingOptions) -> bool:
        """whisper's no-speech rule: the model says "no speech" and is unsure of the words it found."""
        if options.no_speech_threshold is None or text.no_speech_prob <= options.no_speech_threshold:
            return False
        return options.logprob_threshold is None or text.avg_logprob < options.logprob_threshold

    def _language_without_speech(self, audio: Audio, language: str | None,
                                 options: DecodingOptions) -> tuple[str, LanguageGuess | None, str]:  # fmt: skip
        """No speech found: the given language, else what the first 30 s sound like (as whisperX would say)."""
        if language is not None:
            return language, None, "given"
        if not self.multilingual or audio.samples == 0:
            return "en", None, "English-only model" if not self.multilingual else "no audio"
        first = audio.read(0.0, 30.0)
        window = Window(0.0, first.shape[0] / 16000, first)
        guess = self._detect(self.encode([window]), [window])
        chosen, source = self._choose(guess, options)
        if source == UNSURE:
            source = f"detected at {guess.probability}, unsure; no speech to decode"
        return chosen, guess, source

    def _detect(self, encoded: Any, batch: list[Window]) -> LanguageGuess | None:
        if not self.multilingual:
            return None
        detections, durations, weight = [], [], 0.0
        for window, ranking in zip(batch, self.model.model.detect_language(encoded), strict=True):
            detections.append(ranking)
            durations.append(min(window.end - window.start, 30.0))
            weight += durations[-1] * ranking[0][1]
            if weight >= LANGUAGE_VOTE_WEIGHT_S:
                break
        return vote_language(detections, durations)

    def _tokenizer(self, language: str, task: str) -> Any:
        from faster_whisper.tokenizer import Tokenizer

        return Tokenizer(self.model.hf_tokenizer, self.multilingual, task=task, language=language)

    def _suppressed_tokens(self, tokenizer: Any, options: DecodingOptions) -> list[int]:
        if not options.suppress_numerals:
            return list(options.suppress_tokens)
        from whisperx.asr import find_numeral_symbol_tokens

        return sorted(set(find_numeral_symbol_tokens(tokenizer)) | set(options.suppress_tokens))

    def _generate(self, encoded: Any, tokenizer: Any, options: DecodingOptions, temperature: float, previous: list[int],
                  max_new_tokens: int | None = None) -> list[list[WindowText]]:  # fmt: skip
        """whisperX's batched decoding (same prompt and scores) on encoder output at hand; sampling above 0.

        Each window's hypotheses come back likeliest first: one from beam search, `best_of` when sampling.
        """
        defaults = self.asr.options  # whisperX's settings that its command line does not offer
        context = tokenizer.encode(" " + options.initial_prompt.strip()) if options.initial_prompt else []
        prompt = self.model.get_prompt(tokenizer, context + previous, without_timestamps=True, hotwords=options.hotwords)
        if temperature > 0:
            search: dict[str, Any] = {"beam_size": 1, "num_hypotheses": options.best_of, "sampling_topk": 0,
                                      "sampling_temperature": temperature}  # fmt: skip
        else:
            search = {"beam_size": options.beam_size, "patience": options.patience}
        results = self.model.model.generate(
            encoded,
            [prompt] * encoded.shape[0],
            length_penalty=options.length_penalty,
            max_length=min(self.model.max_length, len(prompt) + max_new_tokens) if max_new_tokens else self.model.max_length,
            suppress_blank=defaults.suppress_blank,
            suppress_tokens=self._suppressed_tokens(tokenizer, options),
            no_repeat_ngram_size=defaults.no_repeat_ngram_size,
            repetition_penalty=defaults.repetition_penalty,
            return_scores=True,
            return_no_speech_prob=True,
            **search,
        )
        hypotheses = []
        for result in results:
            texts = []
            for sequence, score in zip(result.sequences_ids, result.scores, strict=True):
                tokens = [token for token in sequence if token < tokenizer.eot]
                avg_logprob = score * (len(sequence) ** options.length_penalty) / (len(sequence) + 1)
                texts.append(WindowText(tokens, tokenizer.tokenizer.decode(tokens), avg_logprob, result.no_speech_prob,
                                        temperature))  # fmt: skip
            hypotheses.append(sorted(texts, key=lambda text: -text.avg_logprob))
        return hypotheses

    def _add_word_timings(self, encoded: Any, batch: list[Window], segments: list[dict], tokens: list[list[int]],
                          tokenizer: Any) -> WordTimings:  # fmt: skip
        """Force-align each window's tokens to its cross-attention on the same encoder output; done or why not."""
        from whisperx.audio import HOP_LENGTH, N_SAMPLES

        for segment in segments:
            segment["words"] = []
        rows = [i for i, window in enumerate(batch) if tokens[i] and window.audio.shape[0] >= HOP_LENGTH]
        if not rows:
            return WORDS_DONE
        try:
            encoder_rows, _memory = take(encoded, rows) if len(rows) < len(batch) else (encoded, None)
            frames = [min(batch[i].audio.shape[0], N_SAMPLES) // HOP_LENGTH for i in rows]  # the unpadded part
            alignments = self.model.find_alignment(tokenizer, [tokens[i] for i in rows], encoder_rows, frames)
        except Exception as exc:  # noqa: BLE001 - timing words must never cost the transcript itself
            return WordTimings.failed(first_line(exc))
        for row, alignment in zip(rows, alignments, strict=True):
            segments[row]["words"] = timed_words(alignment, segments[row]["start"], segments[row]["end"])
        return WORDS_DONE


def _loop_reason(text: WindowText, window_s: float, options: DecodingOptions) -> str | None:
    """Why a window's text is a hallucination loop: repeats the decoding itself doubts, or whisper's compression rule."""
    confidence = Confidence(text.avg_logprob, options.logprob_threshold, len(text.tokens) / max(window_s, 1.0))
    return loop_reason(text.text, options.compression_ratio_threshold, confidence)


def _rounded(seconds: dict[str, float]) -> dict[str, float]:
    return {stage: round(value, 3) for stage, value in seconds.items()}
