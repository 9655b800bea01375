"""A worker's heartbeat record, <dest>/.fleet/workers/<id>.json: one schema, written by the worker, read by the rest."""

from __future__ import annotations

import os
import socket
import time
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fleet import __version__
from fleet.process.secrets import redact
from fleet.state.atomic import write_atomic
from fleet.state.paths import workers_dir


class WorkerActivity(StrEnum):
    """What a worker is doing, as its record says (a string in the JSON)."""

    STARTING = "starting"  # loading its models
    IDLE = "idle"  # polling the queue
    WAITING = "waiting"  # a root cannot be used: receiving nothing until it can
    WORKING = "working"  # a file in hand
    STOPPING = "stopping"  # told to stop: finishing the file in hand within the grace period
    STOPPED = "stopped"


class WorkerRecord(BaseModel):
    """Everything a person wants to know about one worker; what `fleet status`, the dashboard and --check read."""

    model_config = ConfigDict(extra="ignore")

    worker: str
    lost_after_s: float
    model: str = ""
    device: str = ""
    threads: int = 0
    host: str = Field(default_factory=socket.gethostname)
    pid: int = Field(default_factory=os.getpid)
    version: str = __version__
    started_at: float = Field(default_factory=time.time)
    state: WorkerActivity = WorkerActivity.STARTING
    # Why it receives nothing while state is "waiting" (a root not mounted, the destination full), and since when.
    waiting: str | None = None
    waiting_since: float | None = None
    file: str | None = None
    stage: str | None = None
    stage_progress: float | None = None
    job_started_at: float | None = None
    receive_count: int | None = None
    job_audio_s: float | None = None
    files_done: int = 0
    files_failed: int = 0
    audio_s_done: float = 0.0
    rss_mb: float | None = None
    memory_limit_mb: float | None = None  # the container's limit; None when only the machine's RAM bounds it
    last_beat: float = 0.0
    remote: bool = False  # works through the transfer bucket on another machine (`host`), seeing neither root
    models_unloaded: bool = False  # freed after FLEET_UNLOAD_IDLE_S without work; the next file loads them again
    # How this process's deliveries ended, by outcome ("transcribed": 3, "retry": 1 ...): the local run's summary.
    outcomes: dict[str, int] = Field(default_factory=dict)
    # What this worker does without, e.g. {"word timings (en)": "whisper cross-attention (no alignment model ...)"}.
    fallbacks: dict[str, str] = Field(default_factory=dict)


def worker_record_path(dest: Path, worker_id: str) -> Path:
    """Worker ids come from settings (hostnames, container ids): the file name is kept tame."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in worker_id).lstrip(".") or "worker"
    return workers_dir(dest) / f"{safe}.json"


def write_worker_record(path: Path, record: WorkerRecord) -> None:
    """Replace the record atomically, so a reader never sees half of it."""
    waiting = redact(record.waiting) if record.waiting else record.waiting  # "queue endpoint ... unreachable": a URL
    write_atomic(path, record.model_copy(update={"waiting": waiting}).model_dump_json())


def read_worker_records(dest: Path) -> list[WorkerRecord]:
    """Every readable worker record under `dest`, by file name; unreadable ones are skipped."""
    folder = workers_dir(dest)
    records = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            records.append(WorkerRecord.model_validate_json(path.read_bytes()))
        except (OSError, ValidationError):
            continue
    return records
