"""Whether the source and destination roots can be used right now: a worker receives nothing while they cannot.

A NAS rebooting, a USB disk unplugged over a weekend, a destination filled by another program: none of
these is the fault of the file a worker would receive next. Checked before each receive, such an outage
costs no delivery, so it can last as long as it lasts.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from fleet.layout import fleet_dir, source_unavailable

PROBE_PREFIX = ".fleet-probe-"


def source_problem(source: Path) -> str | None:
    """Why the source root cannot be read (missing, not a folder, unreadable, or empty like a mount point)."""
    problem = source_unavailable(source, "")
    return None if problem is None else f"source not available: {problem}"


def dest_problem(dest: Path, min_free_mb: int) -> str | None:
    """Why outputs cannot be written under `dest` now: missing, read-only, unwritable, or below the free-space floor."""
    if not dest.is_dir():
        return f"destination not available: {dest} is missing or not a folder (a disk not mounted?)"
    try:
        usage = os.statvfs(dest)
        # Written where the outputs go: a read-only or permission-less mount fails here, not after the model ran.
        with tempfile.NamedTemporaryFile(prefix=PROBE_PREFIX, dir=dest):
            pass
    except OSError as exc:
        return f"destination not writable: {dest}: {exc.strerror or exc}"
    free_mb = usage.f_bavail * usage.f_frsize // 2**20
    if free_mb < min_free_mb:
        return f"destination full: {free_mb} MB free in {dest}, below FLEET_MIN_FREE_MB={min_free_mb}"
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

    def __init__(self, source: Path, dest: Path, min_free_mb: int, source_written: bool = False) -> None:
        self.source, self.dest, self.min_free_mb = source, dest, min_free_mb
        self.source_written = source_written  # the media layout writes subtitles beside the videos
        self._dest_had_state = fleet_dir(dest).is_dir()

    def problem(self) -> str | None:
        """The first reason the roots cannot be used now, or None when a job may be received."""
        problem = source_problem(self.source) or dest_problem(self.dest, self.min_free_mb)
        if problem is None and self.source_written and not os.access(self.source, os.W_OK):
            problem = (f"source not writable: {self.source} (FLEET_LAYOUT=media writes subtitles beside the videos: "
                       "mount it read-write, docker-compose.media.yml)")  # fmt: skip
        if problem is None:
            if fleet_dir(self.dest).is_dir():
                self._dest_had_state = True
            elif self._dest_had_state:
                problem = f"destination not available: {fleet_dir(self.dest)} vanished (a disk not mounted?)"
        return problem
