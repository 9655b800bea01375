"""The spoken language: the windows' vote, the choice it allows, and, when it is unsure, the joint evidence.

The language is voted by the first speech windows, in order, until they hold enough confident speech; a sure
vote is taken as it is; below it a fallback language (when set) or whisper's joint score of language and text
decides: P(language | audio) x P(text | language, audio), the text being the likeliest any candidate decoded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from fleet.job.identity import DecodingOptions
from worker.audio.samples import Audio
from worker.speech.decoding import TextDecoder, WindowText, window_loop_reason
from worker.speech.encoder import Window, encode_windows, take
from worker.speech.repetition import MAX_TOKENS_PER_S
from worker.speech.results import GIVEN, LANGUAGE_CANDIDATES, LanguageGuess, LanguageSource, SourceKind

# The windows vote until they hold this much confident speech (seconds x top probability): one clear 30 s window
# decides alone, as whisper's own detection on the first 30 s would, while music the VAD took for speech (a flat
# guess) or a short greeting weighs little and the windows after it are heard too.
LANGUAGE_VOTE_WEIGHT_S = 15.0
# A vote this sure is taken as it is. Below it (and above WHISPER_LANGUAGE_MIN_PROBABILITY, or below it with no
# fallback language set) the first speech windows, at least DECODED_CANDIDATE_S of speech, are decoded in each of
# the DECODED_CANDIDATES likeliest languages and the joint score decides (a short "Hello? Hello?" can vote
# Korean while its English text is far likelier; "nine one one" decodes as likelier Norwegian digits, which
# are just as likely under English: the vote stands). 15 s of speech tell a fluent text from a strained one.
LANGUAGE_SURE_PROBABILITY = 0.8
DECODED_CANDIDATES = 3
DECODED_CANDIDATE_S = 15.0
# A vote share of 0 (rounded away) would make a language impossible; this floor leaves it nearly so.
LEAST_SHARE = 1e-6


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
    shares = {lang: round(p, 4) for lang, p in ranked}
    top = ranked[0][0]
    return LanguageGuess(top, shares[top], list(shares.items())[:LANGUAGE_CANDIDATES], shares, weights)


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


@dataclass
class Evidence:
    """The first windows of speech that the candidates decode: their rows of the batch's encoder output."""

    encoded: Any  # the rows' encoder output (a StorageView)
    seconds: list[float]  # each row's speech
    frames: list[int]  # each row's unpadded mel frames, as the aligner takes them
    memory: Any = None  # the array that holds `encoded`'s memory when it is a copy of some rows (kept alive here)


def decode_candidates(decoder: TextDecoder, encoded: Any, batch: list[Window], guess: LanguageGuess,
                      options: DecodingOptions) -> tuple[str, LanguageSource]:  # fmt: skip
    """The candidate language with whisper's best joint score of language and text, and each candidate's score.

    Each of the likeliest few languages decodes the first DECODED_CANDIDATE_S of speech (greedy, unconditioned,
    on the encoder output at hand, at most as many tokens as a window can hold); a language whose own text loops,
    runs on to that cap or is empty is out. Every clean text is then scored under every language left (teacher-forced: one decoder
    pass), and a language scores its vote share times its likeliest text, per token: the text decides only when
    it reads better in one language than in another, so digits, names and music leave the vote standing.
    """
    evidence = _surest_speech(encoded, batch, guess.weights)
    greedy = options.model_copy(update={"beam_size": 1, "initial_prompt": None, "hotwords": None})
    # A window's text cannot hold more; one that reaches this is a runaway, not a truncated candidate that could win.
    most_tokens = min(int(MAX_TOKENS_PER_S * max(evidence.seconds)) + 16, decoder.model.max_length - 8)
    texts: dict[str, list[WindowText]] = {}
    left_out: dict[str, str] = {}
    for language, _ in guess.candidates[:DECODED_CANDIDATES]:
        tokenizer = decoder.tokenizer(language, "transcribe")
        decoded = [row[0] for row in decoder.generate(evidence.encoded, tokenizer, greedy, 0.0, [], most_tokens)]
        if not any(text.tokens for text in decoded):
            left_out[language] = "no text"
        elif any(len(text.tokens) >= most_tokens for text in decoded):  # stopped by the cap, not by its own end
            left_out[language] = "runs on"
        elif any(window_loop_reason(text, s, options) for text, s in zip(decoded, evidence.seconds, strict=True)):
            left_out[language] = "loops"
        else:
            texts[language] = decoded
    if not texts:
        return guess.language, LanguageSource(SourceKind.UNSURE, f"detected at {guess.probability}; no candidate decoded cleanly")
    scores = {language: joint_score(decoder, evidence, language, guess.probability_of(language), texts) for language in texts}
    ranked = sorted(scores.items(), key=lambda item: -item[1])
    shown = " vs ".join([f"{lang} {score:.2f}" for lang, score in ranked] + [f"{lang} {why}" for lang, why in left_out.items()])
    return ranked[0][0], LanguageSource(SourceKind.DECODED, shown)


def _surest_speech(encoded: Any, batch: list[Window], weights: list[float]) -> Evidence:
    """The windows that voted surest (seconds x top probability), then the rest in order, up to DECODED_CANDIDATE_S.

    Music the VAD took for speech votes flatly: the candidates decode the speech the vote heard, not the intro.
    """
    from whisperx.audio import HOP_LENGTH, N_SAMPLES

    order = sorted(range(len(weights)), key=lambda row: -weights[row]) + list(range(len(weights), len(batch)))
    rows, speech_s = [], 0.0
    for row in order:
        rows.append(row)
        speech_s += batch[row].end - batch[row].start
        if speech_s >= DECODED_CANDIDATE_S:
            break
    rows.sort()
    subset, memory = take(encoded, rows) if rows != list(range(len(batch))) else (encoded, None)
    frames = [max(1, min(batch[row].audio.shape[0], N_SAMPLES) // HOP_LENGTH) for row in rows]
    return Evidence(subset, [batch[row].end - batch[row].start for row in rows], frames, memory)


def joint_score(decoder: TextDecoder, evidence: Evidence, language: str, share: float,
                texts: dict[str, list[WindowText]]) -> float:  # fmt: skip
    """log P(language | audio) + log P(text | language, audio), per token, for the likeliest of the texts.

    whisper's own score of the sequence <|language|> text, normalised by length as its ranker does (so a short
    text, a word where a sentence was spoken, gains nothing by being short).
    """
    tokenizer = decoder.tokenizer(language, "transcribe")
    start = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
    pairs = [(name, row) for name, decoded in texts.items() for row, text in enumerate(decoded) if text.tokens]
    rows = [row for _, row in pairs]
    features, _memory = take(evidence.encoded, rows)
    aligned = decoder.model.model.align(features, start, [texts[name][row].tokens for name, row in pairs],
                                        [evidence.frames[row] for row in rows])  # fmt: skip
    log_share = math.log(max(share, LEAST_SHARE))
    text_logprob = dict.fromkeys(texts, 0.0)
    for (name, _), result in zip(pairs, aligned, strict=True):
        text_logprob[name] += float(np.log(np.maximum(result.text_token_probs, 1e-12)).sum())
    tokens = {name: sum(len(text.tokens) for text in decoded) for name, decoded in texts.items()}
    return max((log_share + text_logprob[name]) / (tokens[name] + 1) for name in texts)


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
