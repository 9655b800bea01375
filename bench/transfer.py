"""Workers anywhere (issue 31): what the transfer bucket costs against local workers, and how full it gets.

Side by side in one run, on the same files, base model, 2 workers of 1 thread each, host LocalStack (SQS + S3):
  local   `fleet worker` with SOURCE_DIR and DEST_DIR
  remote  `fleet worker` with neither: audio staged by the watching director, outputs brought home through S3
Per file: the job's seconds in the worker (a remote job includes asking for, fetching and handing back);
the wall time from the workers' start to the last output in DEST_DIR. Rounds alternate local and remote.
Then the bucket's peak while a backlog of short files drains through remote workers (tiny.en).

    .venv/bin/python -m bench.transfer [--files 8] [--rounds 2] [--backlog 1000] [--write]   (--rounds 0: the backlog only)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import boto3

from bench.corpus import build_corpus
from bench.enqueue_scale import start_localstack
from bench.runs import write_section
from tests.support.paths import HOST_SCRIPT

WORKERS = 2
BUCKET = "fleet-bench-transfer"


def fleet(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    handle = open(log, "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([sys.executable, "-m", "app.cli", *args], env=env, stdout=handle, stderr=subprocess.STDOUT)


def events(log: Path, name: str) -> list[dict]:
    found = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("event") == name:
                found.append(entry)
    return found


def base_env(endpoint: str, model: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("FLEET_", "WHISPER_", "AWS_ENDPOINT"))}
    return {**clean, "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
            "FLEET_QUEUE_NAME": f"bench-{uuid.uuid4().hex[:8]}", "FLEET_LOG_FORMAT": "json", "FLEET_MIN_AGE_S": "0",
            "FLEET_WORKERS": str(WORKERS), "FLEET_RECEIVE_WAIT_S": "1", "WHISPER_MODEL": model, "HF_HUB_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1"}  # fmt: skip


def outputs_home(dest: Path, count: int) -> bool:
    return len([p for p in dest.rglob("*.json") if ".fleet" not in p.parts]) >= count


def drain(corpus: Path, root: Path, endpoint: str, model: str, remote: bool, files: int) -> dict[str, object]:
    """One drain of `corpus` by WORKERS workers; per-file job seconds and the wall time until all outputs are home."""
    dest = root / f"dest-{uuid.uuid4().hex[:6]}"
    dest.mkdir()
    env = {**base_env(endpoint, model), "FLEET_SOURCE_DIR": str(corpus), "FLEET_DEST_DIR": str(dest)}
    home = None
    if remote:
        env["FLEET_TRANSFER_BUCKET"] = f"s3://{BUCKET}/{env['FLEET_QUEUE_NAME']}"
        home = fleet(["director", "--watch", "3600"], env, root / "home.log")
        while not events(root / "home.log", "director run finished"):
            time.sleep(0.1)
        worker_env = {k: v for k, v in env.items() if k not in ("FLEET_SOURCE_DIR", "FLEET_DEST_DIR")}
    else:
        subprocess.run([sys.executable, "-m", "app.cli", "director"], env=env, check=True, stdout=subprocess.DEVNULL)
        worker_env = env
    started = time.perf_counter()
    logs = [root / f"{'remote' if remote else 'local'}-{i}.log" for i in range(WORKERS)]
    workers = [fleet(["worker", "--until-empty"], worker_env, log) for log in logs]
    for worker in workers:
        worker.wait()
    while not outputs_home(dest, files):
        time.sleep(0.02)
    wall = time.perf_counter() - started
    if home is not None:
        home.terminate()
        home.wait()
    finished = [e for log in logs for e in events(log, "file finished") if e["outcome"] == "transcribed"]
    assert len(finished) == files, f"{len(finished)} of {files} transcribed"
    shutil.rmtree(dest)
    return {"job_s": {e["file"]: e["elapsed_s"] for e in finished}, "wall_s": wall}


class BucketWatch:
    """Samples the bucket's job objects (not status records) every 0.2 s: the most objects and bytes seen."""

    def __init__(self, endpoint: str) -> None:
        self.s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="t",
                               aws_secret_access_key="t")  # fmt: skip
        self.peak_objects = self.peak_bytes = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self.stop.wait(0.2):
            try:
                pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
                items = [o for page in pages for o in page.get("Contents", []) if "/workers/" not in o["Key"]]
            except Exception:  # noqa: BLE001 - the bucket is created by the home side a moment after the start
                continue
            self.peak_objects = max(self.peak_objects, len(items))
            self.peak_bytes = max(self.peak_bytes, sum(o["Size"] for o in items))


