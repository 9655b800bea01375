"""Windows of speech and whisper's encoder output for them: what detection, decoding and word timing all take."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from worker.audio.samples import Audio


def window_features(whisper_model: Any, window: np.ndarray) -> np.ndarray:
    """Log-mel features of at most 30 s of 16 kHz audio, padded to 30 s as whisper expects."""
    from whisperx.audio import N_SAMPLES, log_mel_spectrogram

    window = window[:N_SAMPLES]
    n_mels = whisper_model.feat_kwargs.get("feature_size") or 80
    return log_mel_spectrogram(window, n_mels=n_mels, padding=N_SAMPLES - window.shape[0]).numpy()


def encode_windows(whisper_model: Any, windows: list[np.ndarray]) -> Any:
    """All windows through the encoder as one batch (a CTranslate2 StorageView, one row per window)."""
    return whisper_model.encode(np.stack([window_features(whisper_model, window) for window in windows]))


@dataclass(frozen=True)
class Window:
    """One stretch of speech (VAD chunks merged to at most 30 s) and its samples."""

    start: float
    end: float
    audio: np.ndarray


def with_samples(audio: Audio, spans: list[tuple[float, float]]) -> list[Window]:
    """The windows at `spans`, each with its samples read from `audio`."""
    return [Window(start, end, audio.read(start, end)) for start, end in spans]


def take(encoder_output: Any, rows: list[int]) -> tuple[Any, Any]:
    """The encoder output of some rows of a batch, and the array that holds its memory (keep both alive)."""
    import ctranslate2

    if encoder_output.device == "cuda":
        import torch

        array = torch.as_tensor(encoder_output, device="cuda")[rows].contiguous()
    else:
        array = np.ascontiguousarray(np.asarray(encoder_output)[rows])
    return ctranslate2.StorageView.from_array(array), array
