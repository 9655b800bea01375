"""Decode any audio or video file once, with ffmpeg, to 16 kHz mono float32 (what every stage eats)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000
STDERR_TAIL_CHARS = 2_000


# Failures of the file's surroundings, not of its bytes: a slow or stale network share, permissions.
TRANSIENT_REASONS = frozenset({"source file disappeared", "source file not readable", "source I/O error"})


class DecodeError(Exception):
    """The file cannot be turned into audio. `transient`: it may work later (timeout, permissions, I/O)."""

    def __init__(self, reason: str, stderr_tail: str = "", transient: bool | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.stderr_tail = stderr_tail
        self.transient = reason in TRANSIENT_REASONS if transient is None else transient


def decode_audio(path: Path, timeout_s: float, stream_index: int | None = None) -> np.ndarray:
    """One audio stream of `path` (the first, or stream number `stream_index`) as float32 in [-1, 1], 16 kHz mono."""
    stream = "0:a:0" if stream_index is None else f"0:{stream_index}"
    command = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-threads", "0",
        "-i", str(path), "-map", stream, "-vn", "-sn", "-dn",
        "-f", "s16le", "-acodec", "pcm_s16le", "-ac", "1", "-ar", str(SAMPLE_RATE), "-",
    ]  # fmt: skip
    try:
        result = subprocess.run(command, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise DecodeError(f"decoding took longer than {timeout_s:.0f} s", transient=True) from exc
    stderr = result.stderr.decode("utf-8", "replace")[-STDERR_TAIL_CHARS:]
    if result.returncode != 0:
        raise DecodeError(_reason(stderr), stderr)
    if not result.stdout:
        raise DecodeError("no audio samples in the file", stderr)
    return np.frombuffer(result.stdout, np.int16).astype(np.float32) / 32768.0


def _reason(stderr: str) -> str:
    """A short human reason from ffmpeg's stderr."""
    if "matches no streams" in stderr or "does not contain any stream" in stderr:
        return "no audio stream"
    if "Invalid data found" in stderr or "could not find codec" in stderr.lower():
        return "not decodable (corrupt or not a media file)"
    if "No such file" in stderr:
        return "source file disappeared"
    if "Permission denied" in stderr:
        return "source file not readable"
    if "Input/output error" in stderr or "Stale file handle" in stderr:
        return "source I/O error"
    return "not decodable (corrupt or not a media file)"
