"""Director planning at scale: scan + done-check + plan for N source files (default 100,000).

Goal (issue 2): under 5 s with the tree in the page cache, under 300 MB of memory. The tree is
built once under --root (half of it with finished outputs, so the done-check reads real commit
records), then planned --runs times in fresh processes; the first run warms the page cache.

    .venv/bin/python bench/plan_scale.py [--files 100000] [--done 0.5] [--root /tmp/fleet-bench-plan]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from bench.synthetic_tree import build_tree
from fleet.settings import FleetSettings
from tests.support.paths import REPO_ROOT


def measure_once(source: Path, dest: Path) -> dict[str, float]:
    """One director plan, as `fleet director --dry-run` does it, minus the queue round trip."""
    from director.main import build_plan
    from director.plan import Action
    from director.scan import scan_sources

    settings = FleetSettings(source_dir=source, dest_dir=dest)
    started = time.perf_counter()
    scan = scan_sources(source, exclude=dest)
    scanned = time.perf_counter()
    plan = build_plan(settings, scan, None, 14 * 86400, time.time(), False)
    planned = time.perf_counter()
    counts = plan.counts()
    return {
        "files": len(scan.files),
        "done": counts[Action.DONE],
        "enqueue": counts[Action.ENQUEUE],
        "scan_s": scanned - started,
        "plan_s": planned - scanned,
        "total_s": planned - started,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--done", type=float, default=0.5, help="fraction of files with finished outputs")
    parser.add_argument("--root", type=Path, default=Path("/tmp/fleet-bench-plan"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure_once(*args.child)))
        return
    started = time.perf_counter()
    settings = FleetSettings()
    source, dest = build_tree(args.root / f"{args.files}-{args.done}", args.files, args.done, settings.transcription())
    print(f"tree: {args.files} files, {args.done:.0%} with outputs, ready in {time.perf_counter() - started:.1f} s")
    results = []
    for run in range(1, args.runs + 1):
        out = subprocess.run(
            [sys.executable, "-m", "bench.plan_scale", "--child", str(source), str(dest)], check=True, capture_output=True,
            text=True, cwd=REPO_ROOT,
        ).stdout
        result = json.loads(out)
        results.append(result)
        print(
            f"run {run}: {result['files']} files ({result['done']} done, {result['enqueue']} to enqueue): "
            f"scan {result['scan_s']:.2f} s + done-check/plan {result['plan_s']:.2f} s = {result['total_s']:.2f} s, "
            f"peak RSS {result['peak_rss_mb']:.0f} MB"
        )
    warm = sorted(r["total_s"] for r in results[1:] or results)
    rss = max(r["peak_rss_mb"] for r in results)
    median = warm[len(warm) // 2]
    verdict = "PASS" if median < 5 and rss < 300 else "MISS"
    print(
        f"plan_scale: {args.files} files, warm median {median:.2f} s (goal < 5 s), "
        f"peak RSS {rss:.0f} MB (goal < 300 MB): {verdict}"
    )


if __name__ == "__main__":
    main()
