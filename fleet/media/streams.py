"""Which audio stream of a file to transcribe: the one in the wanted language, else the default one."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from fleet.language import same_language
from fleet.media.extensions import MULTI_TRACK_EXTENSIONS, extension
from fleet.media.probe import run_bounded


@dataclass(frozen=True)
class AudioStream:
    """One audio stream as ffprobe lists it; `index` is its stream number in the file."""

    index: int
    language: str | None  # the tag as written (ger, deu, de ...), None when untagged
    default: bool
    title: str | None = None

    def language_code(self) -> str | None:
        """The tag as a language (`ger` -> `de`); None when untagged or no language (`und`, a typo)."""
        from fleet.media.layout import sidecar_token_language

        return sidecar_token_language(self.language) if self.language else None


@dataclass(frozen=True)
class StreamChoice:
    """The stream to decode and why; `stream` None means ffmpeg's first audio stream (nothing to probe)."""

    stream: AudioStream | None
    why: str

    def record(self) -> dict[str, object] | None:
        """What the JSON says about it, for files with more than one audio stream or a wanted language."""
        if self.stream is None:
            return None
        return {"index": self.stream.index, "language": self.stream.language, "why": self.why}




def streams_worth_probing(path: Path, wanted_language: str | None) -> bool:
    """Whether the file may hold a choice of audio streams that matters (else a probe, ~50 ms, a process, is skipped)."""
    return wanted_language is not None or extension(path.name) in MULTI_TRACK_EXTENSIONS


def probe_audio_streams(path: Path, timeout_s: float) -> list[AudioStream]:
    """The file's audio streams; [] when ffprobe cannot tell (decoding then reports what is wrong)."""
    command = ["ffprobe", "-v", "error", "-select_streams", "a", "-show_entries",
               "stream=index:stream_tags=language,title:stream_disposition=default", "-of", "json", str(path)]  # fmt: skip
    try:
        result = run_bounded(command, timeout_s)
        streams = json.loads(result.stdout or b"{}").get("streams", []) if result else []
    except (OSError, ValueError):
        return []
    return [
        AudioStream(
            index=int(s["index"]),
            language=(s.get("tags") or {}).get("language"),
            default=bool((s.get("disposition") or {}).get("default")),
            title=(s.get("tags") or {}).get("title"),
        )
        for s in streams
    ]


def choose_stream(streams: list[AudioStream], wanted_language: str | None) -> StreamChoice:
    """The first stream in the wanted language, else the default-flagged one, else the first."""
    if len(streams) <= 1 and wanted_language is None:
        return StreamChoice(None, "only audio stream")
    if wanted_language is not None:
        for stream in streams:
            if same_language(stream.language, wanted_language):
                return StreamChoice(stream, f"language {wanted_language}")
    if not streams:
        return StreamChoice(None, "no audio stream listed")
    fallback = "" if wanted_language is None else f"no {wanted_language} stream; "
    for stream in streams:
        if stream.default:
            return StreamChoice(stream, f"{fallback}default stream")
    return StreamChoice(streams[0], f"{fallback}first stream")
