"""Probe the destination for existing transcripts (the director's done-check I/O)."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from director.plan import OutputState
from fleet.records import read_commit_record


def probe_outputs(dest: Path, bases: Iterable[str], formats: tuple[str, ...]) -> dict[str, OutputState]:
    """Output state of every base that has at least one output; one listing per folder."""
    by_folder: dict[str, list[str]] = defaultdict(list)
    for base in bases:
        folder, _, name = base.rpartition("/")
        by_folder[folder].append(name)
    states: dict[str, OutputState] = {}
    shared_sets: dict[tuple[str, ...], frozenset[str]] = {}  # a few distinct sets, 100,000s of states
    for folder, names in by_folder.items():
        folder_path = os.path.join(dest, folder)  # strings, not Paths: this loop runs per source
        try:
            listing = set(os.listdir(folder_path))
        except OSError:
            continue  # nothing written there yet (or unreadable): every base in it counts as new
        for name in names:
            found = tuple(fmt for fmt in formats if f"{name}.{fmt}" in listing)
            if found:
                present = shared_sets.setdefault(found, frozenset(found))
                record = read_commit_record(os.path.join(folder_path, f"{name}.json")) if "json" in present else None
                states[f"{folder}/{name}" if folder else name] = OutputState(present, record)
    return states
