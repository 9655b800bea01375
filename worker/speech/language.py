"""The spoken language: the windows' vote, the choice it allows, and, when it is unsure, the candidates decoded.

The language is voted by the first speech windows, in order, until they hold enough confident speech; a sure
vote is taken as it is; below it a fallback language (when set) or the decoded text of the likeliest few decides.
"""

from __future__ import annotations

from typing import Any

from fleet.job.identity import DecodingOptions
from worker.audio.samples import Audio
from worker.speech.decoding import TextDecoder, window_loop_reason
from worker.speech.encoder import Window, encode_windows, take
from worker.speech.results import GIVEN, LANGUAGE_CANDIDATES, LanguageGuess, LanguageSource, SourceKind

# The windows vote until they hold this much confident speech (seconds x top probability): one clear 30 s window
# decides alone, as whisper's own detection on the first 30 s would, while music the VAD took for speech (a flat
# guess) or a short greeting weighs little and the windows after it are heard too.
LANGUAGE_VOTE_WEIGHT_S = 15.0
# Candidates kept in the transcript's JSON when the language was detected.
# A vote this sure is taken as it is. Below it (and above WHISPER_LANGUAGE_MIN_PROBABILITY, or below it with no
# fallback language set) the first speech windows are decoded in each of the DECODED_CANDIDATES likeliest
# languages, at least DECODED_CANDIDATE_S of speech, and the text decides (a short "Hello? Hello?" can vote
# another language while its English decoding is the far likelier text).
LANGUAGE_SURE_PROBABILITY = 0.8
DECODED_CANDIDATES = 3
DECODED_CANDIDATE_S = 30.0



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


def detect_language(decoder: TextDecoder, encoded: Any, batch: list[Window]) -> LanguageGuess | None:
    """The vote of the first windows of a batch, by CTranslate2's detection on their encoder output; None: English-only."""
    if not decoder.multilingual:
        return None
    detections, durations, weight = [], [], 0.0
    for window, ranking in zip(batch, decoder.model.model.detect_language(encoded), strict=True):
        detections.append(ranking)
        durations.append(min(window.end - window.start, 30.0))
        weight += durations[-1] * ranking[0][1]
        if weight >= LANGUAGE_VOTE_WEIGHT_S:
            break
    return vote_language(detections, durations)


def choose_language(guess: LanguageGuess | None, options: DecodingOptions) -> tuple[str, LanguageSource]:
    """The detected language when the vote is sure; the fallback language (if set) below the floor; else UNSURE."""
    if guess is None:
        return "en", LanguageSource(SourceKind.ENGLISH_ONLY)
    if guess.probability >= max(options.language_min_probability, LANGUAGE_SURE_PROBABILITY):
        return guess.language, LanguageSource(SourceKind.DETECTED)
    if guess.probability < options.language_min_probability and options.fallback_language:
        detail = f"detected {guess.language} at {guess.probability} < {options.language_min_probability}"
        return options.fallback_language, LanguageSource(SourceKind.FALLBACK, detail)
    return guess.language, LanguageSource(SourceKind.UNSURE, f"detected at {guess.probability}")


def decode_candidates(decoder: TextDecoder, encoded: Any, batch: list[Window], guess: LanguageGuess,
                      options: DecodingOptions) -> tuple[str, LanguageSource]:  # fmt: skip
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
        texts = [row[0] for row in decoder.generate(subset, decoder.tokenizer(language, "transcribe"), greedy, 0.0, [])]
        tokens = sum(len(text.tokens) for text in texts)
        if not tokens:
            scores[language] = "no text"
        elif any(window_loop_reason(text, seconds, options) for text, seconds in zip(texts, windows_s, strict=True)):
            scores[language] = "loops"
        else:
            scores[language] = sum(text.avg_logprob * len(text.tokens) for text in texts) / tokens
    ranked = sorted(scores.items(), key=lambda item: -item[1] if isinstance(item[1], float) else float("inf"))
    if not isinstance(ranked[0][1], float):
        return guess.language, LanguageSource(SourceKind.UNSURE, f"detected at {guess.probability}; no candidate decoded cleanly")
    shown = " vs ".join(f"{lang} {score:.2f}" if isinstance(score, float) else f"{lang} {score}" for lang, score in ranked)
    return ranked[0][0], LanguageSource(SourceKind.DECODED, shown)


def language_without_speech(decoder: TextDecoder, audio: Audio, language: str | None,
                            options: DecodingOptions) -> tuple[str, LanguageGuess | None, LanguageSource]:  # fmt: skip
    """No speech found: the given language, else what the first 30 s sound like (as whisperX would say)."""
    if language is not None:
        return language, None, GIVEN
    if not decoder.multilingual:
        return "en", None, LanguageSource(SourceKind.ENGLISH_ONLY)
    if audio.samples == 0:
        return "en", None, LanguageSource(SourceKind.NO_AUDIO)
    first = audio.read(0.0, 30.0)
    window = Window(0.0, first.shape[0] / 16000, first)
    guess = detect_language(decoder, encode_windows(decoder.model, [window.audio]), [window])
    chosen, source = choose_language(guess, options)
    if source.kind is SourceKind.UNSURE:
        source = LanguageSource(SourceKind.UNSURE, f"{source.detail}; no speech to decode")
    return chosen, guess, source
