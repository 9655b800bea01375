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
from fleet.layout import director_dir, fleet_dir
from fleet.settings import FleetSettings

EXIT_FAILED_FILES = 1
POLL_S = 0.5


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
    """Director once, then N draining workers with a fair share of threads each; returns the exit code."""
    console = Console(file=out, highlight=False, soft_wrap=True)
    started = time.monotonic()
    director_out = io.StringIO()
    code = run_director(settings, out=director_out)
    summary = director_out.getvalue().strip().splitlines()[-1]
    console.print(summary)
    if code != 0:
        return code
    counts = json.loads((director_dir(settings.dest_dir) / "last-plan.json").read_text())["counts"]
    queued = counts["enqueue"] + counts["already queued"]
    failed_before = counts["failed before"]
    if failed_before:
        console.print(f"{failed_before} file(s) failed in an earlier run: see {fleet_dir(settings.dest_dir) / 'failed'}")
    logs_dir = fleet_dir(settings.dest_dir) / "logs"
    logs_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "FLEET_SOURCE_DIR": str(settings.source_dir),
        "FLEET_DEST_DIR": str(settings.dest_dir),
        "FLEET_WORKERS": str(workers),
        "FLEET_LOG_FORMAT": "json",
    }
    paths = [logs_dir / f"worker-{i + 1}.log" for i in range(workers)]
    # Logs accumulate across runs; this run's summary reads only what is appended from now on.
    logs = WorkerLogs(paths, offsets={p: p.stat().st_size if p.exists() else 0 for p in paths})
    if queued == 0:
        console.print("local run: nothing to transcribe")
        return EXIT_FAILED_FILES if failed_before else 0
    processes = []
    for i, path in enumerate(paths):
        with open(path, "ab") as log_file:
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "fleet.cli", "worker", "--until-empty"],
                    env={**env, "FLEET_WORKER_ID": f"local-{i + 1}"},
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # Ctrl-C reaches them through us, once, not twice
                )
            )
    interrupted = _follow(processes, logs, queued, console)
    wall_s = time.monotonic() - started
    logs.poll()
    code = _report(logs, processes, wall_s, interrupted, paths, console)
    return code or (EXIT_FAILED_FILES if failed_before else 0)


def _follow(processes: list[subprocess.Popen], logs: WorkerLogs, queued: int, console: Console) -> bool:
    """Show progress until every worker exits; Ctrl-C asks them to stop gracefully (twice: at once)."""
    interrupted = False
    columns = (TextColumn("transcribing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task("files", total=max(queued, 1))
        while any(p.poll() is None for p in processes):
            try:
                time.sleep(POLL_S)
            except KeyboardInterrupt:
                signum = signal.SIGKILL if interrupted else signal.SIGTERM
                interrupted = True
                console.print("stopping: workers finish or hand back their current file ...")
                for process in processes:
                    if process.poll() is None:
                        process.send_signal(signum)
            logs.poll()
            progress.update(task, completed=sum(logs.outcomes().values()))
    return interrupted


def _report(logs: WorkerLogs, processes: list[subprocess.Popen], wall_s: float, interrupted: bool, paths: list[Path],
            console: Console) -> int:  # fmt: skip
    outcomes = logs.outcomes()
    last = {event["file"]: event for event in logs.finished}
    audio_s = sum(e.get("audio_s") or 0 for e in last.values() if e["outcome"] == "transcribed")
    failed = {f: e.get("reason") for f, e in last.items() if e["outcome"] in ("failed", "retry")}
    rtf = f"{audio_s / wall_s:.1f}x realtime" if wall_s and audio_s else "n/a"
    console.print(
        f"local run: {outcomes['transcribed']} transcribed, {len(failed)} failed, "
        f"{outcomes['already done']} already done, {outcomes['source gone']} gone; "
        f"{_duration(audio_s)} of audio in {_duration(wall_s)} ({rtf})"
    )
    for file, reason in sorted(failed.items()):
        console.print(f"  failed: {file}: {reason}")
    bad_exits = [p.returncode for p in processes if p.returncode not in (0, None)]
    if bad_exits or interrupted:
        console.print(f"workers exited with {bad_exits or 'a stop request'}; logs: {paths[0].parent}")
    if interrupted:
        return 130
    return EXIT_FAILED_FILES if failed or bad_exits else 0


def _duration(seconds: float) -> str:
    """1:02:03 style, the way people read audio lengths."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"
