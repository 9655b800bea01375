"""Word timings from whisper's own cross-attention, for languages (or offline machines) with no wav2vec2 model."""

from __future__ import annotations

from typing import Any

from fleet.process.errors import first_line
from worker.audio.samples import Audio
from worker.speech.encoder import Window, encode_windows, take
from worker.speech.results import WORDS_DONE, WordTimings

# faster-whisper's defaults: punctuation joins its neighbouring word instead of becoming a word of its own.
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"


def add_whisper_word_timings(whisper_model: Any, segments: list[dict], audio: Audio, language: str, task: str) -> list[dict]:
    """Give each segment `words` (word, start, end, score) by DTW over the decoder's cross-attention; returns all words.

    `whisper_model` is the faster-whisper model inside whisperX's pipeline. Each segment is one VAD chunk of at
    most 30 s, so its audio is encoded once more and its text force-aligned to it: the approach of whisper's
    own `word_timestamps`, which whisperX's batched decoding leaves out.
    """
    from faster_whisper.tokenizer import Tokenizer
    from whisperx.audio import HOP_LENGTH, N_SAMPLES

    tokenizer = Tokenizer(whisper_model.hf_tokenizer, whisper_model.model.is_multilingual, task=task, language=language)
    all_words: list[dict] = []
    for segment in segments:
        chunk = audio.read(segment["start"], segment["end"])[:N_SAMPLES]
        tokens = tokenizer.encode(" " + segment["text"].strip())
        segment["words"] = []
        if chunk.shape[0] < HOP_LENGTH or not tokens:
            continue
        encoded = encode_windows(whisper_model, [chunk])
        alignment = whisper_model.find_alignment(tokenizer, [tokens], encoded, chunk.shape[0] // HOP_LENGTH)[0]
        segment["words"] = timed_words(alignment, segment["start"], segment["end"])
        all_words.extend(segment["words"])
    return all_words


def time_window_words(model: Any, encoded: Any, batch: list[Window], segments: list[dict], tokens: list[list[int]],
                      tokenizer: Any) -> WordTimings:  # fmt: skip
    """Force-align each window's tokens to its cross-attention on the encoder output at hand; done or why not."""
    from whisperx.audio import HOP_LENGTH, N_SAMPLES

    for segment in segments:
        segment["words"] = []
    rows = [i for i, window in enumerate(batch) if tokens[i] and window.audio.shape[0] >= HOP_LENGTH]
    if not rows:
        return WORDS_DONE
    try:
        encoder_rows, _memory = take(encoded, rows) if len(rows) < len(batch) else (encoded, None)
        frames = [min(batch[i].audio.shape[0], N_SAMPLES) // HOP_LENGTH for i in rows]  # the unpadded part
        alignments = model.find_alignment(tokenizer, [tokens[i] for i in rows], encoder_rows, frames)
    except Exception as exc:  # noqa: BLE001 - timing words must never cost the transcript itself
        return WordTimings.failed(first_line(exc))
    for row, alignment in zip(rows, alignments, strict=True):
        segments[row]["words"] = timed_words(alignment, segments[row]["start"], segments[row]["end"])
    return WORDS_DONE


def timed_words(alignment: list[dict], start_s: float, end_s: float) -> list[dict]:
    """faster-whisper's word alignment of one window as whisperX words, in file time, kept inside the window."""
    from faster_whisper.transcribe import merge_punctuations

    merge_punctuations(alignment, PREPEND_PUNCTUATIONS, APPEND_PUNCTUATIONS)
    words = []
    for timing in alignment:
        if not timing["word"].strip():
            continue  # punctuation merged into a neighbour
        start = min(start_s + float(timing["start"]), end_s)
        words.append({
            "word": timing["word"].strip(),
            "start": round(start, 3),
            "end": round(min(max(start, start_s + float(timing["end"])), end_s), 3),
            "score": round(float(timing["probability"]), 3),
        })  # fmt: skip
    return words
