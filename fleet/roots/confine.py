"""Paths confined to a root: every path from a message or a file's name resolves inside its root, symlinks too."""

from __future__ import annotations

import os
from pathlib import Path


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
