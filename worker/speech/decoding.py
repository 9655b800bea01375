"""Text from encoder output: whisperX's batched decoding, plus the temperature fallback for loops and the silence rule.

What whisperX's batched decoding leaves out, faster-whisper's sequential mode does and this does too: a window
whose text loops is decoded again at the fallback temperatures (then its repeats are cut), and whisper's
no-speech rule drops windows that are silence the model put words on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fleet.job.identity import DecodingOptions
from worker.speech.encoder import take
from worker.speech.repetition import MAX_TOKENS_PER_S, Confidence, cut_loops, loop_reason

# whisper's own: a fallback decoded this hot no longer conditions the next window on its text.
PROMPT_RESET_ON_TEMPERATURE = 0.5


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


class TextDecoder:
    """Decodes windows' encoder output with the model and options of whisperX's pipeline (`asr`)."""

    def __init__(self, asr: Any) -> None:
        self.asr = asr  # whisperX's FasterWhisperPipeline
        self.model = asr.model  # its faster-whisper WhisperModel
        self.multilingual = bool(self.model.model.is_multilingual)

    def tokenizer(self, language: str, task: str) -> Any:
        from faster_whisper.tokenizer import Tokenizer

        return Tokenizer(self.model.hf_tokenizer, self.multilingual, task=task, language=language)

    def decode_batch(self, encoded: Any, windows_s: list[float], tokenizer: Any, options: DecodingOptions,
                     previous: list[int]) -> list[WindowText]:  # fmt: skip
        """Each window's text; windows whose text loops are decoded again hotter, then cut if still looping."""
        temperatures = options.temperatures()
        if options.condition_on_previous_text:
            texts = []
            for row in range(encoded.shape[0]):  # each window's prompt is the text before it: one at a time
                window, _memory = take(encoded, [row])
                text = self.generate(window, tokenizer, options, temperatures[0], previous)[0][0]
                previous = previous_tokens(previous, [text])
                texts.append(text)
        else:
            texts = [row[0] for row in self.generate(encoded, tokenizer, options, temperatures[0], previous)]
        looping: dict[int, str] = {}
        for row, text in enumerate(texts):
            if is_silent(text, options):
                texts[row] = WindowText([], "", text.avg_logprob, text.no_speech_prob, silent=True)
            elif reason := window_loop_reason(text, windows_s[row], options):
                looping[row] = reason
        # The first temperature with a loop-free text wins, its likeliest loop-free sample: whisper would go on while
        # the log probability is low too, which costs up to five sampled decodings per window where the language was
        # misheard. A looping sample stops at a generous length for the window rather than at whisper's 448 tokens.
        for temperature in temperatures[1:]:
            if not looping:
                break
            rows = sorted(looping)
            subset, _memory = take(encoded, rows)
            longest_s = max(windows_s[row] for row in rows)
            # Not conditioned on earlier text (in that mode `previous` has moved past these windows by now, and
            # whisper drops the prompt for hot fallbacks anyway).
            retries = self.generate(subset, tokenizer, options, temperature, [],
                                    max_new_tokens=int(MAX_TOKENS_PER_S * longest_s) + 16)  # fmt: skip
            for row, samples in zip(rows, retries, strict=True):
                loop_free = [s for s in samples if window_loop_reason(s, windows_s[row], options) is None]
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

    def generate(self, encoded: Any, tokenizer: Any, options: DecodingOptions, temperature: float, previous: list[int],
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

    @staticmethod
    def _suppressed_tokens(tokenizer: Any, options: DecodingOptions) -> list[int]:
        if not options.suppress_numerals:
            return list(options.suppress_tokens)
        from whisperx.asr import find_numeral_symbol_tokens

        return sorted(set(find_numeral_symbol_tokens(tokenizer)) | set(options.suppress_tokens))


def previous_tokens(previous: list[int], decoded: list[WindowText]) -> list[int]:
    """What conditions the next window (whisper's condition_on_previous_text): reset after a hot fallback."""
    for text in decoded:
        previous = [] if text.temperature > PROMPT_RESET_ON_TEMPERATURE else previous + text.tokens
    return previous


def is_silent(text: WindowText, options: DecodingOptions) -> bool:
    """whisper's no-speech rule: the model says "no speech" and is unsure of the words it found."""
    if options.no_speech_threshold is None or text.no_speech_prob <= options.no_speech_threshold:
        return False
    return options.logprob_threshold is None or text.avg_logprob < options.logprob_threshold


def window_loop_reason(text: WindowText, window_s: float, options: DecodingOptions) -> str | None:
    """Why a window's text is a hallucination loop: repeats the decoding itself doubts, or whisper's compression rule."""
    confidence = Confidence(text.avg_logprob, options.logprob_threshold, len(text.tokens) / max(window_s, 1.0))
    return loop_reason(text.text, options.compression_ratio_threshold, confidence)
