"""Whether a video already has a subtitle in a language: a sidecar file in any naming style, or an embedded stream.

Forced subtitles (only the foreign-language lines of a film) do not count: a viewer who needs subtitles still has none.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path

from fleet.language import same_language
from fleet.media.layout import SUBTITLE_FLAGS, sidecar_token_language

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


def matching_sidecar(video_name: str, names: Iterable[str], language: str) -> str | None:
    """The first file in `names` that is a full `language` subtitle of the video `video_name`."""
    stem = video_name.rpartition(".")[0] or video_name
    for name in sorted(names):
        found = sidecar_language(stem, name)
        if found is not None and same_language(found, language):
            return name
    return None


def probe_embedded_languages(path: Path, timeout_s: float = PROBE_TIMEOUT_S) -> tuple[str, ...] | None:
    """The languages of the file's full (not forced) subtitle streams, as tagged; () for a file ffprobe cannot read
    (it has no subtitle anyone can show); None when ffprobe cannot run or times out (ask again later)."""
    command = ["ffprobe", "-v", "error", "-select_streams", "s", "-show_entries",
               "stream=index:stream_tags=language:stream_disposition=forced", "-of", "json", str(path)]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout_s, check=False)
        streams = json.loads(done.stdout or b"{}").get("streams", [])
    except (OSError, subprocess.TimeoutExpired, ValueError):
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


def subtitled_reason(video_name: str, folder_names: Iterable[str], language: str,
                     embedded: Callable[[], Iterable[str]]) -> str | None:  # fmt: skip
    """Why a video counts as subtitled in `language`: a sidecar among `folder_names`, else an embedded stream
    (`embedded()` is asked only when no sidecar matches: it may start ffprobe); None if neither."""
    sidecar = matching_sidecar(video_name, folder_names, language)
    if sidecar:
        return f"has a subtitle in {language}: {sidecar}"
    tag = embedded_match(embedded(), language)
    return f"has an embedded subtitle stream in {language} ({tag})" if tag else None


def existing_subtitle(video: Path, language: str, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """Why `video` counts as subtitled in `language`, or None: reads its folder, probes the file if need be."""
    try:
        names = os.listdir(video.parent)
    except OSError:
        names = []
    return subtitled_reason(video.name, names, language, lambda: probe_embedded_languages(video, timeout_s) or ())
