"""Fleet overheads (issue 6): per-file cost of the queue loop with a no-op pipeline, and worker RSS
over 200 short files.

Goals: per-file overhead p50 < 30 ms, p95 < 100 ms (receive, heartbeat record, ack); RSS growth
under 10 % from file 20 to file 200. Starts its own host LocalStack.

    .venv/bin/python bench/overhead.py [--messages 300] [--files 200]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

from bench.enqueue_scale import start_localstack
from director.main import run_director
from fleet.settings import FleetSettings
from fleet.transport.sqs import SqsQueue
from tests.support.paths import REPO_ROOT

HOST_SCRIPT = REPO_ROOT / "localstack" / "host.sh"


def settings_for(endpoint: str, source: Path, dest: Path) -> FleetSettings:
    return FleetSettings(source_dir=source, dest_dir=dest, queue_name=f"bench-{uuid.uuid4().hex[:8]}",
                         aws_endpoint_url=endpoint, whisper_model="tiny.en", whisper_align=False)  # fmt: skip


def noop_overhead(endpoint: str, messages: int, root: Path) -> list[float]:
    """Seconds per message through the real loop (receive, state record, ack) with a no-op job."""
    import worker.queue_loop.loop as loop
    from worker.job.result import JobResult, Outcome
    from worker.queue_loop.shutdown import Shutdown

    source = root / "noop-source"
    source.mkdir(parents=True)
    for i in range(messages):
        (source / f"f{i:04d}.mp3").write_bytes(b"x")
    settings = settings_for(endpoint, source, root / "noop-dest")
    run_director(settings, out=io.StringIO())
    queue = SqsQueue.connect(settings.queue_endpoint(), settings.queue_spec())
    queue.lookup()
    finished: list[float] = []

    class TimedWorker(loop.Worker):
        def handle(self, message):
            super().handle(message)
            finished.append(time.perf_counter())

    ctx = SimpleNamespace(pipeline=SimpleNamespace(fallbacks={}), worker_id="bench", owner=None)  # no model loaded
    worker = TimedWorker(settings, queue, ctx=ctx, shutdown=Shutdown(), rss_mb=lambda: 0.0,
                         run_job=lambda job, ctx, lease, on_stage, on_decoded: JobResult(Outcome.TRANSCRIBED))  # no-op job
    worker.run(until_empty=True)
    return [b - a for a, b in zip(finished, finished[1:], strict=False)]


def rss_growth(endpoint: str, files: int, root: Path) -> tuple[float, float, int]:
    """(RSS MB after 20 files, RSS MB after the last, files done) of a real worker on short clips."""
    source = root / "short"
    source.mkdir(parents=True)
    for i in range(files):
        wav = source / f"clip {i:03d}.wav"
        subprocess.run(["espeak-ng", "-w", str(wav), f"This is clip number {i}."], check=True)
    settings = settings_for(endpoint, source, root / "short-dest")
    run_director(settings, out=io.StringIO())
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "FLEET_QUEUE_NAME": settings.queue_name,
           "FLEET_SOURCE_DIR": str(source), "FLEET_DEST_DIR": str(settings.dest_dir), "WHISPER_MODEL": "tiny.en",
           "WHISPER_ALIGN": "false", "HF_HUB_OFFLINE": "1", "FLEET_LOG_FORMAT": "json", "FLEET_WORKER_ID": "rss"}  # fmt: skip
    process = subprocess.Popen([sys.executable, "-m", "app.cli", "worker", "--until-empty"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    record = settings.dest_dir / ".fleet" / "workers" / "rss.json"
    samples: dict[int, float] = {}
    while process.poll() is None:
        try:
            done = json.loads(record.read_text())["files_done"]
            with open(f"/proc/{process.pid}/status") as status:
                rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024
            samples[done] = rss
        except (OSError, ValueError, KeyError, StopIteration):
            pass
        time.sleep(0.05)
    after_20 = samples[min(k for k in samples if k >= 20)]
    last = max(samples)
    return after_20, samples[last], last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--files", type=int, default=200)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="fleet-overhead-"))
    endpoint, env = start_localstack(root / "ls")
    try:
        intervals = sorted(noop_overhead(endpoint, args.messages, root))
        p50 = statistics.median(intervals) * 1000
        p95 = intervals[int(len(intervals) * 0.95)] * 1000
        verdict = "PASS" if p50 < 30 and p95 < 100 else "MISS"
        print(f"overhead: {len(intervals)} messages, per-file fleet overhead p50 {p50:.1f} ms, p95 {p95:.1f} ms "
              f"(goal < 30 / < 100 ms): {verdict}")  # fmt: skip
        early, late, done = rss_growth(endpoint, args.files, root)
        growth = (late / early - 1) * 100
        verdict = "PASS" if growth < 10 else "MISS"
        print(
            f"rss: worker RSS {early:.0f} MB after 20 files, {late:.0f} MB after {done}: {growth:+.1f} % "
            f"(goal < 10 %): {verdict}"
        )
    finally:
        subprocess.run([str(HOST_SCRIPT), "stop"], env=env, check=False)


if __name__ == "__main__":
    main()
