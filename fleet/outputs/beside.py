"""Where the media layout puts a video's subtitles: `Film.en.srt` beside `Film.mkv`, inside the source root."""

from __future__ import annotations

import os
from pathlib import Path

from fleet.job.messages import TranscriptionJob
from fleet.language import written_language
from fleet.media.output_names import NAME_MAX
from fleet.outputs.commit import BesideVideo, OutputPathError
from fleet.roots.confine import resolve_inside

LONGEST_LANGUAGE = "haw"  # a language token is two letters, or three where there is no two-letter code


def beside_video(job: TranscriptionJob, source_dir: Path, spoken: str) -> BesideVideo | None:
    """The subtitle paths beside this job's video for the language spoken; None in the mirror layout (or for audio)."""
    media = job.settings.media
    formats = [fmt for fmt in media.beside(job.path) if fmt in job.formats] if media else []
    if not formats:
        return None
    language = written_language(job.settings.task, spoken)
    paths = {}
    for fmt in formats:
        path = resolve_inside(source_dir, media.subtitle_rel(job.path, language, fmt))
        if path is None:
            raise OutputPathError(f"the subtitle beside {job.path} would leave the source folder (symlink)")
        paths[fmt] = path
    return BesideVideo(Path(os.path.realpath(source_dir)), paths)


def beside_name_problem(job: TranscriptionJob) -> str | None:
    """Why a subtitle cannot be written beside this job's video under any language's name (longer than a file name
    may be), found before any transcription; None when it fits or nothing goes beside the video."""
    media = job.settings.media
    formats = [fmt for fmt in media.beside(job.path) if fmt in job.formats] if media else []
    for fmt in formats:
        folder, _, name = media.subtitle_rel(job.path, LONGEST_LANGUAGE, fmt).rpartition("/")
        size = len(name.encode("utf-8"))
        if size > NAME_MAX:
            return (f"the subtitle beside {job.path} would be named {size} bytes long, over the {NAME_MAX} a file name may "
                    f"have: shorten the video's name in {folder or 'the source folder'}, or use FLEET_LAYOUT=mirror")  # fmt: skip
    return None
