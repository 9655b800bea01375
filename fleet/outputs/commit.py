"""Commit a rendered transcript to disk: each file atomically, never over a file the fleet did not write, JSON last.

The rendering itself (whisperX's writers) happens where whisperX is: in a worker. The home side of a remote
worker commits the texts it brought back with this same code, so both kinds of worker leave the same files.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleet.job.identity import TranscriptionSettings
from fleet.media.output_names import output_files
from fleet.roots.confine import is_within
from fleet.state.atomic import read_regular, remove_temps_of, write_atomic
from fleet.state.records import COMMIT_KEY, CommitRecord

# Errors a destination gives for a name it will never accept (too long, characters it refuses): no retry can help.
NAME_REFUSED = frozenset({errno.ENAMETOOLONG, errno.EINVAL, errno.EILSEQ})
# No output the fleet writes comes near this (a ten-hour JSON with word timings is tens of MB): a bigger file at an
# output's name is someone else's, kept without reading it.
MAX_OUTPUT_BYTES = 512 << 20


# Renders any transcript in a format under the settings it was made with (the worker's whisperX writers).
RenderAny = Callable[[dict[str, Any], str, TranscriptionSettings], str]


class LeaseLost(Exception):
    """The message now belongs to another worker: its outputs are not ours to write."""


class ForeignOutput(Exception):
    """The JSON where the fleet would commit was written by someone else: the file is not the fleet's to do."""


class OutputPathError(Exception):
    """The output folder leaves the destination root (a symlink in dest)."""


def commit_json(record: CommitRecord, result: dict[str, Any]) -> str:
    """The JSON transcript with the commit record as its first key (the director reads only the head)."""
    body = {COMMIT_KEY: record.model_dump(mode="json"), **{k: v for k, v in result.items() if k != COMMIT_KEY}}
    return json.dumps(body, ensure_ascii=False, default=float)


def commit_outputs(
    dest: Path,
    base: str,
    formats: tuple[str, ...],
    render: Callable[[str], str],
    result: dict[str, Any],
    record: CommitRecord,
    still_ours: Callable[[], bool],
    owner: tuple[int, int] | None = None,
    beside: BesideVideo | None = None,
    render_any: RenderAny | None = None,
) -> list[Path]:
    """Render (`render(fmt)`) everything first, then write each file atomically; the JSON commit record goes last.

    A file the fleet did not write (another tool's subtitles, a hand-edited transcript) is never replaced:
    it is left byte for byte and named in the record's `kept`. `beside` puts some formats next to the video.
    `render_any` renders any transcript (the one on disk): a record from before output hashes were kept vouches
    only for files that still read as the fleet would write them from that JSON; without it, for none.
    """
    beside = beside or BesideVideo(Path("/"), {})
    silent = sorted(beside.paths) if beside.paths and not has_speech(result) else []
    if silent:  # an empty subtitle beside a video is a track media servers offer: none is written, the record says why
        formats, beside = tuple(fmt for fmt in formats if fmt not in silent), BesideVideo(beside.root, {})
    json_path = dest / f"{base}.json"
    previous = previous_record(json_path)
    as_written = _as_written_before(json_path, previous, render_any)
    targets = {fmt: beside.paths.get(fmt, dest / f"{base}.{fmt}") for fmt in formats}
    kept = sorted(fmt for fmt in formats if fmt != "json" and not _ours(targets[fmt], fmt, previous, beside, as_written))
    rendered = {fmt: render(fmt) for fmt in formats if fmt not in ("json", *kept)}
    untouched = {fmt: digest for fmt, digest in (previous.outputs if previous else {}).items() if fmt not in formats}
    written = {fmt: sha256(text.encode()) for fmt, text in rendered.items()}
    record = record.model_copy(update={
        "outputs": {**untouched, **written}, "kept": sorted({*kept, *_still_kept(previous, formats)}), "silent": silent,
        "media": {**{fmt: rel for fmt, rel in (previous.media if previous else {}).items() if fmt not in formats},
                  **{fmt: str(path.relative_to(beside.root)) for fmt, path in beside.paths.items() if fmt in formats}},
    })  # fmt: skip
    rendered["json"] = commit_json(record, result)
    order = [rel.rpartition(".")[2] for rel in output_files(base, formats)]
    paths = [targets[fmt] for fmt in order if fmt in rendered]
    for folder in dict.fromkeys(path.parent for path in paths):
        if folder == targets["json"].parent:
            _make_folders(dest, folder, owner)
        remove_temps_of(folder, [p.name for p in paths if p.parent == folder])  # leftovers of a worker killed mid-write
    for fmt, path in zip([f for f in order if f in rendered], paths, strict=True):
        if not still_ours():
            raise LeaseLost(f"lease lost before writing {path.name}")
        write_atomic(path, rendered[fmt], owner=owner)
    _drop_moved_copies(dest, base, previous, beside)
    return paths