def backlog_peak(root: Path, endpoint: str, count: int) -> dict[str, float]:
    """A backlog of `count` short files drained by remote workers: the bucket's peak while it drains."""
    source = root / "backlog"
    source.mkdir()
    sample = root / "sample.wav"
    subprocess.run(["espeak-ng", "-s", "170", "-w", str(sample), "Hello from the backlog."], check=True)
    for i in range(count):
        shutil.copy(sample, source / f"clip {i:04d}.wav")
    watch = BucketWatch(endpoint)
    watch.thread.start()
    started = time.perf_counter()
    drain(source, root, endpoint, "tiny.en", remote=True, files=count)
    seconds = time.perf_counter() - started
    watch.stop.set()
    watch.thread.join()
    return {"files": count, "seconds": seconds, "peak_objects": watch.peak_objects, "peak_kb": watch.peak_bytes / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--backlog", type=int, default=1000)
    parser.add_argument("--write", action="store_true", help="write the figures into BENCHMARKS.md")
    args = parser.parse_args()
    corpus, audio_s = build_corpus(Path("/tmp/fleet-bench-transfer-corpus"), files=args.files)
    root = Path(tempfile.mkdtemp(prefix="fleet-bench-transfer-"))
    endpoint, ls_env = start_localstack(root / "localstack")
    try:
        runs: dict[str, list[dict]] = {"local": [], "remote": []}
        for round_no in range(args.rounds):
            for kind in ("local", "remote") if round_no % 2 == 0 else ("remote", "local"):
                result = drain(corpus, root, endpoint, "base", kind == "remote", args.files)
                runs[kind].append(result)
                print(f"round {round_no + 1} {kind}: wall {result['wall_s']:.1f} s, "
                      f"job seconds {sum(result['job_s'].values()):.1f}", flush=True)  # fmt: skip
        if not args.rounds:  # --rounds 0: only the backlog
            backlog = backlog_peak(root, endpoint, args.backlog)
            print(f"backlog of {backlog['files']} files drained by {WORKERS} remote workers in {backlog['seconds']:.0f} s: "
                  f"bucket peak {backlog['peak_objects']} objects, {backlog['peak_kb']:.0f} KB")  # fmt: skip
            return
        job = {kind: statistics.median(sum(r["job_s"].values()) for r in rs) for kind, rs in runs.items()}
        wall = {kind: statistics.median(r["wall_s"] for r in rs) for kind, rs in runs.items()}
        per_file_s = (job["remote"] - job["local"]) / args.files
        per_hour_s = (job["remote"] - job["local"]) / (audio_s / 3600)
        print(f"{args.files} files, {audio_s / 60:.1f} min of audio, {WORKERS} workers, base model")
        print(f"job seconds: local {job['local']:.1f}, remote {job['remote']:.1f} (x{job['remote'] / job['local']:.3f}); "
              f"transfer {per_file_s:.2f} s per file, {per_hour_s:.0f} s per audio hour")  # fmt: skip
        print(f"wall to the last output at home: local {wall['local']:.1f} s, remote {wall['remote']:.1f} s "
              f"(x{wall['remote'] / wall['local']:.3f})")  # fmt: skip
        backlog = backlog_peak(root, endpoint, args.backlog) if args.backlog else None
        if backlog:
            print(f"backlog of {backlog['files']} files drained by {WORKERS} remote workers in {backlog['seconds']:.0f} s: "
                  f"bucket peak {backlog['peak_objects']} objects, {backlog['peak_kb']:.0f} KB")  # fmt: skip
        if args.write:
            table = [
                "| | local workers | remote workers (through the bucket) |",
                "|---|---|---|",
                f"| job seconds, {args.files} files ({audio_s / 60:.1f} min audio) | {job['local']:.1f} | {job['remote']:.1f} |",
                f"| wall to the last output in DEST_DIR | {wall['local']:.1f} s | {wall['remote']:.1f} s |",
            ]
            if backlog:
                table.append(f"| bucket peak while {backlog['files']} short files drain | | {backlog['peak_objects']} objects, "
                             f"{backlog['peak_kb']:.0f} KB |")  # fmt: skip
            write_section(
                "transfer", "Workers anywhere: the transfer bucket's cost (issue 31)",
                f"Base model, {WORKERS} workers x 1 thread, host LocalStack SQS + S3, median of {args.rounds} "
                "alternating rounds.",
                "`.venv/bin/python -m bench.transfer --write`", table,
                f"remote/local job seconds x{job['remote'] / job['local']:.3f} ({per_file_s:.2f} s per file, "
                f"{per_hour_s:.0f} s per audio hour); wall x{wall['remote'] / wall['local']:.3f}",
            )  # fmt: skip
    finally:
        subprocess.run([str(HOST_SCRIPT), "stop"], env=ls_env, check=False)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
