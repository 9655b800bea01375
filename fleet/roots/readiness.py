"""Whether the source and destination roots can be used right now: a worker receives nothing while they cannot.

A NAS rebooting, a USB disk unplugged over a weekend, a destination filled by another program: none of
these is the fault of the file a worker would receive next. Checked before each receive, such an outage
costs no delivery, so it can last as long as it lasts.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from fleet.state.paths import fleet_dir

PROBE_PREFIX = ".fleet-probe-"


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


def source_problem(source: Path) -> str | None:
    """Why the source root cannot be read (missing, not a folder, unreadable, or empty like a mount point)."""
    problem = source_unavailable(source, "")
    return None if problem is None else f"source not available: {problem}"


def writable_free_mb(folder: Path) -> int:
    """MB free in `folder`, once a file was created there (a read-only or permission-less mount fails here, not
    after the model ran); OSError if it cannot be."""
    usage = os.statvfs(folder)
    with tempfile.NamedTemporaryFile(prefix=PROBE_PREFIX, dir=folder):
        pass
    return usage.f_bavail * usage.f_frsize // 2**20


def dest_problem(dest: Path, min_free_mb: int) -> str | None:
    """Why outputs cannot be written under `dest` now: missing, read-only, unwritable, or below the free-space floor."""
    if not dest.is_dir():
        return f"destination not available: {dest} is missing or not a folder (a disk not mounted?)"
    try:
        free_mb = writable_free_mb(dest)
    except OSError as exc:
        return f"destination not writable: {dest}: {exc.strerror or exc}"
    if free_mb < min_free_mb:
        return f"destination full: {free_mb} MB free in {dest}, below FLEET_MIN_FREE_MB={min_free_mb}"
    return None


def scratch_problem(scratch: Path, min_free_mb: int) -> str | None:
    """Why the worker's scratch folder (TMPDIR: the decoded audio of the file at hand) cannot take a file now."""
    try:
        free_mb = writable_free_mb(scratch)
    except OSError as exc:
        return f"no room in {scratch}: not writable ({exc.strerror or exc}); set TMPDIR to a folder with space"
    if free_mb < min_free_mb:
        return (f"no room in {scratch}: less than FLEET_MIN_SCRATCH_MB={min_free_mb} MB free for a file's decoded "
                "audio (about 115 MB per hour)")  # fmt: skip
    return None


def models_problem(models: Path) -> str | None:
    """Why the models folder cannot take the model a job may need next (an alignment model for a new language)."""
    if models.is_dir() and not os.access(models, os.W_OK | os.X_OK):
        return f"models folder not writable: {models} (mount it read-write, or fix its owner)"
    return None


def roots_overlap(source: Path, dest: Path) -> str | None:
    """Why these roots cannot be used together: the same folder (also through two mounts), or source inside dest.

    A destination inside the source is fine: the scan skips it, so outputs are never taken for recordings.
    """
    real_source, real_dest = Path(os.path.realpath(source)), Path(os.path.realpath(dest))
    try:
        same = os.path.samefile(real_source, real_dest)  # one folder bind-mounted twice has two names, one inode
    except OSError:
        same = real_source == real_dest
    if same:
        return (f"FLEET_SOURCE_DIR and FLEET_DEST_DIR are the same folder ({real_source}): transcripts would be written "
                "among the recordings; give the transcripts a folder of their own")  # fmt: skip
    if real_dest in real_source.parents:
        return (f"FLEET_SOURCE_DIR ({real_source}) lies inside FLEET_DEST_DIR ({real_dest}): transcripts could land "
                "among the recordings; use folders side by side, or the destination inside the source")  # fmt: skip
    return None


class RootsWatch:
    """Remembers whether the destination ever held fleet state: if it disappears, the disk went away, not the data."""

    def __init__(self, source: Path | None, dest: Path, min_free_mb: int, source_written: bool = False,
                 more: tuple[Callable[[], str | None], ...] = ()) -> None:  # fmt: skip
        """`source` None: a remote worker's, which sees no source (its files come through the transfer bucket);
        `more`: further places a job needs (the scratch folder, the models folder), checked after the roots."""
        self.source, self.dest, self.min_free_mb = source, dest, min_free_mb
        self.source_written = source_written  # the media layout writes subtitles beside the videos
        self.more = more
        self._dest_had_state = fleet_dir(dest).is_dir()

    def problem(self) -> str | None:
        """The first reason the roots cannot be used now, or None when a job may be received."""
        problem = (self.source and source_problem(self.source)) or dest_problem(self.dest, self.min_free_mb)
        if problem is None and self.source and self.source_written and not os.access(self.source, os.W_OK):
            problem = (f"source not writable: {self.source} (FLEET_LAYOUT=media writes subtitles beside the videos: "
                       "mount it read-write, docker-compose.media.yml)")  # fmt: skip
        if problem is None:
            if fleet_dir(self.dest).is_dir():
                self._dest_had_state = True
            elif self._dest_had_state:
                problem = f"destination not available: {fleet_dir(self.dest)} vanished (a disk not mounted?)"
        for check in self.more:
            problem = problem or check()
        return problem
