"""The worker's heartbeat record, <dest>/.fleet/workers/<id>.json: what `fleet status` shows."""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fleet import __version__
from fleet.atomic import write_atomic
from fleet.layout import workers_dir

BEAT_S = 5.0  # a small JSON file every few seconds: cheap, and fresh enough for a person watching


@dataclass
class WorkerState:
    """Everything a person wants to know about one worker; updated by the loop and the job thread."""

    worker: str
    lost_after_s: float
    model: str = ""
    device: str = ""
    threads: int = 0
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    version: str = __version__
    started_at: float = field(default_factory=time.time)
    state: str = "starting"  # starting, idle, working, stopping, stopped
    file: str | None = None
    stage: str | None = None
    stage_progress: float | None = None
    job_started_at: float | None = None
    receive_count: int | None = None
    job_audio_s: float | None = None
    files_done: int = 0
    files_failed: int = 0
    audio_s_done: float = 0.0
    last_beat: float = 0.0
    # What this worker does without, e.g. {"word timings (en)": "whisper cross-attention (no alignment model ...)"}.
    fallbacks: dict[str, str] = field(default_factory=dict)

    def on_stage(self, stage: str, progress: float | None = None) -> None:
        """Called from the job thread as stages start and report progress (plain attribute writes)."""
        self.stage = stage
        self.stage_progress = None if progress is None else round(min(100.0, max(0.0, progress)), 1)

    def start_job(self, file: str, receive_count: int) -> None:
        self.state, self.file, self.receive_count = "working", file, receive_count
        self.stage, self.stage_progress, self.job_started_at = "queued", None, time.time()
        self.job_audio_s = None

    def on_decoded(self, audio_s: float) -> None:
        """Called from the job thread once the length of the audio is known (it sets the job's time limit)."""
        self.job_audio_s = audio_s

    def end_job(self, transcribed: bool, failed: bool, audio_s: float) -> None:
        self.files_done += int(transcribed)
        self.files_failed += int(failed)
        self.audio_s_done += audio_s if transcribed else 0.0
        self.state, self.file, self.stage, self.stage_progress, self.job_started_at = "idle", None, None, None, None


def lost_after_s(receive_wait_s: float) -> float:
    """How long a worker may stay silent before status calls it lost: an idle long poll is not silence."""
    return receive_wait_s + 3 * BEAT_S


class Beacon:
    """Writes the state atomically: every BEAT_S, and at once when the state, file or stage changes."""

    def __init__(self, dest: Path, state: WorkerState) -> None:
        self.state = state
        self.path = workers_dir(dest) / f"{_safe_name(state.worker)}.json"
        self._last = 0.0
        self._last_shown: tuple[str | None, ...] = ()

    def beat(self, force: bool = False) -> None:
        now = time.time()
        shown = (self.state.state, self.state.file, self.state.stage)
        if not force and shown == self._last_shown and now - self._last < BEAT_S:
            return
        self._last_shown = shown
        self.state.last_beat = now
        try:
            write_atomic(self.path, json.dumps(asdict(self.state)))
            self._last = now
        except OSError:
            pass  # dest full or read-only: status goes stale, the work itself carries on


def _safe_name(worker_id: str) -> str:
    """Worker ids come from settings (hostnames, container ids): keep the file name tame."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in worker_id).lstrip(".") or "worker"
