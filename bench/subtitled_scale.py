"""A director round over a 10,000-video library in the media layout: skip-subtitled must not make rounds slow.

The tree: N real (tiny) mkv files in folders of 100, hard links to three originals (no subtitle, an
embedded English subtitle stream, a forced English one); every other video has a sidecar `.en.srt`. No
transcripts yet and WHISPER_LANGUAGE=en, so every round checks every video (the worst case). Side by side,
each in a fresh process: the mirror layout (no check), the media layout's first round (ffprobe per video
without a sidecar, cached by fingerprint) and its later rounds (the cache).

    .venv/bin/python -m bench.subtitled_scale [--files 10000] [--per-folder 100] [--against REV] [--root DIR]

One folder of 20,000 videos and 10,000 subtitles (a yt-dlp archive), before and after a change:
`--files 20000 --per-folder 20000 --rounds 3 --against REV`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support import speech
from tests.support.paths import REPO_ROOT

JFK = REPO_ROOT / "tests" / "data" / "real-speech" / "jfk.flac"


def build_library(root: Path, files: int, per_folder: int = 100) -> Path:
    """source/ with `files` videos (hard links to three real ones) and a sidecar beside every other one."""
    source = root / "source"
    marker = root / f".complete-{files}-{per_folder}"
    if marker.exists():
        return source
    shutil.rmtree(root, ignore_errors=True)
    originals = root / "originals"
    kinds = [speech.video(JFK, originals / "plain.mkv"), speech.video(JFK, originals / "embedded.mkv", ("eng", False)),
             speech.video(JFK, originals / "forced.mkv", ("eng", True))]  # fmt: skip
    for i in range(files):
        path = source / f"show-{i // per_folder:04d}" / f"episode {i:05d}.mkv"
        if i % per_folder == 0:
            path.parent.mkdir(parents=True)
        os.link(kinds[i % 3], path)
        if i % 2:
            path.with_suffix(".en.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nx\n")
    marker.touch()
    return source


def measure_once(source: Path, dest: Path, layout: str) -> dict[str, float]:
    """One director round as `fleet director --dry-run` plans it, minus the queue round trip."""
    from director.main import build_plan
    from director.plan import Action
    from director.scan import scan_sources
    from fleet.settings import FleetSettings

    settings = FleetSettings(source_dir=source, dest_dir=dest, layout=layout, whisper_language="en")
    started = time.perf_counter()
    plan = build_plan(settings, scan_sources(source, exclude=dest), None, 14 * 86400, time.time(), False)
    counts = plan.counts()
    return {"s": time.perf_counter() - started, "subtitled": counts[Action.SUBTITLED], "enqueue": counts[Action.ENQUEUE]}


def round_in_child(source: Path, dest: Path, layout: str, code: Path = REPO_ROOT) -> dict[str, float]:
    """One round in a fresh process, with the fleet's code from `code` (this checkout, or another revision's)."""
    command = [sys.executable, "-m", "bench.subtitled_scale", "--child", str(source), str(dest), layout]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True, cwd=code).stdout)


@contextmanager
def revision(rev: str | None) -> Iterator[Path | None]:
    """A worktree of `rev` (removed afterwards), for before/after in one run; None without one."""
    if rev is None:
        yield None
        return
    with tempfile.TemporaryDirectory() as scratch:
        tree = Path(scratch) / "before"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(tree), rev], check=True, cwd=REPO_ROOT)
        try:
            yield tree
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], check=True, cwd=REPO_ROOT)


def compare(source: Path, dest: Path, before: Path, rounds: int) -> None:
    """The media layout's later rounds with `before`'s code and this checkout's, interleaved."""
    old, new = [], []
    for _ in range(rounds):
        old.append(round_in_child(source, dest, "media", before)["s"])
        new.append(round_in_child(source, dest, "media")["s"])
    old_s, new_s = sorted(old)[len(old) // 2], sorted(new)[len(new) // 2]
    print(f"media layout, later rounds (median of {rounds}): before {old_s:.2f} s, after {new_s:.2f} s, "
          f"after/before {new_s / old_s:.3f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--root", type=Path, default=Path("/tmp/fleet-bench-subtitled"))
    parser.add_argument("--rounds", type=int, default=3, help="later (cached) rounds of each layout")
    parser.add_argument("--per-folder", type=int, default=100, help="videos per folder (20000 with --files 20000: one folder)")
    parser.add_argument("--against", metavar="REV", help="also time the media rounds with REV's code, side by side")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure_once(Path(args.child[0]), Path(args.child[1]), args.child[2])))
        return
    started = time.perf_counter()
    source = build_library(args.root / f"{args.files}-{args.per_folder}", args.files, args.per_folder)
    print(f"library: {args.files} videos, {args.per_folder} per folder, half with a sidecar, "
          f"ready in {time.perf_counter() - started:.1f} s")  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch, revision(args.against) as before:
        dest = Path(scratch) / "dest"
        round_in_child(source, dest, "mirror")  # warms the page cache for both
        first = round_in_child(source, dest, "media")
        print(f"media, first round: {first['s']:.2f} s ({first['subtitled']} subtitled, {first['enqueue']} to queue; "
              f"ffprobe for each video without a sidecar)")  # fmt: skip
        mirror, media = [], []
        for _ in range(args.rounds):  # interleaved: the machine's noise falls on both
            mirror.append(round_in_child(source, dest, "mirror")["s"])
            media.append(round_in_child(source, dest, "media")["s"])
        if before is not None:
            compare(source, dest, before, args.rounds)
    mirror_s, media_s = sorted(mirror)[len(mirror) // 2], sorted(media)[len(media) // 2]
    print(f"later rounds (median of {args.rounds}): mirror {mirror_s:.2f} s, media with skip-subtitled {media_s:.2f} s, "
          f"ratio {media_s / mirror_s:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
