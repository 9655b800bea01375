"""Where things live under the destination root: transcripts mirror the source tree, state is in .fleet/."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

FLEET_DIR = ".fleet"


class SourceError(Exception):
    """The source root cannot be used at all; str() is one line fit for the user."""


def check_source_root(root: Path) -> Path:
    """The real source root, or SourceError if it is missing, not a folder, or unreadable."""
    if not root.exists():
        raise SourceError(f"source folder {root} does not exist")
    if not root.is_dir():
        raise SourceError(f"source folder {root} is not a folder")
    if not os.access(root, os.R_OK | os.X_OK):
        raise SourceError(f"source folder {root} is not readable")
    return Path(os.path.realpath(root))


def source_unavailable(root: Path, rel_path: str) -> str | None:
    """Why a missing source file may be the disk, not the file: root gone or emptied, its top folder gone.

    An unplugged USB disk or an NFS share not mounted yet looks, file by file, exactly like deleted
    recordings. Only a file whose root and top folder are both there can be called gone.
    """
    try:
        check_source_root(root)
        with os.scandir(root) as entries:
            if next(entries, None) is None:
                return f"source folder {root} is empty (a disk not mounted?)"
    except (SourceError, OSError) as exc:
        return str(exc) if isinstance(exc, SourceError) else f"source folder {root} cannot be read: {exc.strerror}"
    top, sep, _ = rel_path.partition("/")
    if sep and not os.path.isdir(root / top):
        return f"folder {top} is missing from the source folder (a disk not mounted?)"
    return None


def stem_base(rel_path: str) -> str:
    """`talks/take.mp3` -> `talks/take`: the output base a media player expects."""
    # String operations with PurePosixPath.suffix semantics: this runs once per source per plan.
    folder, sep, name = rel_path.rpartition("/")
    dot = name.rfind(".")
    return f"{folder}{sep}{name[:dot]}" if 0 < dot < len(name) - 1 else rel_path


def output_files(base: str, formats: tuple[str, ...]) -> list[str]:
    """Relative output paths for an output base, in the order they are written (json last)."""
    ordered = [f for f in formats if f != "json"] + (["json"] if "json" in formats else [])
    return [f"{base}.{fmt}" for fmt in ordered]


def fleet_dir(dest: Path) -> Path:
    """The folder for fleet state that people need to see; hidden, so scans skip it."""
    return dest / FLEET_DIR


def failed_dir(dest: Path) -> Path:
    """One failure record per source file that failed permanently."""
    return fleet_dir(dest) / "failed"


def failure_record_path(dest: Path, rel_path: str) -> Path:
    """A failure record's file name is a hash: source names may be long or odd."""
    return failed_dir(dest) / f"{path_digest(rel_path)}.json"


def subtitled_dir(dest: Path) -> Path:
    """One record per video a worker found already subtitled in the language it detected."""
    return fleet_dir(dest) / "subtitled"


def subtitled_record_path(dest: Path, rel_path: str) -> Path:
    return subtitled_dir(dest) / f"{path_digest(rel_path)}.json"


def path_digest(rel_path: str) -> str:
    """A short, fixed-length file name for state kept per source file."""
    return hashlib.sha256(rel_path.encode("utf-8")).hexdigest()[:32]


def delivery_journal_path(dest: Path, rel_path: str) -> Path:
    """Which deliveries of a file began and how each ended: the next delivery learns from it why the last one died."""
    return fleet_dir(dest) / "deliveries" / f"{path_digest(rel_path)}.json"


def workers_dir(dest: Path) -> Path:
    """One heartbeat record per worker."""
    return fleet_dir(dest) / "workers"


def director_dir(dest: Path) -> Path:
    """The director's ledger and last plan."""
    return fleet_dir(dest) / "director"


def last_plan_path(dest: Path) -> Path:
    """The director's last plan (counts, found, ignored): what status and the local run report."""
    return director_dir(dest) / "last-plan.json"


def is_within(root: Path, path: Path) -> bool:
    """Whether `path`, with every symlink resolved, is `root` or lies below it."""
    real_root = Path(os.path.realpath(root))
    real_path = Path(os.path.realpath(path))
    return real_path == real_root or real_root in real_path.parents


def resolve_inside(root: Path, rel_path: str) -> Path | None:
    """The real path of `rel_path` under `root`, or None if it (or a symlink on the way) leaves root."""
    real_root = Path(os.path.realpath(root))
    candidate = Path(os.path.realpath(real_root / rel_path))
    return candidate if real_root in candidate.parents else None  # strictly below: the root itself is no file
