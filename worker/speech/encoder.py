"""Whisper's encoder input and output for windows of audio: what detection, decoding and word timing all need."""

from __future__ import annotations

from typing import Any

import numpy as np


def window_features(whisper_model: Any, window: np.ndarray) -> np.ndarray:
    """Log-mel features of at most 30 s of 16 kHz audio, padded to 30 s as whisper expects."""
    from whisperx.audio import N_SAMPLES, log_mel_spectrogram

    window = window[:N_SAMPLES]
    n_mels = whisper_model.feat_kwargs.get("feature_size") or 80
    return log_mel_spectrogram(window, n_mels=n_mels, padding=N_SAMPLES - window.shape[0]).numpy()


def encode_windows(whisper_model: Any, windows: list[np.ndarray]) -> Any:
    """All windows through the encoder as one batch (a CTranslate2 StorageView, one row per window)."""
    return whisper_model.encode(np.stack([window_features(whisper_model, window) for window in windows]))
