"""Build (once, cached) a synthetic source tree, optionally with finished outputs for part of it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from fleet.job.identity import OUTPUT_FORMATS, TranscriptionSettings
from fleet.media.output_names import output_files, stem_base

FILES_PER_FOLDER = 100
EXTENSIONS = ("mp3", "wav", "m4a", "flac", "mp4")


def build_tree(root: Path, files: int, done_fraction: float, settings: TranscriptionSettings) -> tuple[Path, Path]:
    """source/ with `files` empty media files in folders of 100; dest/ with outputs for a fraction."""
    marker = root / f".complete-{files}-{done_fraction}-{settings.key()}"
    source, dest = root / "source", root / "dest"
    if marker.exists():
        return source, dest
    done_every = round(1 / done_fraction) if done_fraction else 0
    for i in range(files):
        rel = f"show-{i // FILES_PER_FOLDER:05d}/episode {i:06d}.{EXTENSIONS[i % len(EXTENSIONS)]}"
        path = source / rel
        if i % FILES_PER_FOLDER == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        if done_every and i % done_every == 0:
            _write_outputs(dest, rel, path.stat(), settings)
    marker.touch()
    return source, dest


def _write_outputs(dest: Path, rel: str, info: os.stat_result, settings: TranscriptionSettings) -> None:
    base = stem_base(rel)
    record = {
        "source": rel,
        "fingerprint": {"size": info.st_size, "mtime_ns": info.st_mtime_ns},
        "settings_key": settings.key(),
        "settings": settings.model_dump(),
    }
    (dest / base).parent.mkdir(parents=True, exist_ok=True)
    for out in output_files(base, OUTPUT_FORMATS):
        body = json.dumps({"fleet": record, "segments": [{"text": "x" * 2000}]}) if out.endswith(".json") else "x"
        (dest / out).write_text(body)
