"""Whisper's encoder on one window of audio: the input both language detection and word timing need."""

from __future__ import annotations

from typing import Any

import numpy as np


def encode_window(whisper_model: Any, window: np.ndarray) -> Any:
    """Log-mel features of at most 30 s of 16 kHz audio, padded as whisper expects, through the encoder."""
    from whisperx.audio import N_SAMPLES, log_mel_spectrogram

    window = window[:N_SAMPLES]
    n_mels = whisper_model.feat_kwargs.get("feature_size") or 80
    return whisper_model.encode(log_mel_spectrogram(window, n_mels=n_mels, padding=N_SAMPLES - window.shape[0]))
