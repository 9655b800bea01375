"""`/detect-language` in the door itself: answered in seconds while every worker is busy, on speech, not on the start.

Stretches of the track spread over its whole length are searched for speech (faster-whisper's Silero VAD, ONNX: no
torch), and Whisper's language head scores up to four 30-second windows of that speech; their probabilities are
summed, so one window of music or a name read aloud does not decide. No speech, or no clear leader, answers "und".
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fleet.language import LANGUAGES
from frontdoor.audio import SAMPLE_RATE

STRETCHES = 8  # places along the track searched for speech
STRETCH_S = 60  # each searched for this long
WINDOW_S = 30  # what Whisper's language head reads at once
MAX_WINDOWS = 4
MIN_SPEECH_S = 1.0  # less speech than this in all the stretches: nothing to go on
# Unsure: the best language below this mean probability, or not this many times as likely as the next one. Short
# speech spreads Whisper's head over related languages (3.5 s of French: fr 0.46, pl 0.15), which is still an answer.
MIN_PROBABILITY = 0.25
MIN_LEAD = 1.5


@dataclass(frozen=True)
class Detected:
    """The answer: whisper's code and name ("und"/"unknown" when unsure), the evidence's weight."""

    code: str
    name: str
    probability: float
    speech_s: float

    def answer(self) -> dict[str, Any]:
        """The body whisper-asr-webservice answers with (Bazarr reads these two keys)."""
        return {"detected_language": self.name, "language_code": self.code, "confidence": round(self.probability, 3),
                "speech_s": round(self.speech_s, 1)}  # fmt: skip


UNSURE = ("und", "unknown")


def stretches(samples: int) -> list[tuple[int, int]]:
    """Where to look for speech: the whole track when short, else STRETCHES evenly spread stretches."""
    length = STRETCH_S * SAMPLE_RATE
    if samples <= STRETCHES * length:
        return [(start, min(start + length, samples)) for start in range(0, samples, length)]
    starts = [i * (samples - length) // (STRETCHES - 1) for i in range(STRETCHES)]
    return [(start, start + length) for start in starts]


class LanguageDetector:
    """Whisper's language head on a model loaded once, on first use; one detection at a time."""

    def __init__(self, model_dir: Any, threads: int) -> None:
        self._model_dir = model_dir  # a callable giving the model folder (found, or assembled, on first use)
        self._threads = threads
        self._model: Any = None
        self._lock = threading.Lock()

    def detect(self, pcm: Path) -> Detected:
        """The language of raw s16le mono 16 kHz samples in `pcm`."""
        samples = np.memmap(pcm, dtype="<i2", mode="r") if pcm.stat().st_size else np.zeros(0, dtype="<i2")
        speech = self._speech(samples)
        if len(speech) < MIN_SPEECH_S * SAMPLE_RATE:
            return Detected(*UNSURE, 0.0, len(speech) / SAMPLE_RATE)
        with self._lock:
            model = self._load()
            if not model.model.is_multilingual:  # an English-only model (tiny.en) knows one language
                return Detected("en", LANGUAGES["en"], 1.0, len(speech) / SAMPLE_RATE)
            windows = [speech[i : i + WINDOW_S * SAMPLE_RATE] for i in range(0, len(speech), WINDOW_S * SAMPLE_RATE)]
            windows = [w for w in windows[:MAX_WINDOWS] if len(w) >= MIN_SPEECH_S * SAMPLE_RATE]
            totals: dict[str, float] = {}
            for window in windows:
                _, _, scores = model.detect_language(audio=window)
                for code, probability in scores:
                    totals[code] = totals.get(code, 0.0) + probability
        (code, total), (_, runner_up) = sorted(totals.items(), key=lambda item: -item[1])[:2]
        probability = total / len(windows)
        if probability < MIN_PROBABILITY or total < MIN_LEAD * runner_up or code not in LANGUAGES:
            return Detected(*UNSURE, probability, len(speech) / SAMPLE_RATE)
        return Detected(code, LANGUAGES[code], probability, len(speech) / SAMPLE_RATE)

    def _speech(self, samples: np.ndarray) -> np.ndarray:
        """Speech found in the stretches, in track order, up to MAX_WINDOWS windows of it, each stretch its share."""
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        share = MAX_WINDOWS * WINDOW_S * SAMPLE_RATE // STRETCHES
        found: list[np.ndarray] = []
        for start, end in stretches(len(samples)):
            audio = samples[start:end].astype(np.float32) / 32768.0
            taken = 0
            for span in get_speech_timestamps(audio, VadOptions(min_silence_duration_ms=500)):
                piece = audio[span["start"] : span["end"]][: share - taken]
                found.append(piece)
                taken += len(piece)
                if taken >= share:
                    break
        return np.concatenate(found) if found else np.zeros(0, dtype=np.float32)

    def _load(self) -> Any:
        if self._model is None:
            from faster_whisper import WhisperModel

            self._model = WhisperModel(str(self._model_dir()), device="cpu", compute_type="int8", cpu_threads=self._threads)
        return self._model
