"""Durable writes: temp file in the same folder, fsync, rename, fsync the folder."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import tempfile
from pathlib import Path

from fleet.media.output_names import NAME_MAX, TEMP_PREFIX

MKSTEMP_RANDOM = 8  # characters mkstemp adds after the prefix

# mkstemp creates 0600 files; finished files get the usual umask-based mode instead. Read once at
# import, while the process is still single-threaded (os.umask can only be read by setting it).
_UMASK = os.umask(0o022)
os.umask(_UMASK)


class NotRegularFile(OSError):
    """Something other than a plain file sits at a name the fleet reads (a FIFO, a folder, a symlink, a device)."""


def open_regular(path: Path) -> int:
    """A read-only descriptor of the plain file at `path`: never blocks on a FIFO, never follows a symlink in its last
    part; FileNotFoundError if absent, NotRegularFile for anything else that is there. The caller closes it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotRegularFile(errno.ELOOP, "a symlink, not a plain file", str(path)) from exc
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotRegularFile(errno.EINVAL, "not a plain file", str(path))
    return fd


def read_regular(path: Path, max_bytes: int | None = None) -> bytes:
    """The bytes of the plain file at `path` (see open_regular); NotRegularFile also when it is over `max_bytes`."""
    fd = open_regular(path)
    with os.fdopen(fd, "rb") as handle:
        if max_bytes is not None and os.fstat(fd).st_size > max_bytes:
            raise NotRegularFile(errno.EFBIG, f"over {max_bytes >> 20} MB", str(path))
        return handle.read()


def temp_prefix(final_name: str) -> str:
    """Temp files are named after their final file, so leftovers of a crash can be found. Never longer than a name
    may be: a final name near the limit (a long CJK title) is cut and marked with 8 hex digits of itself."""
    prefix = f"{TEMP_PREFIX}{final_name}."
    if len(prefix.encode()) + MKSTEMP_RANDOM <= NAME_MAX:
        return prefix
    mark = "~" + hashlib.sha256(final_name.encode()).hexdigest()[:8] + "."
    room = NAME_MAX - MKSTEMP_RANDOM - len(TEMP_PREFIX) - len(mark)
    return TEMP_PREFIX + final_name.encode()[:room].decode("utf-8", "ignore") + mark


def write_atomic(path: Path, data: bytes | str, owner: tuple[int, int] | None = None) -> None:
    """Write `data` to `path` so that readers see either the old file or the whole new one."""
    payload = data.encode() if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=temp_prefix(path.name), dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o666 & ~_UMASK)
            if owner is not None:
                os.fchown(handle.fileno(), *owner)
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    """Persist a rename: the folder entry itself must reach the disk too."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_temps_of(folder: Path, final_names: list[str]) -> int:
    """Delete temp files left by a crash while writing these files; returns how many."""
    removed = 0
    try:
        entries = os.listdir(folder)
    except FileNotFoundError:
        return 0
    prefixes = [temp_prefix(name) for name in final_names]
    for entry in entries:
        # mkstemp appends exactly 8 random characters: `take.txt.` must not match `take.txt.txt.`
        if any(entry.startswith(p) and len(entry) == len(p) + MKSTEMP_RANDOM for p in prefixes):
            (folder / entry).unlink(missing_ok=True)
            removed += 1
    return removed


def remove_stale_temps(root: Path, older_than_s: float, now: float) -> int:
    """Delete temp files under `root` untouched for `older_than_s` (left by a killed process)."""
    removed = 0
    for folder, _, files in os.walk(root):
        for name in files:
            if name.startswith(TEMP_PREFIX):
                path = Path(folder, name)
                try:
                    if now - path.stat().st_mtime > older_than_s:
                        path.unlink()
                        removed += 1
                except FileNotFoundError:
                    continue
    return removed
