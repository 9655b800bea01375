"""A worker's peak memory on a 3-minute and on a 3-hour file, whole file in memory (before) and in pieces (issue 18).

Each row is a fresh process that loads the default pipeline (base, int8, word timings on) and runs one job
through `run_job`, as a worker does; its peak RSS (VmHWM) is read at the end. The 3-minute file is real
speech, as dense as a podcast's (JFK, pyannote's telephone call, the MIT licence read in English and German,
faster-whisper's hotwords clip, ... with 1 s pauses, over a quiet room's noise: 7 speech windows, about one
batch); the 3-hour file is that block 60 times over. "whole" decodes as the worker did before
(ffmpeg's whole output, two float32 copies, VAD and alignment over the whole file); "pieces" is the worker now
(a spool on disk, VAD and alignment 10 minutes at a time, one batch of windows' samples in memory).

Goal: pieces, 3 hours <= 1.3 x pieces, 3 minutes.

    .venv/bin/python -m bench.memory [--long-minutes 180] [--modes whole,pieces]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.runs import write_section
from tests.support.paths import REPO_ROOT

REAL_SPEECH = REPO_ROOT.parent / "shared" / "data" / "real-speech"
BLOCK_S = 180


def build_files(root: Path, long_minutes: int) -> tuple[Path, Path]:
    """The 3-minute block and the block repeated to `long_minutes` (flac, as a recorder or a rip would give)."""
    short, long = root / "block.flac", root / f"long-{long_minutes}min.flac"
    if not short.exists():
        jfk, call, licence, hotwords = (REAL_SPEECH / "jfk.flac", REAL_SPEECH / "diarization" / "sample.wav",
                                        REAL_SPEECH / "multilingual.mp3", REAL_SPEECH / "hotwords.mp3")  # fmt: skip
        clips = [jfk, call, licence, hotwords, jfk, call, jfk, hotwords, jfk]
        inputs = [arg for clip in clips for arg in ("-i", str(clip))]
        parts = "".join(f"[{i}:a]aresample=16000,aformat=channel_layouts=mono,apad=pad_dur=1[c{i}];" for i in range(len(clips)))
        joined = "".join(f"[c{i}]" for i in range(len(clips)))
        graph = (f"{parts}{joined}concat=n={len(clips)}:v=0:a=1[speech];"
                 f"anoisesrc=color=pink:amplitude=0.002:sample_rate=16000:duration={BLOCK_S}[room];"
                 "[speech][room]amix=inputs=2:duration=longest:normalize=0[out]")  # fmt: skip
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *inputs, "-filter_complex", graph, "-map", "[out]",
                        "-t", str(BLOCK_S), str(short)], check=True)  # fmt: skip
    if not long.exists():
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-stream_loop", str(long_minutes * 60 // BLOCK_S - 1),
                        "-i", str(short), "-c", "copy", str(long)], check=True)  # fmt: skip
    return short, long


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def whole_file_in_memory() -> None:
    """The worker as it was before pieces: ffmpeg's whole output in memory, VAD and alignment over all of it."""
    import numpy as np

    from worker.audio.samples import SAMPLE_RATE, ArrayAudio
    from worker.job import run as job_run
    from worker.speech import alignment, vad

    def decode(source, fingerprint, timeout_s, stream):
        command = ["ffmpeg", "-nostdin", "-loglevel", "error", "-threads", "0", "-i", str(source), "-map", "0:a:0",
                   "-f", "s16le", "-acodec", "pcm_s16le", "-ac", "1", "-ar", str(SAMPLE_RATE), "-"]  # fmt: skip
        output = subprocess.run(command, capture_output=True, check=True).stdout
        return ArrayAudio(np.frombuffer(output, np.int16).astype(np.float32) / 32768.0)

    job_run._decode = decode
    vad.VAD_PIECE_S = float("inf")
    alignment.ALIGN_PIECE_S = float("inf")


