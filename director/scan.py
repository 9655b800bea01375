"""Walk the source root and list the media files in it (the only source-side I/O of the director)."""

from __future__ import annotations

import os
import stat
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from director.folder_settings import FOLDER_SETTINGS_NAME
from fleet.job.messages import Fingerprint, unsafe_path_reason
from fleet.media.extensions import MEDIA_EXTENSIONS
from fleet.roots.readiness import SourceError, check_source_root

__all__ = ["SourceError", "SourceFile", "ScanResult", "scan_sources", "is_media_name"]

@dataclass(frozen=True, slots=True)
class SourceFile:
    """A media file under the source root, by its relative POSIX path."""

    rel: str
    size: int
    mtime_ns: int

    @property
    def fingerprint(self) -> Fingerprint:
        return Fingerprint(self.size, self.mtime_ns)


@dataclass
class ScanResult:
    """Media files found, plus what was ignored and why."""

    files: list[SourceFile] = field(default_factory=list)
    ignored: Counter[str] = field(default_factory=Counter)
    settings_folders: set[str] = field(default_factory=set)  # folders holding a .whisper-fleet.toml ("" = root)
    warnings: list[str] = field(default_factory=list)


def is_media_name(name: str) -> bool:
    """Case-insensitive extension check."""
    _, dot, ext = name.rpartition(".")
    return bool(dot) and ext.lower() in MEDIA_EXTENSIONS


def scan_sources(root: Path, exclude: Path | None = None, on_folder: Callable[[int], None] | None = None) -> ScanResult:
    """Recursively list media files; hidden entries, non-media files and escaping symlinks are ignored.

    `on_folder(files_so_far)` is called after each folder, for a progress display.
    """
    real_root = check_source_root(root)
    root_prefix = str(real_root).rstrip("/") + "/"
    real_exclude = os.path.realpath(exclude) if exclude else None
    result = ScanResult()
    stack = [(str(real_root), "")]
    while stack:
        folder, rel_folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            result.ignored["unreadable folder"] += 1
            result.warnings.append(f"cannot read folder {rel_folder or '.'}: {exc.strerror}")
            continue
        for entry in entries:
            rel = f"{rel_folder}{entry.name}"
            if entry.name == FOLDER_SETTINGS_NAME:
                result.settings_folders.add(rel_folder.rstrip("/"))
                continue
            if entry.name.startswith("."):
                result.ignored["hidden"] += 1
                continue
            bad_name = unsafe_path_reason(rel)
            if bad_name:
                result.ignored["unusable name"] += 1
                result.warnings.append(f"ignored {rel!r}: {bad_name}")
                continue
            try:
                is_link = entry.is_symlink()
                if is_link:
                    target = os.path.realpath(entry.path)
                    if not (target + "/").startswith(root_prefix):
                        result.ignored["symlink outside source"] += 1
                        result.warnings.append(f"ignored {rel}: symlink points outside the source folder")
                        continue
                info = entry.stat()  # follows symlinks, which now stay inside the root
            except OSError as exc:
                result.ignored["unreadable"] += 1
                result.warnings.append(f"ignored {rel}: {exc.strerror}")
                continue
            if stat.S_ISDIR(info.st_mode):
                if is_link:
                    # Its target is inside the root and scanned on its own: following it would
                    # transcribe the same files twice, or loop forever.
                    result.ignored["symlinked folder"] += 1
                elif entry.path != real_exclude:  # never scan our own outputs when dest is inside source
                    stack.append((entry.path, rel + "/"))
            elif stat.S_ISREG(info.st_mode) and is_media_name(entry.name):
                result.files.append(SourceFile(rel, info.st_size, info.st_mtime_ns))
            else:
                result.ignored["not media"] += 1
        if on_folder:
            on_folder(len(result.files))
    result.files.sort(key=lambda f: f.rel)
    return result