def has_speech(result: dict[str, Any]) -> bool:
    """Whether the transcript has any words to show."""
    return any(str(segment.get("text", "")).strip() for segment in result.get("segments") or [])


@dataclass(frozen=True)
class BesideVideo:
    """Formats written next to the video (the media layout): format -> path under `root`, the source root."""

    root: Path
    paths: dict[str, Path]


def _drop_moved_copies(dest: Path, base: str, previous: CommitRecord | None, beside: BesideVideo) -> None:
    """A subtitle now beside its video leaves the mirror, where the fleet wrote it before (unless edited since)."""
    for fmt in beside.paths:
        mirrored = dest / f"{base}.{fmt}"
        try:
            if previous is not None and fmt not in previous.media and previous.outputs.get(fmt) == sha256(read_regular(mirrored)):
                mirrored.unlink()
        except OSError:  # gone, or not a plain file: not ours to drop
            pass


def previous_record(json_path: Path) -> CommitRecord | None:
    """The commit record of the JSON already at `json_path`; ForeignOutput if that JSON is not the fleet's."""
    try:
        document = json.loads(read_regular(json_path))
    except (FileNotFoundError, NotADirectoryError):  # not there (its folder may not be made yet): nothing to keep
        return None
    except (OSError, ValueError) as exc:
        raise ForeignOutput(f"{json_path.name} exists and cannot be read as the fleet's transcript: left alone") from exc
    try:
        return CommitRecord.model_validate(document[COMMIT_KEY])
    except (KeyError, TypeError, ValueError) as exc:
        raise ForeignOutput(f"{json_path.name} exists and was not written by whisper-fleet: left alone "
                            "(move or delete it to let the fleet transcribe this file)") from exc  # fmt: skip


def _as_written_before(json_path: Path, previous: CommitRecord | None, render_any: RenderAny | None) -> Callable[[str], str]:
    """For a record without output hashes: what the fleet would write in a format from the JSON on disk ('' if unknown)."""
    if previous is None or previous.outputs or render_any is None:
        return lambda fmt: ""
    try:
        document = json.loads(read_regular(json_path))
        result = {key: value for key, value in document.items() if key != COMMIT_KEY}
    except (OSError, ValueError):
        return lambda fmt: ""

    def rendered(fmt: str) -> str:
        try:
            return render_any(result, fmt, previous.settings)
        except Exception:  # noqa: BLE001 - an old JSON the writers cannot read: nothing vouched for
            return ""

    return rendered


def _ours(path: Path, fmt: str, previous: CommitRecord | None, beside: BesideVideo,
          as_written: Callable[[str], str] = lambda fmt: "") -> bool:  # fmt: skip
    """Whether the file at `path` may be replaced: absent, or exactly what the fleet wrote there last. Anything else
    there (a FIFO, a folder, a symlink, a file it cannot read, one far bigger than any output) is kept, unread."""
    try:
        on_disk = read_regular(path, MAX_OUTPUT_BYTES)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return False
    if previous is None or fmt in previous.kept:
        return False
    if fmt in beside.paths and previous.media.get(fmt) != str(path.relative_to(beside.root)):
        return False  # a subtitle beside a video is ours only where our record says we wrote it
    if not previous.outputs:  # a record from before hashes were kept: ours only if it still reads as written then
        expected = as_written(fmt)
        return bool(expected) and expected.encode() == on_disk
    return previous.outputs.get(fmt) == sha256(on_disk)


def _still_kept(previous: CommitRecord | None, formats: tuple[str, ...]) -> list[str]:
    """Formats kept before and not part of this job: still someone else's."""
    return [fmt for fmt in (previous.kept if previous else []) if fmt not in formats]


def sha256(data: bytes) -> str:
    """The digest the commit record keeps per output, of the bytes on disk."""
    return hashlib.sha256(data).hexdigest()


def _make_folders(dest: Path, folder: Path, owner: tuple[int, int] | None) -> None:
    """Create the output folder, never outside dest; folders this creates get the configured owner."""
    missing = [p for p in [folder, *folder.parents] if p != dest and dest in p.parents and not p.exists()]
    deepest_existing = missing[-1].parent if missing else folder
    # Checked before mkdir: a symlink in dest must not make us create folders elsewhere.
    if not is_within(dest, deepest_existing):
        raise OutputPathError(f"output folder {folder} resolves outside the destination")
    folder.mkdir(parents=True, exist_ok=True)
    if owner is not None:
        for created in missing:
            os.chown(created, *owner)


def shown_path(path: Path, dest: Path, source: Path) -> str:
    """An output's path as notifications show it: relative to the destination, or to the source for one beside its video."""
    for root in (dest, source):
        real_root = Path(os.path.realpath(root))
        if real_root in path.parents:
            return str(path.relative_to(real_root))
        if Path(root) in path.parents:
            return str(path.relative_to(root))
    return str(path)
