"""Failure kinds: what a job that could not finish raises (the records themselves: fleet.state.failures)."""

from __future__ import annotations


class JobFailure(Exception):
    """A job that could not finish: a one-line reason, and detail such as ffmpeg's stderr tail."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


class PermanentFailure(JobFailure):
    """The same input will fail the same way: record it and dead-letter the message."""


class TransientFailure(JobFailure):
    """Worth another attempt later (disk full, dest read-only, wrong worker): keep the message."""
