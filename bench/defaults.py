"""The fleet on its defaults against bare transcription, side by side on real speech in eight languages (issue 12).

    (b') `whisperx f1 ... fN` in one call: base, language detected, alignment off
    (c') N resident processes doing bare batched transcription: base, language given, alignment off
    (g)  the fleet with its defaults: base, language detected, word timings on, no wav2vec2 model
         reachable (this machine has no hub), `./build.sh local`

Prints a table, the ratios (goal: g/c' <= 1.25, b'/g > 1), word error rates per way against the
references, the fleet's detected languages and per-stage seconds (from the commit records), and
writes them into BENCHMARKS.md. `--keep DIR` keeps the fleet's transcripts to compare runs.

    .venv/bin/python bench/defaults.py [--workers N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

from bench.corpus import build_languages_corpus
from bench.resident import run_resident
from bench.runs import bench_env, run_fleet_local, run_quiet, timed, whisperx_cli, write_section
from tests.support.paths import REPO_ROOT


def normalise(text: str) -> str:
    return " ".join("".join(c for c in text.lower() if c.isalnum() or c.isspace() or c == "'").split())


def word_error_rate(out_dir: Path, references: dict[str, str]) -> float:
    """WER over all referenced files together (words in error / reference words), from the txt outputs."""
    import jiwer

    names = sorted(references)
    truth = [normalise(references[name]) for name in names]
    heard = []
    for name in names:
        found = list(out_dir.rglob(f"{Path(name).stem}.txt"))
        heard.append(normalise(found[0].read_text()) if found else "")
    return jiwer.wer(truth, heard)


def fleet_records(dest: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text())["fleet"] for p in dest.glob("*.json")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--root", type=Path, default=Path("/tmp/fleet-bench-languages"))
    parser.add_argument("--keep", type=Path, help="copy the fleet's outputs here")
    args = parser.parse_args()
    cores = os.cpu_count() or 2
    threads = max(1, cores // args.workers)
    from worker.speech.models import bundled_model_dir

    work = Path(tempfile.mkdtemp(prefix="fleet-defaults-"))
    model_dir = str(bundled_model_dir("base", work / "models"))
    corpus, audio_s, manifest = build_languages_corpus(args.root, REPO_ROOT / "tests" / "data" / "real-speech")
    files = sorted(corpus / name for name in manifest)
    languages = {str(corpus / name): language for name, (language, _) in manifest.items()}
    references = {name: text for name, (_, text) in manifest.items() if text}
    print(f"corpus: {len(files)} files, {audio_s:.0f} s of audio, {len(set(languages.values()))} languages; "
          f"{args.workers} workers x {threads} threads, {cores} cores")  # fmt: skip
    offline = bench_env(HF_HUB_OFFLINE="1")
    seconds = {
        "one_call": timed("(b') whisperx, all files in one call, language detected, no alignment", lambda: run_quiet(
            [*whisperx_cli(model_dir, cores, "--no_align", "--output_dir", str(work / "b")), *map(str, files)], offline)),
        "bare": timed("(c') resident processes, bare transcription, language given", lambda: run_resident(
            files, model_dir, args.workers, threads, work / "c", languages=languages)),
        # No HF_HUB_OFFLINE: the fleet finds out by itself that no hub answers, as on a user's offline server.
        "fleet": timed("(g) fleet defaults: ./build.sh local", lambda: run_fleet_local(
            corpus, work / "g", args.workers, work / "ls-g", bench_env(), {"WHISPER_MODEL": "base"})),
    }  # fmt: skip
    wer = {key: word_error_rate(work / folder, references) for key, folder in (("one_call", "b"), ("bare", "c"), ("fleet", "g"))}
    records = fleet_records(work / "g")
    right = sum(records[Path(name).stem]["language"] == language for name, (language, _) in manifest.items())
    stages: Counter[str] = Counter()
    for record in records.values():
        stages.update(record["stage_s"])
    if args.keep:
        shutil.copytree(work / "g", args.keep, dirs_exist_ok=True)
    report(seconds, wer, right, len(manifest), stages, audio_s, args.workers, threads, cores)
    shutil.rmtree(work, ignore_errors=True)


def report(seconds: dict[str, float], wer: dict[str, float], right: int, files: int, stages: Counter[str], audio_s: float,
           workers: int, threads: int, cores: int) -> None:  # fmt: skip
    rows = [
        ("(b') `whisperx f1 ... fN` in one call, language detected, `--no_align`", "one_call"),
        (f"(c') {workers} resident processes x {threads} thread(s), bare batched transcription, language given", "bare"),
        (f"(g) fleet defaults: `./build.sh local --workers {workers}` (language detected, word timings)", "fleet"),
    ]
    table = ["| way of running | wall | audio / wall | WER |", "|---|---|---|---|"]
    for label, key in rows:
        table.append(f"| {label} | {seconds[key]:.1f} s | {audio_s / seconds[key]:.1f}x | {wer[key]:.3f} |")
    ratios = (f"fleet/bare {seconds['fleet'] / seconds['bare']:.2f} (goal <= 1.25), "
              f"one_call/fleet {seconds['one_call'] / seconds['fleet']:.2f} (goal > 1)")  # fmt: skip
    stage_line = ", ".join(f"{stage} {value:.1f} s" for stage, value in sorted(stages.items()))
    detail = f"Fleet languages right: {right} of {files}. Fleet stage seconds, all files: {stage_line}."
    print("\n".join(table))
    print(ratios)
    print(detail)
    write_section(
        "defaults", "The defaults at the speed of bare transcription (issue 12)",
        f"Corpus: tests/data/real-speech plus espeak-ng stories in seven languages, {files} files, {audio_s:.0f} s of "
        "audio. Model base (bundled), int8, CPU. WER over the files with a full reference (espeak-ng texts, jfk.flac).",
        "`.venv/bin/python bench/defaults.py` (part of `./build.sh bench`)", table, f"{ratios}. {detail}",
    )  # fmt: skip

if __name__ == "__main__":
    main()
