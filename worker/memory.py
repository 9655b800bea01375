"""This process's memory: the resident size now, and the limit its container sets (cgroup v2 or v1)."""

from __future__ import annotations

import os
from pathlib import Path

_LIMIT_FILES = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))
_NO_LIMIT_BYTES = 2**60  # cgroup v1 writes a huge number for "no limit"


def current_rss_mb() -> float:
    """Resident memory now (not the peak), from /proc."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory_limit_mb() -> float | None:
    """The container's memory limit in MB, or None when nothing below the machine's RAM bounds it."""
    for path in _LIMIT_FILES:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text == "max" or not text.isdigit() or int(text) >= _NO_LIMIT_BYTES:
            return None
        return int(text) / 2**20
    return None
