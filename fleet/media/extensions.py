"""Which files are recordings, by extension (lower case, no dot): the one list the scan, the media layout and the worker read."""

from __future__ import annotations

AUDIO_EXTENSIONS = frozenset(
    "mp3 wav m4a m4b flac ogg oga opus aac wma aiff aif aifc amr mp2 mpga mka ac3 eac3 wv ape caf au spx".split()
)
# What media servers list as films and episodes: the media layout writes subtitles beside these.
VIDEO_EXTENSIONS = frozenset("mp4 m4v mkv mov webm avi wmv flv mpg mpeg ts mts m2ts 3gp 3g2 ogv vob asf divx rmvb".split())
MEDIA_EXTENSIONS = AUDIO_EXTENSIONS | VIDEO_EXTENSIONS
# Containers that commonly carry several audio tracks (films, recordings of broadcasts, Matroska audio).
MULTI_TRACK_EXTENSIONS = VIDEO_EXTENSIONS | {"mka"}


def extension(name: str) -> str:
    """`Film.MKV` -> `mkv`; '' for a name without one (a leading dot starts no extension)."""
    dot = name.rfind(".")
    return name[dot + 1 :].lower() if dot > 0 else ""
