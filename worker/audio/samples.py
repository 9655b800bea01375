"""Decode any audio or video file once, with ffmpeg, to 16 kHz mono samples that every stage reads a stretch at a time.

The decoded samples are spooled to an unnamed temporary file (16-bit, 115 MB per hour of audio, gone when
the worker closes it or dies) instead of being held in memory: a worker's memory then does not grow with
the length of the file (a ten-hour audiobook would take 2.3 GB as float32, and its decoding three copies).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import IO

import numpy as np

SAMPLE_RATE = 16_000
BYTES_PER_SAMPLE = 2  # s16le from ffmpeg
STDERR_TAIL_CHARS = 2_000
PIPE_READ_BYTES = 1 << 20

# Failures of the file's surroundings, not of its bytes: a slow or stale network share, permissions.
TRANSIENT_REASONS = frozenset({"source file disappeared", "source file not readable", "source I/O error"})


class DecodeError(Exception):
    """The file cannot be turned into audio. `transient`: it may work later (timeout, permissions, I/O)."""

    def __init__(self, reason: str, stderr_tail: str = "", transient: bool | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.stderr_tail = stderr_tail
        self.transient = reason in TRANSIENT_REASONS if transient is None else transient


class Audio:
    """The samples of one file as float32 in [-1, 1], 16 kHz mono, read a stretch at a time."""

    samples: int

    @property
    def duration_s(self) -> float:
        return self.samples / SAMPLE_RATE

    def read(self, start_s: float = 0.0, end_s: float | None = None) -> np.ndarray:
        """The samples from `start_s` to `end_s` (the end of the file when None), a fresh array."""
        first = min(max(0, int(start_s * SAMPLE_RATE)), self.samples)
        last = self.samples if end_s is None else min(max(first, int(end_s * SAMPLE_RATE)), self.samples)
        return self._read(first, last)

    def _read(self, first: int, last: int) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        """Let go of what holds the samples."""

    def __enter__(self) -> Audio:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ArrayAudio(Audio):
    """Samples already in memory (tests, benchmarks, short synthetic audio)."""

    def __init__(self, samples: np.ndarray) -> None:
        self.array = samples
        self.samples = samples.shape[0]

    def _read(self, first: int, last: int) -> np.ndarray:
        return self.array[first:last]


class SpooledAudio(Audio):
    """Samples in a temporary file as ffmpeg wrote them (int16); converted to float32 only for the stretch read."""

    def __init__(self, spool: IO[bytes]) -> None:
        self._spool = spool
        self.samples = os.fstat(spool.fileno()).st_size // BYTES_PER_SAMPLE

    def _read(self, first: int, last: int) -> np.ndarray:
        raw = os.pread(self._spool.fileno(), (last - first) * BYTES_PER_SAMPLE, first * BYTES_PER_SAMPLE)
        samples = np.frombuffer(raw, np.int16).astype(np.float32)
        samples /= 32768.0
        return samples

    def close(self) -> None:
        self._spool.close()


def as_audio(audio: np.ndarray | Audio) -> Audio:
    """Any stage's input as an Audio (an array is wrapped, not copied)."""
    return audio if isinstance(audio, Audio) else ArrayAudio(audio)


def spool_audio(path: Path, timeout_s: float, stream_index: int | None = None) -> SpooledAudio:
    """One audio stream of `path` (the first, or stream number `stream_index`), decoded into a temporary file.

    ffmpeg's output is copied a megabyte at a time, so decoding a file of any length takes the same memory.
    """
    stream = "0:a:0" if stream_index is None else f"0:{stream_index}"
    command = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-threads", "0",
        "-i", str(path), "-map", stream, "-vn", "-sn", "-dn",
        "-f", "s16le", "-acodec", "pcm_s16le", "-ac", "1", "-ar", str(SAMPLE_RATE), "-",
    ]  # fmt: skip
    spool = tempfile.TemporaryFile(prefix="fleet-audio-")
    try:
        returncode, stderr, timed_out = _copy_output(command, spool, timeout_s)
    except BaseException:
        spool.close()
        raise
    if timed_out or returncode != 0 or spool.tell() < BYTES_PER_SAMPLE:
        spool.close()
        if timed_out:
            raise DecodeError(f"decoding took longer than {timeout_s:.0f} s", transient=True)
        if returncode != 0:
            raise DecodeError(_reason(stderr), stderr)
        raise DecodeError("no audio samples in the file", stderr)
    spool.flush()
    return SpooledAudio(spool)


def decode_audio(path: Path, timeout_s: float, stream_index: int | None = None) -> np.ndarray:
    """The whole stream in memory as float32 (tests and benchmarks; the worker reads a spool instead)."""
    with spool_audio(path, timeout_s, stream_index) as audio:
        return audio.read()


def _copy_output(command: list[str], spool: IO[bytes], timeout_s: float) -> tuple[int, str, bool]:
    """Run ffmpeg, its samples into `spool`; (exit code, stderr's tail, whether it was stopped for time)."""
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors)
        expired = threading.Event()

        def stop() -> None:
            expired.set()
            process.kill()

        timer = threading.Timer(timeout_s, stop)
        timer.start()
        try:
            assert process.stdout is not None
            while chunk := process.stdout.read(PIPE_READ_BYTES):
                try:
                    spool.write(chunk)
                except OSError as exc:  # the temporary folder is full: the machine's, not the file's fault
                    raise DecodeError(f"no room for the decoded audio in {tempfile.gettempdir()}: {exc.strerror}",
                                      transient=True) from exc  # fmt: skip
            returncode = process.wait()
        finally:
            timer.cancel()
            if process.poll() is None:
                process.kill()
                process.wait()
            process.stdout.close()
        errors.seek(0)
        stderr = errors.read().decode("utf-8", "replace")[-STDERR_TAIL_CHARS:]
    return returncode, stderr, expired.is_set()


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
