"""Per-folder settings: a `.whisper-fleet.toml` in a source folder steers the transcription of everything below it.

    # /source/interviews/german/.whisper-fleet.toml
    language = "de"
    initial_prompt = "Interview mit Frau Dr. Schmidt über die Energiewende."
    diarize = true
    max_speakers = 2

A nearer file overrides a farther one key by key; the resulting settings are part of each job (and its
key), so editing a folder's file re-queues that folder only.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from pathlib import Path

from pydantic import ValidationError

from fleet.job.identity import DecodingOptions, TranscriptionSettings
from fleet.roots.confine import is_within

FOLDER_SETTINGS_NAME = ".whisper-fleet.toml"
MAX_FILE_BYTES = 64 * 1024
# Key -> where it goes: the transcription settings themselves, or their decoding options.
KEYS = {"language": "settings", "task": "settings", "audio_language": "settings", "diarize": "settings",
        "min_speakers": "settings", "max_speakers": "settings", "fallback_language": "decoding",
        "initial_prompt": "decoding", "hotwords": "decoding"}  # fmt: skip
# Each key's TOML type (strings unless named here), and how the error message names it.
KEY_TYPES: dict[str, tuple[type, str]] = {"diarize": (bool, "true or false"), "min_speakers": (int, "a whole number"),
                                          "max_speakers": (int, "a whole number")}  # fmt: skip


class FolderSettingsError(Exception):
    """A settings file that cannot be used; str() is one line naming the file and, where known, the line."""


def _line_of(text: str, key: str) -> str:
    for number, line in enumerate(text.splitlines(), start=1):
        if re.match(rf"\s*{re.escape(key)}\s*=", line):
            return f"line {number}: "
    return ""


def read_folder_file(source_root: Path, rel: str) -> str:
    """The text of a settings file: a regular file inside the source, at most MAX_FILE_BYTES, or FolderSettingsError.

    Checked before it is read: a FIFO would hang the director, a link to /dev/zero fill its memory, a link
    out of the source read a file the fleet has no business reading.
    """
    path = source_root / rel
    if not is_within(source_root, path):
        raise FolderSettingsError(f"{rel}: a symlink that leaves the source folder: not read")
    try:
        # O_NONBLOCK: should it have become a FIFO since the check below ran, opening does not wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise FolderSettingsError(f"{rel}: not a regular file: not read")
            if info.st_size > MAX_FILE_BYTES:
                raise FolderSettingsError(f"{rel}: {info.st_size} bytes, more than a settings file needs ({MAX_FILE_BYTES})")
            return handle.read(MAX_FILE_BYTES + 1).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FolderSettingsError(f"{rel}: cannot read: {exc}") from None


def apply_folder_file(base: TranscriptionSettings, text: str, rel: str,
                      speaker_bounds: tuple[int | None, int | None] = (None, None)) -> TranscriptionSettings:  # fmt: skip
    """`base` with the keys of one settings file applied; FolderSettingsError if the file is unusable.

    A file that turns speakers on takes WHISPER_MIN_SPEAKERS / WHISPER_MAX_SPEAKERS (`speaker_bounds`) where it
    names no bounds of its own (without WHISPER_DIARIZE the base settings cannot carry them).
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # its message ends "(at line N, column M)"
        raise FolderSettingsError(f"{rel}: not valid TOML: {exc}") from None
    for key, value in data.items():
        if key not in KEYS:
            raise FolderSettingsError(f"{rel}: {_line_of(text, key)}unknown key {key!r}; allowed: {', '.join(KEYS)}")
        wanted, described = KEY_TYPES.get(key, (str, "a string in quotes"))
        # bool is an int in Python: `min_speakers = true` must not read as 1.
        if not isinstance(value, wanted) or (wanted is int and isinstance(value, bool)):
            raise FolderSettingsError(f"{rel}: {_line_of(text, key)}{key} must be {described}")
    settings_part = {k: v for k, v in data.items() if KEYS[k] == "settings"}
    if data.get("diarize") is True and not base.diarize:
        defaults = dict(zip(("min_speakers", "max_speakers"), speaker_bounds, strict=True))
        settings_part = {**{k: v for k, v in defaults.items() if v is not None}, **settings_part}
    decoding_part = {k: v for k, v in data.items() if KEYS[k] == "decoding"}
    try:
        decoding = DecodingOptions.model_validate({**base.decoding.model_dump(), **decoding_part})
        return TranscriptionSettings.model_validate({**base.model_dump(), **settings_part, "decoding": decoding})
    except ValidationError as exc:
        first = exc.errors()[0]
        key = str(first["loc"][0]) if first["loc"] else ""
        message = first["msg"].removeprefix("Value error, ")
        raise FolderSettingsError(f"{rel}: {_line_of(text, key)}{key}: {message}" if key else f"{rel}: {message}") from None


class FolderSettings:
    """The settings of each source folder: the base, then every settings file from the root down to it."""

    def __init__(self, base: TranscriptionSettings, source_root: Path, folders_with_file: set[str],
                 speaker_bounds: tuple[int | None, int | None] = (None, None)) -> None:  # fmt: skip
        self.base = base
        self.source_root = source_root
        self.folders_with_file = folders_with_file  # relative POSIX folders, "" for the root
        self.speaker_bounds = speaker_bounds  # the environment's, for a folder that turns speakers on
        self._cache: dict[str, TranscriptionSettings | FolderSettingsError] = {}

    def for_source(self, rel: str) -> TranscriptionSettings | FolderSettingsError:
        """The settings for a source file (one shared object per folder, so its key is computed once)."""
        return self._for_folder(rel.rpartition("/")[0])

    def errors(self) -> list[FolderSettingsError]:
        """Each unusable file once (after the sources were looked up)."""
        return list({str(e): e for e in self._cache.values() if isinstance(e, FolderSettingsError)}.values())

    def _for_folder(self, folder: str) -> TranscriptionSettings | FolderSettingsError:
        if folder in self._cache:
            return self._cache[folder]
        inherited = self._for_folder(folder.rpartition("/")[0]) if folder else self.base
        settings = inherited
        if folder in self.folders_with_file and not isinstance(inherited, FolderSettingsError):
            rel = f"{folder}/{FOLDER_SETTINGS_NAME}" if folder else FOLDER_SETTINGS_NAME
            try:
                settings = apply_folder_file(inherited, read_folder_file(self.source_root, rel), rel, self.speaker_bounds)
            except FolderSettingsError as exc:
                settings = exc
        self._cache[folder] = settings
        return settings
