"""Whether a video already has a subtitle in a language: a sidecar file in any naming style, or an embedded stream.

Forced subtitles (only the foreign-language lines of a film) do not count: a viewer who needs subtitles still has none.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from fleet.language import same_language
from fleet.media.extensions import MEDIA_EXTENSIONS, extension
from fleet.media.layout import SUBTITLE_FLAGS, sidecar_token_language
from fleet.media.probe import run_bounded

SUBTITLE_EXTENSIONS = frozenset({"srt", "ass", "ssa", "vtt", "sub"})
_NOT_FULL = frozenset({"forced", "foreign"})
PROBE_TIMEOUT_S = 60.0


def sidecar_language(stem: str, name: str) -> str | None:
    """The language of `name` if it is a full subtitle of the video named `stem`: `<stem>[.parts].<ext>`.

    Bazarr, Plex and subgen put the language last (`Film.en.hi.srt`, `Film.subgen.medium.eng.srt`),
    Jellyfin and Kodi anywhere (`Film.en.default.srt`): the last part that is no flag, else the first part.
    """
    if not name.startswith(f"{stem}."):
        return None
    middle, dot, extension = name[len(stem) + 1 :].rpartition(".")
    if not dot or not middle or extension.lower() not in SUBTITLE_EXTENSIONS:
        return None
    parts = middle.lower().split(".")
    if _NOT_FULL & set(parts):
        return None
    while len(parts) > 1 and parts[-1] in SUBTITLE_FLAGS:  # `Film.en.hi.srt` is English for the hard of hearing
        parts.pop()
    return sidecar_token_language(parts[-1]) or sidecar_token_language(parts[0])


@dataclass(frozen=True)
class FolderSidecars:
    """One folder's full subtitles, each given to the media file with the longest stem it starts with: the fleet's
    `Show.S01E01.Part2.whisper.en.srt` is Part2's, not `Show.S01E01.mkv`'s. Built once per folder listing."""

    by_stem: dict[str, list[tuple[str, str]]]  # a media file's stem -> its (sidecar name, language), by name

    @classmethod
    def of(cls, names: Iterable[str]) -> FolderSidecars:
        """Index a folder listing (file names only)."""
        names = list(names)
        stems = {name.rpartition(".")[0] for name in names if extension(name) in MEDIA_EXTENSIONS}
        by_stem: dict[str, list[tuple[str, str]]] = {}
        for name in sorted(names):
            if extension(name) not in SUBTITLE_EXTENSIONS:
                continue
            owner = _owner(name, stems)
            language = sidecar_language(owner, name) if owner is not None else None
            if owner is not None and language is not None:
                by_stem.setdefault(owner, []).append((name, language))
        return cls(by_stem)

    def own(self, video_name: str) -> list[tuple[str, str]]:
        """The video's own full subtitles: (name, language), by name."""
        return self.by_stem.get(video_name.rpartition(".")[0] or video_name, [])

    def matching(self, video_name: str, language: str) -> str | None:
        """The first of the video's own subtitles in `language`, by name."""
        return next((name for name, found in self.own(video_name) if same_language(found, language)), None)


def _owner(name: str, stems: set[str]) -> str | None:
    """The longest media stem `name` starts with (followed by a dot), if any: one set lookup per dot in the name."""
    end = name.rfind(".")
    while end > 0:
        if name[:end] in stems:  # `Film.en.srt` beside `Film.en.mkv` is that video's (language-less) subtitle
            return name[:end]
        end = name.rfind(".", 0, end)
    return None


def matching_sidecar(video_name: str, names: Iterable[str], language: str) -> str | None:
    """The first file in `names` (a folder listing) that is a full `language` subtitle of the video `video_name`."""
    return FolderSidecars.of([*names, video_name]).matching(video_name, language)


def probe_embedded_languages(path: Path, timeout_s: float = PROBE_TIMEOUT_S) -> tuple[str, ...] | None:
    """The languages of the file's full (not forced) subtitle streams, as tagged; () for a file ffprobe cannot read
    (it has no subtitle anyone can show); None when ffprobe cannot run or times out (ask again later)."""
    command = ["ffprobe", "-v", "error", "-select_streams", "s", "-show_entries",
               "stream=index:stream_tags=language:stream_disposition=forced", "-of", "json", str(path)]  # fmt: skip
    try:
        done = run_bounded(command, timeout_s)
        streams = json.loads(done.stdout or b"{}").get("streams", []) if done else None
    except (OSError, ValueError):
        return None
    if done is None or streams is None:
        return None
    if done.returncode != 0:
        return ()
    return tuple(
        (stream.get("tags") or {}).get("language") or "und"
        for stream in streams
        if not (stream.get("disposition") or {}).get("forced")
    )


def embedded_match(languages: Iterable[str], language: str) -> str | None:
    """The tag of the first embedded stream in `language`, if any."""
    return next((tag for tag in languages if tag != "und" and same_language(tag, language)), None)


@dataclass(frozen=True)
class SubtitleFound:
    """What makes a video subtitled in `language`: a sidecar of its own (a name in its folder), else an embedded
    stream (its tag). A record keeps it, so the director can see when it is gone."""

    language: str
    sidecar: str | None = None
    stream: str | None = None

    def reason(self) -> str:
        """One line for records, logs and the director's list."""
        if self.sidecar:
            return f"has a subtitle in {self.language}: {self.sidecar}"
        return f"has an embedded subtitle stream in {self.language} ({self.stream})"


def find_subtitle(video_name: str, sidecars: FolderSidecars, language: str,
                  embedded: Callable[[], Iterable[str]]) -> SubtitleFound | None:  # fmt: skip
    """A subtitle of the video in `language`: its own sidecar, else an embedded stream (`embedded()` is asked only
    when no sidecar matches: it may start ffprobe); None if neither."""
    sidecar = sidecars.matching(video_name, language)
    if sidecar:
        return SubtitleFound(language, sidecar=sidecar)
    tag = embedded_match(embedded(), language)
    return SubtitleFound(language, stream=tag) if tag else None


def existing_subtitle(video: Path, language: str, timeout_s: float = PROBE_TIMEOUT_S) -> SubtitleFound | None:
    """A subtitle of `video` in `language`, or None: reads its folder, probes the file if need be."""
    try:
        names = os.listdir(video.parent)
    except OSError:
        names = []
    return find_subtitle(video.name, FolderSidecars.of(names), language, lambda: probe_embedded_languages(video, timeout_s) or ())
