"""`fleet local`: the whole fleet on one machine without Docker: director, N workers, progress, summary."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from app.run_records import RunRecords
from director.main import finish_round, run_director
from fleet.job.messages import TranscriptionJob
from fleet.job.outcome import Outcome
from fleet.process import exits
from fleet.settings import FleetSettings
from fleet.state.paths import fleet_dir
from fleet.transport.objects import ObjectStoreError
from fleet.transport.queue import JobQueue, QueueUnavailable
from fleet.transport.sqs import SqsQueue

POLL_S = 0.5  # seconds between looks at the progress and the queue
EXIT_POLL_S = 0.05  # seconds between looks at whether the workers have exited: the run ends right after them
QUEUE_START_TIMEOUT_S = 90
LOCAL_RECEIVE_WAIT_S = 2  # seconds; the long poll of the workers a local run starts
def local_console(out: TextIO) -> Console:
    """The local run's output: file names are text, never rich markup (`[/x] take.mp3` is a legal name)."""
    return Console(file=out, highlight=False, soft_wrap=True, markup=False)


def run_local(settings: FleetSettings, workers: int, out: TextIO = sys.stdout) -> int:
    """N workers and the director at once, until the queue is drained; returns the exit code."""
    console = local_console(out)
    started, started_at = time.monotonic(), time.time()
    logs_dir = fleet_dir(settings.dest_dir) / "logs"
    logs_dir.mkdir(parents=True, exist_ok=True)
    paths = [logs_dir / f"worker-{i + 1}.log" for i in range(workers)]
    # Workers load their models (the slow part of starting) while the director scans and enqueues.
    processes = _start_workers(settings, workers, paths)
    records = RunRecords(settings.dest_dir, {process.pid for process in processes}, started_at)
    outstanding: list[TranscriptionJob] = []
    try:
        # The scan runs while LocalStack starts; the director waits for the queue only when it needs it.
        run = run_director(settings, out=out, before_queue=lambda: _wait_for_queue_endpoint(settings),
                           on_outstanding=outstanding.extend)  # fmt: skip
    except BaseException:
        _signal_all(processes, signal.SIGKILL)
        raise
    code, counts = run.exit_code, run.summary.counts
    # A bad folder settings file skips its own folder only: the others were queued and are transcribed.
    planned = code == 0 or (code == exits.BAD_INPUT and bool(run.setting_errors))
    queued = counts.queued if planned else 0
    if counts.failed_before:
        console.print(f"{counts.failed_before} file(s) failed in an earlier run: see {fleet_dir(settings.dest_dir) / 'failed'}")
    if not planned or queued == 0:
        _signal_all(processes, signal.SIGTERM)
        for process in processes:
            process.wait()
        if planned:
            console.print("local run: nothing to transcribe")
        return code if not planned else run_exit_code(0, run.setting_errors, counts.failed_before)
    queue = SqsQueue.connect(settings.queue_endpoint(), settings.queue_spec())
    queue.lookup()
    with serving_remote_workers(settings, records, outstanding, console) as transfer_queue:
        interrupted = _follow(processes, records, queued, console, queue, transfer_queue)
    code = _report(records, processes, time.monotonic() - started, interrupted, logs_dir, console)
    if not interrupted:
        finish_round(settings)  # "12 new transcripts, 1 failed" to FLEET_NOTIFY_URLS
    return run_exit_code(code, run.setting_errors, counts.failed_before)


def run_exit_code(report_code: int, setting_errors: tuple[str, ...], failed_before: int) -> int:
    """Interrupted first, then folders that could not be planned (2), then files that failed now or before (1)."""
    if report_code == exits.INTERRUPTED:
        return report_code
    if setting_errors:
        return exits.BAD_INPUT
    return report_code or (exits.FAILED_FILES if failed_before else exits.OK)


@contextmanager
def serving_remote_workers(settings: FleetSettings, records: RunRecords, outstanding: list[TranscriptionJob],
                           console: Console) -> Iterator[JobQueue | None]:  # fmt: skip
    """With FLEET_TRANSFER_BUCKET, the home side for the run (as `fleet director --watch` runs it): yields the
    transfer queue, whose draining ends the run once the job queue is drained too. Without it, nothing (None)."""
    if settings.transfer_bucket is None:
        yield None
        return
    from director.transfer.home import connect_home_transfer, start_home_transfer

    home = connect_home_transfer(settings)
    try:
        home.copy_worker_records()  # remote workers' totals as they are now, so only this run's files count
    except (ObjectStoreError, OSError):
        pass  # the bucket is new or away: the records at home are the best there is
    records.note_remote_workers()
    home.offer(outstanding)
    stop = threading.Event()
    threads = start_home_transfer(home, stop)
    console.print(f"serving remote workers through {settings.transfer_bucket} ({len(records.pids)} local worker(s))")
    try:
        yield home.queue
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        home.close()


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
    probe = SqsQueue.connect(replace(settings.queue_endpoint(), max_attempts=1), settings.queue_spec())
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