def child(mode: str, path: Path, dest: Path) -> None:
    """One job in this process; prints its figures as JSON."""
    from worker.threads import pin_native_threads, pin_torch_threads

    threads = os.cpu_count() or 2
    pin_native_threads(threads)
    from fleet.job.messages import SourceFingerprint, TranscriptionJob
    from fleet.settings import FleetSettings
    from worker.job.lease import Lease
    from worker.job.run import JobContext, run_job
    from worker.memory import current_rss_mb
    from worker.speech.pipeline import Pipeline

    pin_torch_threads(threads)
    settings = FleetSettings(source_dir=path.parent, dest_dir=dest, min_free_mb=0, whisper_language="en")
    pipeline = Pipeline(settings, threads)
    loaded_mb = current_rss_mb()
    if mode == "whole":
        whole_file_in_memory()
    info = path.stat()
    job = TranscriptionJob(path=path.name, output_base=path.stem, enqueued_at=time.time(), settings=settings.transcription(),
                           fingerprint=SourceFingerprint(size=info.st_size, mtime_ns=info.st_mtime_ns))  # fmt: skip
    started = time.perf_counter()
    result = run_job(job, JobContext(settings=settings, pipeline=pipeline, worker_id="bench"), Lease(), lambda *args: None)
    seconds = time.perf_counter() - started
    document = json.loads((dest / f"{path.stem}.json").read_text()) if result.outcome.value == "transcribed" else {}
    print(json.dumps({"outcome": result.outcome.value, "reason": result.reason, "loaded_mb": loaded_mb,
                      "peak_mb": peak_rss_mb(), "seconds": seconds, "audio_s": result.audio_s,
                      "segments": len(document.get("segments", []))}))  # fmt: skip


def measure(mode: str, path: Path, root: Path) -> dict:
    dest = Path(tempfile.mkdtemp(prefix=f"dest-{mode}-", dir=root))
    output = subprocess.run([sys.executable, "-m", "bench.memory", "--child", mode, str(path), str(dest)], cwd=REPO_ROOT,
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    figures = json.loads(output.strip().splitlines()[-1])
    if figures["outcome"] != "transcribed":
        raise SystemExit(f"{mode} {path.name}: {figures['outcome']}: {figures['reason']}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long-minutes", type=int, default=180)
    parser.add_argument("--modes", default="whole,pieces")
    parser.add_argument("--root", type=Path, default=Path("/tmp/fleet-bench-memory"))
    parser.add_argument("--child", nargs=3, metavar=("MODE", "FILE", "DEST"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return
    args.root.mkdir(parents=True, exist_ok=True)
    short, long = build_files(args.root, args.long_minutes)
    rows, peaks = [], {}
    long_label = f"{args.long_minutes // 60} h" if args.long_minutes % 60 == 0 else f"{args.long_minutes} min"
    for mode in args.modes.split(","):
        for label, path in (("3 min", short), (long_label, long)):
            f = measure(mode, path, args.root)
            peaks[mode, label] = f["peak_mb"]
            row = (f"| {mode} | {label} | {f['audio_s']:.0f} s | {f['segments']} | {f['loaded_mb']:.0f} MB | "
                   f"{f['peak_mb']:.0f} MB | {f['seconds']:.0f} s |")  # fmt: skip
            rows.append(row)
            print(row, flush=True)
    ratios = []
    for mode in args.modes.split(","):
        ratio = peaks[mode, long_label] / peaks[mode, "3 min"]
        goal = " (goal <= 1.3)" if mode == "pieces" else ""
        ratios.append(f"{mode}: peak {long_label} / peak 3 min = {ratio:.2f}{goal}")
    print("; ".join(ratios))
    table = ["| mode | file | audio | segments | RSS with models loaded | peak RSS | job time |", "|---|---|---|---|---|---|---|",
             *rows]  # fmt: skip
    write_section("memory", "Memory on long files (issue 18)",
                  "Default pipeline (base, int8, language given, word timings on), one job per fresh process; peak = VmHWM.",
                  "`.venv/bin/python -m bench.memory`", table, "; ".join(ratios) + ".")  # fmt: skip


if __name__ == "__main__":
    main()
