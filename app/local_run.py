"""`fleet local`: the whole fleet on one machine without Docker: director, N workers, progress, summary."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from director.main import run_director
from fleet import exits
from fleet.layout import fleet_dir, last_plan_path
from fleet.queue import JobQueue, QueueUnavailable
from fleet.settings import FleetSettings

POLL_S = 0.5
QUEUE_START_TIMEOUT_S = 90
LOCAL_RECEIVE_WAIT_S = 2  # seconds; the long poll of the workers a local run starts


@dataclass
class WorkerLogs:
    """Reads the JSON log lines the workers append, a little more each poll."""

    paths: list[Path]
    offsets: dict[Path, int] = field(default_factory=dict)
    finished: list[dict] = field(default_factory=list)

    def poll(self) -> None:
        for path in self.paths:
            try:
                with open(path, "rb") as handle:
                    handle.seek(self.offsets.get(path, 0))
                    chunk = handle.read()
            except FileNotFoundError:
                continue
            complete = chunk[: chunk.rfind(b"\n") + 1]
            self.offsets[path] = self.offsets.get(path, 0) + len(complete)
            for line in complete.splitlines():
                if line.startswith(b"{"):
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue
                    if event.get("event") == "file finished":
                        self.finished.append(event)

    def outcomes(self) -> Counter[str]:
        """Final outcome per file (a retried file counts once, by its last outcome)."""
        last = {event["file"]: event["outcome"] for event in self.finished}
        return Counter(last.values())


def run_local(settings: FleetSettings, workers: int, out: TextIO = sys.stdout) -> int:
    """N workers and the director at once, until the queue is drained; returns the exit code."""
    console = Console(file=out, highlight=False, soft_wrap=True)
    started = time.monotonic()
    logs_dir = fleet_dir(settings.dest_dir) / "logs"
    logs_dir.mkdir(parents=True, exist_ok=True)
    paths = [logs_dir / f"worker-{i + 1}.log" for i in range(workers)]
    # Logs accumulate across runs; this run's summary reads only what is appended from now on.
    logs = WorkerLogs(paths, offsets={p: p.stat().st_size if p.exists() else 0 for p in paths})
    # Workers load their models (the slow part of starting) while the director scans and enqueues.
    processes = _start_workers(settings, workers, paths)
    try:
        _wait_for_queue_endpoint(settings)
        director_out = io.StringIO()
        code = run_director(settings, out=director_out)
    except BaseException:
        _signal_all(processes, signal.SIGKILL)
        raise
    console.print(director_out.getvalue().strip().splitlines()[-1])
    counts = json.loads(last_plan_path(settings.dest_dir).read_text())["counts"] if code == 0 else {}
    queued = counts.get("enqueue", 0) + counts.get("already queued", 0)
    failed_before = counts.get("failed before", 0)
    if failed_before:
        console.print(f"{failed_before} file(s) failed in an earlier run: see {fleet_dir(settings.dest_dir) / 'failed'}")
    if code != 0 or queued == 0:
        _signal_all(processes, signal.SIGTERM)
        for process in processes:
            process.wait()
        if code == 0:
            console.print("local run: nothing to transcribe")
        return code or (exits.FAILED_FILES if failed_before else 0)
    queue = JobQueue.connect(settings, settings.queue_spec())
    queue.lookup()
    interrupted = _follow(processes, logs, queued, console, queue)
    wall_s = time.monotonic() - started
    logs.poll()
    code = _report(logs, processes, wall_s, interrupted, paths, console)
    return code or (exits.FAILED_FILES if failed_before else 0)


def _start_workers(settings: FleetSettings, workers: int, paths: list[Path]) -> list[subprocess.Popen]:
    env = {
        **os.environ,
        "FLEET_SOURCE_DIR": str(settings.source_dir),
        "FLEET_DEST_DIR": str(settings.dest_dir),
        "FLEET_WORKERS": str(workers),
        "FLEET_LOG_FORMAT": "json",
        # An idle worker finishes its long poll before it stops (a message arriving meanwhile is handed back,
        # not lost); this run stops its workers once the queue is drained, so a short poll ends it in seconds
        # where the default 20 s added 20 s to every run.
        "FLEET_RECEIVE_WAIT_S": os.environ.get("FLEET_RECEIVE_WAIT_S", str(LOCAL_RECEIVE_WAIT_S)),
    }
    processes = []
    for i, path in enumerate(paths):
        with open(path, "ab") as log_file:
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "app.cli", "worker"],
                    env={**env, "FLEET_WORKER_ID": f"local-{i + 1}"},
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # Ctrl-C reaches them through us, once, not twice
                )
            )
    return processes


def _wait_for_queue_endpoint(settings: FleetSettings) -> None:
    """LocalStack may still be starting (build.sh starts it alongside us): wait until it answers."""
    probe = JobQueue.connect(settings.model_copy(update={"queue_max_attempts": 1}), settings.queue_spec())
    deadline = time.monotonic() + QUEUE_START_TIMEOUT_S
    while True:
        try:
            probe.lookup()
            return
        except QueueUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _signal_all(processes: list[subprocess.Popen], signum: int) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signum)


def _follow(processes: list[subprocess.Popen], logs: WorkerLogs, queued: int, console: Console, queue: JobQueue) -> bool:
    """Progress until the queue is drained (then the idle workers are stopped); Ctrl-C stops them early."""
    interrupted = stopping = False
    empty_polls = 0
    columns = (TextColumn("transcribing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task("files", total=queued)
        while any(p.poll() is None for p in processes):
            try:
                time.sleep(POLL_S)
            except KeyboardInterrupt:
                interrupted = True
                console.print("stopping: workers finish or hand back their current file ...")
                _signal_all(processes, signal.SIGKILL if stopping else signal.SIGTERM)
                stopping = True
            logs.poll()
            progress.update(task, completed=sum(logs.outcomes().values()))
            # Two empty polls in a row: nothing waiting, nothing in flight, nothing coming back.
            empty_polls = empty_polls + 1 if not stopping and queue.drained() else 0
            if empty_polls >= 2:
                _signal_all(processes, signal.SIGTERM)  # idle workers stop at once
                stopping = True
    return interrupted


def _report(logs: WorkerLogs, processes: list[subprocess.Popen], wall_s: float, interrupted: bool, paths: list[Path],
            console: Console) -> int:  # fmt: skip
    outcomes = logs.outcomes()
    last = {event["file"]: event for event in logs.finished}
    audio_s = sum(e.get("audio_s") or 0 for e in last.values() if e["outcome"] == "transcribed")
    failed = {f: e.get("reason") for f, e in last.items() if e["outcome"] in ("failed", "retry")}
    rtf = f"{audio_s / wall_s:.1f}x realtime" if wall_s and audio_s else "n/a"
    rendered = f"{outcomes['re-rendered']} re-rendered from their json, " if outcomes["re-rendered"] else ""
    console.print(
        f"local run: {outcomes['transcribed']} transcribed, {rendered}{len(failed)} failed, "
        f"{outcomes['already done']} already done, {outcomes['source gone']} gone; "
        f"{_duration(audio_s)} of audio in {_duration(wall_s)} ({rtf})"
    )
    for file, reason in sorted(failed.items()):
        console.print(f"  failed: {file}: {reason}")
    bad_exits = [p.returncode for p in processes if p.returncode not in (0, None)]
    if bad_exits or interrupted:
        console.print(f"workers exited with {bad_exits or 'a stop request'}; logs: {paths[0].parent}")
    if interrupted:
        return exits.INTERRUPTED
    return exits.FAILED_FILES if failed or bad_exits else 0


def _duration(seconds: float) -> str:
    """1:02:03 style, the way people read audio lengths."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"
