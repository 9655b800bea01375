"""Output names the destination accepts: at most 255 bytes with the temp suffix, no characters SMB refuses.

A source name that is legal on its own disk can be refused where its outputs go: a 250-byte name plus
`.json` plus the temp prefix is too long anywhere, `Q&A: part 1` is refused by an SMB share. Such a
name is shortened deterministically (the same source always gets the same output name, so the done-check
finds it next time): characters replaced by `_`, and a name still too long cut at a character boundary
and marked with `~` and 8 hex digits of the source path, which keeps two long names apart.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

NAME_MAX = 255
# Every output is written under a temp name beside it first (fleet.state.atomic): `.fleet-tmp-<name>.XXXXXXXX`.
TEMP_PREFIX = ".fleet-tmp-"
# The temp name's parts around the longest output file name `<stem>.json`.
_TEMP_OVERHEAD = len(TEMP_PREFIX) + 1 + 8
STEM_MAX = NAME_MAX - _TEMP_OVERHEAD - len(".json")
_WINDOWS_REFUSED = set('\\:*?"<>|') | {chr(c) for c in range(32)}
# Filesystems with Windows naming rules (mountinfo's type); fuseblk is mostly ntfs-3g.
WINDOWS_FILESYSTEMS = frozenset({"cifs", "smb3", "smbfs", "vfat", "msdos", "exfat", "ntfs", "ntfs3", "fuseblk"})


@dataclass(frozen=True)
class OutputNames:
    """How output bases are made to fit the destination; `windows` when it has SMB/FAT/NTFS naming rules."""

    windows: bool = False

    def fit(self, base: str) -> str:
        """`base` if the destination takes it as is, else its deterministic shortened form."""
        if not self.windows and len(base.encode("utf-8")) <= STEM_MAX:
            return base  # the common case, once per source per plan: no component can be too long
        parts = base.split("/")
        fitted = [self._fit_part(part, NAME_MAX, base) for part in parts[:-1]]
        fitted.append(self._fit_part(parts[-1], STEM_MAX, base))
        return "/".join(fitted)

    def _fit_part(self, part: str, limit: int, whole: str) -> str:
        if self.windows:
            part = "".join("_" if c in _WINDOWS_REFUSED else c for c in part)
            if part.endswith((".", " ")):  # Windows drops a trailing dot or space: two names would become one
                part = part[:-1] + "_"
        encoded = part.encode("utf-8")
        if len(encoded) <= limit:
            return part
        mark = "~" + hashlib.sha256(whole.encode("utf-8")).hexdigest()[:8]
        return encoded[: limit - len(mark)].decode("utf-8", "ignore") + mark


PLAIN_NAMES = OutputNames()


def names_for(dest: Path) -> OutputNames:
    """The naming rules of the filesystem `dest` lies on (from /proc/self/mountinfo; plain rules if unknown)."""
    return OutputNames(windows=filesystem_type(dest) in WINDOWS_FILESYSTEMS)


def filesystem_type(path: Path) -> str | None:
    """The type of the mount that holds `path` (the longest mount point above it), or None."""
    real = os.path.realpath(path)
    best, best_type = "", None
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as mounts:
            for line in mounts:
                fields = line.split()
                separator = fields.index("-")
                mount_point = fields[4].replace("\\040", " ")
                inside = real == mount_point or real.startswith(mount_point.rstrip("/") + "/")
                if inside and len(mount_point) >= len(best):
                    best, best_type = mount_point, fields[separator + 1]
    except (OSError, ValueError, IndexError):
        return None
    return best_type


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
