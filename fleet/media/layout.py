"""The media layout: a video's subtitle beside it as `<stem>[.<tag>].<lang>.srt`, where Jellyfin, Plex, Emby and Kodi look.

The tag goes before the language because Plex and Emby read the language from the last name part before the
extension, Jellyfin from any part (the others become the track title), Kodi from the first part that is a
language: `Film.whisper.en.srt` is English to all four. Audio-only files keep all their outputs in the
destination's mirror (media servers show no external subtitles for music or audiobooks).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

from fleet.language import language_code_or_none
from fleet.media.extensions import VIDEO_EXTENSIONS, extension

LanguageCodes = Literal["639-1", "639-2b", "639-2t"]
SUBTITLE_FORMATS = ("srt", "vtt")
# Name parts media servers and Bazarr read as subtitle flags, not languages: a tag may not be one of them.
SUBTITLE_FLAGS = frozenset({"forced", "foreign", "sdh", "cc", "hi", "default", "full"})
_TAG = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class MediaLayout(BaseModel):
    """How subtitles are named beside their videos; part of a job's settings (the worker writes what the director planned)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    codes: LanguageCodes = "639-1"
    tag: str | None = None
    formats: tuple[Literal["srt", "vtt"], ...] = ("srt",)
    # Not part of any key: it decides whether a file is transcribed at all, never what a transcript says.
    skip_subtitled: bool = True

    @field_validator("tag")
    @classmethod
    def _tag_is_no_language(cls, tag: str | None) -> str | None:
        """A tag that reads as a language or a flag would change what the media server shows."""
        if tag is None:
            return None
        if not _TAG.match(tag):
            raise ValueError(f"media tag {tag!r}: use letters, digits, '-' or '_' (e.g. whisper)")
        if tag.lower() in SUBTITLE_FLAGS or sidecar_token_language(tag) is not None:
            raise ValueError(f"media tag {tag!r} reads as a language or a subtitle flag: choose another (e.g. whisper)")
        return tag

    @field_validator("formats")
    @classmethod
    def _at_least_one(cls, formats: tuple[str, ...]) -> tuple[str, ...]:
        if not formats:
            raise ValueError("at least one subtitle format (srt or vtt) goes beside the videos")
        return tuple(f for f in SUBTITLE_FORMATS if f in formats)

    def beside(self, source_rel: str) -> tuple[str, ...]:
        """The formats written beside this source: the subtitle formats for a video, none for audio."""
        return self.formats if is_video_name(source_rel) else ()

    def subtitle_rel(self, source_rel: str, language: str, fmt: str) -> str:
        """`Films/Film (2001).mkv`, `en`, `srt` -> `Films/Film (2001)[.tag].en.srt` (relative to the source root)."""
        folder, sep, name = source_rel.rpartition("/")
        stem = name.rpartition(".")[0] or name
        tag = f".{self.tag}" if self.tag else ""
        return f"{folder}{sep}{stem}{tag}.{language_in_style(language, self.codes)}.{fmt}"


def is_video_name(rel: str) -> bool:
    """Whether a source is a video by its extension (what media servers list as films and episodes)."""
    return extension(rel.rpartition("/")[2]) in VIDEO_EXTENSIONS


def language_in_style(language: str, codes: LanguageCodes) -> str:
    """`de` -> `de` (639-1), `ger` (639-2/B) or `deu` (639-2/T); a language without a 2-letter code keeps 3 letters."""
    import langcodes

    parsed = langcodes.Language.get(language)
    if codes == "639-2b":
        return parsed.to_alpha3(variant="B")
    if codes == "639-2t":
        return parsed.to_alpha3()
    return parsed.language or language


def sidecar_token_language(token: str) -> str | None:
    """The language one name part stands for (`en`, `eng`, `ger`, `pt-BR`, `English`), normalized; None if none."""
    import langcodes

    lowered = token.lower()
    if len(lowered) > 3 and "-" not in lowered:
        try:
            return language_code_or_none(lowered)  # a language name whisper knows: English, German ...
        except ValueError:
            return None
    try:
        parsed = langcodes.Language.get(lowered)
    except (ValueError, LookupError):
        return None
    return parsed.language if parsed.language and parsed.is_valid() and lowered != "und" else None
