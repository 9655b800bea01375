"""What an upload holds and how it is kept: raw PCM (Bazarr's `encode=false`) or a container, as 16 kHz mono FLAC.

FLAC keeps the samples exactly and takes about half the room; the workers decode it as they decode any file.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

SAMPLE_RATE = 16_000
PCM_BYTES_PER_S = SAMPLE_RATE * 2  # s16le, mono
# Signatures of containers ffmpeg reads. Raw PCM is any bytes at all, so only these are trusted: a WAV sent with
# encode=false (a client that decodes nothing) is read as the WAV it is, not as noise.
_MAGIC_AT_0 = (b"RIFF", b"RF64", b"ID3", b"fLaC", b"OggS", b"\x1aE\xdf\xa3", b"FORM", b"caff", b"#!AMR", b".snd", b"wvpk",
               b"MAC ", b"0&\xb2u\x8ef\xcf\x11")  # fmt: skip
_MAGIC_AT_4 = (b"ftyp",)  # mp4, m4a, mov


class NotAudio(Exception):
    """ffmpeg could not read the upload as audio; str() is one line fit for the client."""


def looks_encoded(head: bytes) -> bool:
    """Whether the upload's first bytes are a container's signature rather than samples."""
    return head.startswith(_MAGIC_AT_0) or head[4:8] in _MAGIC_AT_4


def raw_problem(size: int) -> str | None:
    """Why `size` bytes cannot be s16le mono PCM, or None."""
    if size == 0:
        return "the upload is empty"
    if size % 2:
        return "the upload is truncated: raw 16-bit PCM has an even number of bytes"
    return None


def _input_args(source: Path, raw: bool) -> list[str]:
    raw_format = ["-f", "s16le", "-ar", str(SAMPLE_RATE), "-ac", "1"] if raw else []
    return ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", *raw_format, "-i", str(source), "-map", "0:a:0",
            "-ac", "1", "-ar", str(SAMPLE_RATE)]  # fmt: skip


async def to_flac(source: Path, target: Path, raw: bool, timeout_s: float) -> None:
    """Compress (raw) or decode (a container's first audio track) into `target`; NotAudio when ffmpeg cannot."""
    await _ffmpeg([*_input_args(source, raw), "-c:a", "flac", "-y", str(target)], target, timeout_s)


async def to_pcm(source: Path, target: Path, timeout_s: float) -> None:
    """A container's first audio track as raw s16le mono 16 kHz (what the language detector reads)."""
    await _ffmpeg([*_input_args(source, False), "-f", "s16le", "-y", str(target)], target, timeout_s)


async def _ffmpeg(command: list[str], target: Path, timeout_s: float) -> None:
    process = await asyncio.create_subprocess_exec(*command, stdin=asyncio.subprocess.DEVNULL,
                                                   stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)  # fmt: skip
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), timeout_s)
    except (TimeoutError, asyncio.CancelledError):
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        target.unlink(missing_ok=True)
        raise
    if process.returncode != 0 or not target.exists() or target.stat().st_size == 0:
        target.unlink(missing_ok=True)
        lines = stderr.decode("utf-8", "replace").strip().splitlines()
        raise NotAudio(f"not audio ffmpeg can read: {lines[-1] if lines else 'no audio track'}"[:300])
