"""Whether ffmpeg is there at all: checked at start-up (without numpy, which must wait for thread pinning)."""

from __future__ import annotations

import shutil


class FfmpegMissing(Exception):
    """ffmpeg is not installed: no file could be decoded, so the worker does not start."""


def require_ffmpeg() -> None:
    """A clear start-up error instead of every file failing one by one."""
    if shutil.which("ffmpeg") is None:
        raise FfmpegMissing("ffmpeg not found on PATH: install it (Debian: apt-get install ffmpeg); every file is decoded with it")  # noqa: E501
