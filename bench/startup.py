"""What a short run costs beyond its files (issue 22): start-up and shut-down, side by side with bare transcription.

    (c') N resident processes doing bare batched transcription: base, language given, alignment off
         (their own start-up included: import whisperX, load the model, then the files)
    (g)  the fleet with its defaults: `./build.sh local --workers N` (LocalStack, director, N workers)

Both run on a few minutes of real speech (tests/data/real-speech and cuts of it), interleaved, `--repeats`
times each. Printed per fleet run, from its worker logs and outputs: command to the first `file started`,
to the first transcript on disk, the last `file finished` to the command's exit, and each worker's
start-up by phase (the `worker ready` log line). Writes the medians into BENCHMARKS.md.

    .venv/bin/python -m bench.startup [--workers N] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

from bench.corpus import duration_s
from bench.resident import run_resident
from bench.runs import bench_env, run_fleet_local, write_section
from tests.support.paths import REAL_SPEECH

# (name, source under tests/data/real-speech, start s, length s or None for the rest, spoken language)
CLIPS = [
    ("jfk.flac", "jfk.flac", 0, None, "en"),
    ("hotwords.mp3", "hotwords.mp3", 0, None, "en"),
    ("licence en+de.mp3", "multilingual.mp3", 0, None, "en"),
    ("licence en.m4a", "multilingual.mp3", 0, 31, "en"),
    ("licence de.ogg", "multilingual.mp3", 31, None, "de"),
    ("call.wav", "diarization/sample.wav", 0, None, "en"),
    ("call start.mp3", "diarization/sample.wav", 0, 16, "en"),
    ("call end.flac", "diarization/sample.wav", 14, None, "en"),
    ("jfk 8k.mp3", "jfk.flac", 0, None, "en"),
]


def build_real_corpus(root: Path, copies: int = 1) -> tuple[list[Path], float, dict[str, str]]:
    """(files, audio seconds, {path: language}): the real recordings, whole and cut, in several formats, `copies` times."""
    folder = root / f"real-x{copies}"
    folder.mkdir(parents=True, exist_ok=True)
    languages = {}
    for copy in range(copies):
        for name, source, start, length, language in CLIPS:
            target = folder / (name if copy == 0 else f"{copy} {name}")
            if not target.exists():
                cut = ["-ss", str(start)] + (["-t", str(length)] if length else [])
                rate = ["-ar", "8000"] if "8k" in name else []
                subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(REAL_SPEECH / source), *cut,
                                *rate, str(target)], check=True)  # fmt: skip
            languages[str(target)] = language
    files = sorted(Path(path) for path in languages)
    return files, sum(duration_s(path) for path in files), languages


def log_events(logs: Path) -> list[dict]:
    """Every JSON log line of the run's workers, with `at` (epoch seconds) and the worker's log name."""
    events = []
    for path in sorted(logs.glob("worker-*.log")):
        for line in path.read_text().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if not isinstance(event, dict) or "timestamp" not in event:
                continue
            event["at"] = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()
            event["log"] = path.stem
            events.append(event)
    return events


def fleet_run(corpus: Path, dest: Path, state: Path, workers: int) -> dict[str, float | dict]:
    """One `./build.sh local` run on its own LocalStack; its wall time and where the time went."""
    started = time.time()
    run_fleet_local(corpus, dest, workers, state, bench_env(), {})  # the defaults: no FLEET_/WHISPER_ setting
    ended = time.time()
    events = log_events(dest / ".fleet" / "logs")
    begun = [e["at"] for e in events if e["event"] == "file started"]
    finished = [e["at"] for e in events if e["event"] == "file finished"]
    transcripts = [path.stat().st_mtime for path in dest.rglob("*.json") if ".fleet" not in path.parts]
    phases: dict[str, list[float]] = defaultdict(list)
    ready_at = {}
    for event in events:
        if event["event"] == "worker ready":
            for phase, seconds in (event.get("startup_s") or {}).items():
                phases[phase].append(seconds)
            phases["command to ready"].append(event["at"] - started)
            ready_at[event["log"]] = event["at"]
    for log_name, at in ready_at.items():
        first = min((e["at"] for e in events if e["log"] == log_name and e["event"] == "file started"), default=None)
        if first is not None:
            phases["ready to first file started"].append(first - at)
    return {
        "wall": ended - started,
        "to first started": min(begun) - started,
        "to first transcript": min(transcripts) - started,
        "last finished to exit": ended - max(finished),
        "phases": {phase: statistics.mean(values) for phase, values in phases.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--copies", type=int, default=1, help="the corpus this many times (a longer run: throughput)")
    parser.add_argument("--root", type=Path, default=Path("/tmp/fleet-bench-startup"))
    args = parser.parse_args()
    cores = os.cpu_count() or 2
    threads = max(1, cores // args.workers)
    from worker.speech.models import bundled_model_dir

    work = Path(tempfile.mkdtemp(prefix="fleet-startup-"))
    model_dir = str(bundled_model_dir("base", work / "models"))
    files, audio_s, languages = build_real_corpus(args.root, args.copies)
    corpus = files[0].parent
    print(f"corpus: {len(files)} files of real speech, {audio_s:.0f} s; {args.workers} workers x {threads} threads")
    bare, bare_first, fleet = [], [], []
    for repeat in range(args.repeats):  # interleaved: the machine's mood hits both alike
        started = time.time()
        run_resident(files, model_dir, args.workers, threads, work / f"c{repeat}", languages=languages)
        bare.append(time.time() - started)
        bare_first.append(min(path.stat().st_mtime for path in (work / f"c{repeat}").glob("*.json")) - started)
        fleet.append(fleet_run(corpus, work / f"g{repeat}", work / f"ls{repeat}", args.workers))
        print(f"  run {repeat + 1}: bare {bare[-1]:.1f} s (first transcript {bare_first[-1]:.1f} s), "
              f"fleet {fleet[-1]['wall']:.1f} s "
              f"({fleet[-1]['wall'] / bare[-1]:.2f}x); first started {fleet[-1]['to first started']:.1f} s, "
              f"first transcript {fleet[-1]['to first transcript']:.1f} s, "
              f"last finished to exit {fleet[-1]['last finished to exit']:.1f} s", flush=True)  # fmt: skip
    if args.copies == 1:  # the short run is the one BENCHMARKS.md keeps; a longer one only prints
        report(bare, bare_first, fleet, audio_s, len(files), args.workers, threads)
    else:
        ratios = [f["wall"] / b for f, b in zip(fleet, bare, strict=True)]
        print(f"{len(files)} files, {audio_s:.0f} s: fleet/bare {listed(ratios, 2)} (median {statistics.median(ratios):.2f})")
    shutil.rmtree(work, ignore_errors=True)


def median(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def listed(values, digits: int = 1) -> str:
    return ", ".join(f"{value:.{digits}f}" for value in values)


def report(bare: list[float], bare_first: list[float], fleet: list[dict], audio_s: float, files: int, workers: int,
           threads: int) -> None:  # fmt: skip
    ratio = statistics.median(f["wall"] / b for f, b in zip(fleet, bare, strict=True))
    table = [
        "| measure | median | runs |", "|---|---|---|",
        f"| (c') {workers} resident processes x {threads} thread(s), bare transcription, language given: wall | "
        f"{statistics.median(bare):.1f} s | {listed(bare)} |",
        f"| (c') command to the first transcript | {statistics.median(bare_first):.1f} s | {listed(bare_first)} |",
        f"| (g) fleet defaults, `./build.sh local --workers {workers}`: wall | {median(fleet, 'wall'):.1f} s | "
        f"{listed(f['wall'] for f in fleet)} |",
    ]  # fmt: skip
    for key in ("to first started", "to first transcript", "last finished to exit"):
        table.append(f"| (g) command {key.replace('to ', 'to the ')} | {median(fleet, key):.1f} s | "
                     f"{listed(f[key] for f in fleet)} |")  # fmt: skip
    for phase in fleet[0]["phases"]:
        values = [f["phases"].get(phase, 0.0) for f in fleet]
        label = phase if " to " in phase else f"start-up phase: {phase}"
        table.append(f"| (g) worker {label} (mean of the workers) | {statistics.median(values):.2f} s | "
                     f"{listed(values, 2)} |")  # fmt: skip
    ratios = f"fleet/bare {ratio:.2f} (median of the runs' ratios; goal <= 1.15)"
    print("\n".join(table))
    print(ratios)
    write_section(
        "startup", "Start-up and shut-down of a short run (issue 22)",
        f"Corpus: {files} files of real speech (tests/data/real-speech, whole and cut), {audio_s:.0f} s of audio. "
        "Model base (bundled), int8, CPU; the fleet on its defaults (language detected, word timings).",
        "`.venv/bin/python -m bench.startup`", table, ratios,
    )  # fmt: skip


if __name__ == "__main__":
    main()
