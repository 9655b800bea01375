"""The worker's side of its heartbeat record: the live state, and the beacon that writes it every few seconds."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from fleet.state.worker_record import WorkerActivity, WorkerRecord, worker_record_path, write_worker_record

BEAT_S = 5.0  # a small JSON file every few seconds: cheap, and fresh enough for a person watching


class WorkerState(WorkerRecord):
    """The record as the loop and the job thread update it (plain attribute writes, no validation)."""

    def on_stage(self, stage: str, progress: float | None = None) -> None:
        """Called from the job thread as stages start and report progress."""
        self.stage = stage
        self.stage_progress = None if progress is None else round(min(100.0, max(0.0, progress)), 1)

    def start_job(self, file: str, receive_count: int) -> None:
        self.state, self.file, self.receive_count = WorkerActivity.WORKING, file, receive_count
        self.stage, self.stage_progress, self.job_started_at = "queued", None, time.time()
        self.job_audio_s = None

    def wait_for(self, problem: str | None) -> None:
        """Waiting for the roots (problem) or not (None); the first moment of a wait is kept."""
        if problem is None:
            self.waiting = self.waiting_since = None
            return
        self.state = WorkerActivity.WAITING
        if self.waiting is None:
            self.waiting_since = time.time()
        self.waiting = problem

    def on_decoded(self, audio_s: float) -> None:
        """Called from the job thread once the length of the audio is known (it sets the job's time limit)."""
        self.job_audio_s = audio_s

    def end_job(self, outcome: str, transcribed: bool, failed: bool, audio_s: float) -> None:
        self.files_done += int(transcribed)
        self.files_failed += int(failed)
        self.audio_s_done += audio_s if transcribed else 0.0
        self.outcomes = {**self.outcomes, outcome: self.outcomes.get(outcome, 0) + 1}
        self.state, self.file, self.stage, self.stage_progress, self.job_started_at = WorkerActivity.IDLE, None, None, None, None


def lost_after_s(receive_wait_s: float) -> float:
    """How long a worker may stay silent before status calls it lost: an idle long poll is not silence."""
    return receive_wait_s + 3 * BEAT_S


class Beacon:
    """Writes the state atomically: every BEAT_S, and at once when the state, file or stage changes."""

    def __init__(self, dest: Path, state: WorkerState, rss_mb: Callable[[], float] | None = None) -> None:
        self.state = state
        self.dest = dest
        self.path = worker_record_path(dest, state.worker)
        self.rss_mb = rss_mb
        self._written = False
        self._last = 0.0
        self._last_shown: tuple[str | None, ...] = ()

    def close(self) -> None:
        """Nothing to flush: the record is on disk already (a remote worker's beacon sends its last one)."""

    def beat(self, force: bool = False) -> None:
        now = time.time()
        shown = (self.state.state, self.state.file, self.state.stage)
        if not force and shown == self._last_shown and now - self._last < BEAT_S:
            return
        self._last_shown = shown
        self.state.last_beat = now
        if self.rss_mb is not None:
            self.state.rss_mb = round(self.rss_mb())
        if not self.dest.is_dir() or (self._written and not self.path.parent.is_dir()):
            return  # the destination is away (not mounted): never create it, or its state, on the bare mount point
        try:
            write_worker_record(self.path, self.state)
            self._written = True
            self._last = now
        except OSError:
            pass  # dest full or read-only: status goes stale, the work itself carries on
