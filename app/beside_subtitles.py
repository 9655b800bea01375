"""`fleet subtitles list|remove`: the subtitles the fleet wrote beside videos (the media layout), found from its
commit records and checked against the hashes kept there; `remove` (a dry run without `--yes`) takes exactly those
away, for going back to the mirror layout. A subtitle edited since, or anyone else's, is never touched."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError

from fleet.outputs.commit import sha256
from fleet.process import exits
from fleet.roots.confine import resolve_inside
from fleet.settings import FleetSettings
from fleet.state.atomic import read_regular
from fleet.state.paths import fleet_dir
from fleet.state.records import COMMIT_KEY, CommitRecord


@dataclass(frozen=True)
class BesideSubtitle:
    """A subtitle a commit record says the fleet wrote beside a video; `ours` while it is byte for byte what it wrote."""

    rel: str  # under the source root
    path: Path
    ours: bool


def beside_subtitles(settings: FleetSettings) -> list[BesideSubtitle]:
    """Every subtitle the records under DEST_DIR place beside a video that is still there, by path."""
    found = []
    state = fleet_dir(settings.dest_dir)
    for folder, dirs, files in os.walk(settings.dest_dir):
        dirs[:] = sorted(d for d in dirs if Path(folder, d) != state)
        for name in sorted(f for f in files if f.endswith(".json")):
            record = _record(Path(folder, name))
            for fmt, rel in sorted(record.media.items()) if record else ():
                path = resolve_inside(settings.source_dir, rel)  # a record is data: never a path outside the source
                if path is None or fmt in record.kept:  # kept: someone else's subtitle at that name
                    continue
                try:
                    ours = sha256(read_regular(path)) == record.outputs.get(fmt)
                except OSError:  # gone, or something other than a plain file now
                    continue
                found.append(BesideSubtitle(rel, path, ours))
    return found


def _record(json_path: Path) -> CommitRecord | None:
    try:
        return CommitRecord.model_validate(json.loads(read_regular(json_path))[COMMIT_KEY])
    except (OSError, ValueError, KeyError, TypeError, ValidationError):
        return None


def run_beside_subtitles(settings: FleetSettings, action: str, yes: bool, out: TextIO = sys.stdout) -> int:
    """List them, or remove the fleet's own (a dry run unless `yes`); the exit code."""
    subtitles = beside_subtitles(settings)
    ours = [s for s in subtitles if s.ours]
    for subtitle in subtitles:
        print(f"{'fleet ' if subtitle.ours else 'edited'}  {subtitle.rel}", file=out)
    edited = len(subtitles) - len(ours)
    kept = f"; {edited} edited since it was written: kept" if edited else ""
    if action == "list":
        print(f"{len(ours)} subtitle(s) written by the fleet beside videos{kept}", file=out)
        return exits.OK
    if not yes:
        print(f"would remove {len(ours)} subtitle(s) written by the fleet{kept}; run again with --yes to remove them",
              file=out)  # fmt: skip
        return exits.OK
    removed = 0
    for subtitle in ours:
        try:
            subtitle.path.unlink()
            removed += 1
        except OSError as exc:
            print(f"fleet: {subtitle.rel} not removed: {exc.strerror}", file=sys.stderr)
    print(f"removed {removed} subtitle(s) written by the fleet{kept}", file=out)
    return exits.OK if removed == len(ours) else exits.FAILED_FILES