def _follow(processes: list[subprocess.Popen], records: RunRecords, queued: int, console: Console, queue: JobQueue,
            transfer_queue: JobQueue | None = None) -> bool:  # fmt: skip
    """Progress until the workers have drained the queue and exited, and remote workers' results are home;
    Ctrl-C stops them early."""
    interrupted = stopping = False
    empty_polls = 0
    draining: set[int] = set()
    columns = (TextColumn("transcribing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task("files", total=queued)
        next_look = time.monotonic()
        while any(p.poll() is None for p in processes) or (transfer_queue is not None and not interrupted and empty_polls < 2):
            try:
                time.sleep(EXIT_POLL_S)
            except KeyboardInterrupt:
                interrupted = True
                console.print("stopping: workers finish or hand back their current file ...")
                _signal_all(processes, signal.SIGKILL if stopping else signal.SIGTERM)
                stopping = True
            if time.monotonic() < next_look:
                continue
            next_look = time.monotonic() + POLL_S
            progress.update(task, completed=records.settled())
            if not stopping:
                _ask_to_drain(processes, records, draining)
            # Two empty polls in a row: nothing waiting, nothing in flight, nothing coming back. The backstop,
            # should a worker not drain by itself; with remote workers, also the end of the run. The job queue
            # is asked first: a remote worker sends its result before it deletes its job.
            settled = queue.drained() and (transfer_queue is None or transfer_queue.drained())
            empty_polls = empty_polls + 1 if not interrupted and settled else 0
            if empty_polls >= 2 and not stopping:
                _signal_all(processes, signal.SIGTERM)  # idle workers stop after their poll
                stopping = True
    return interrupted


def _ask_to_drain(processes: list[subprocess.Popen], records: RunRecords, asked: set[int]) -> None:
    """Everything is queued: each worker takes files until the queue is drained, then exits by itself.

    Only a worker that has written its record is asked: it has its signal handlers by then (before
    that, SIGUSR1 would kill it).
    """
    started = {record.pid for record in records.workers()}
    for process in processes:
        if process.pid in started and process.pid not in asked and process.poll() is None:
            process.send_signal(signal.SIGUSR1)
            asked.add(process.pid)


def _report(records: RunRecords, processes: list[subprocess.Popen], wall_s: float, interrupted: bool, logs_dir: Path,
            console: Console) -> int:  # fmt: skip
    outcomes, failed = records.outcomes(), records.failures()
    audio_s = records.audio_s_done()
    rtf = f"{audio_s / wall_s:.1f}x realtime" if wall_s and audio_s else "n/a"
    rendered = f"{outcomes[Outcome.RENDERED]} re-rendered from their json, " if outcomes[Outcome.RENDERED] else ""
    subtitled = f"{outcomes[Outcome.SUBTITLED]} subtitled already, " if outcomes[Outcome.SUBTITLED] else ""
    by_remote = records.by_remote_workers()
    remote = f" ({by_remote} by remote workers)" if by_remote else ""
    console.print(
        f"local run: {outcomes[Outcome.TRANSCRIBED]} transcribed{remote}, {rendered}{subtitled}{len(failed)} failed, "
        f"{outcomes[Outcome.ALREADY_DONE]} already done, {outcomes[Outcome.SOURCE_GONE]} gone; "
        f"{_duration(audio_s)} of audio in {_duration(wall_s)} ({rtf})"
    )
    for file, reason in sorted(failed.items()):
        console.print(f"  failed: {file}: {reason}")
    bad_exits = [p.returncode for p in processes if p.returncode not in (0, None)]
    if bad_exits or interrupted:
        console.print(f"workers exited with {bad_exits or 'a stop request'}; logs: {logs_dir}")
    if interrupted:
        return exits.INTERRUPTED
    return exits.FAILED_FILES if failed or bad_exits else 0


def _duration(seconds: float) -> str:
    """1:02:03 style, the way people read audio lengths."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"
