"""Skip what is subtitled, the worker's side: after the language is known, stop if the video has that subtitle."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from fleet.job.messages import SourceFingerprint, TranscriptionJob
from fleet.language import written_language
from fleet.media.subtitles import SubtitleFound, existing_subtitle
from fleet.roots.confine import resolve_inside
from fleet.settings import FleetSettings
from fleet.state.atomic import write_atomic
from fleet.state.paths import subtitled_record_path
from fleet.state.records import SubtitledRecord


class AlreadySubtitled(Exception):
    """The video has a subtitle in the language the fleet would write: it is not transcribed."""

    def __init__(self, found: SubtitleFound) -> None:
        super().__init__(found.reason())
        self.found, self.reason, self.language = found, found.reason(), found.language


def subtitled_check(job: TranscriptionJob, settings: FleetSettings, video: Path) -> Callable[[str], None] | None:
    """In the media layout with skipping on, for a video with no transcript yet: a check that raises AlreadySubtitled."""
    media = job.settings.media
    if media is None or not media.skip_subtitled or not media.beside(job.path):
        return None
    existing = resolve_inside(settings.dest_dir, f"{job.output_base}.json")
    if existing is not None and existing.exists():
        return None  # transcribed before (other settings): kept up to date, whatever else subtitles the video

    def check(language: str) -> None:
        target = written_language(job.settings.task, language)
        found = existing_subtitle(video, target, settings.decode_timeout_s)
        if found:
            raise AlreadySubtitled(found)

    return check


def write_subtitled_record(dest: Path, job: TranscriptionJob, fingerprint: SourceFingerprint | None, found: SubtitleFound,
                           video: Path, worker_id: str, owner: tuple[int, int] | None = None) -> None:  # fmt: skip
    """Why this version of the video was not transcribed, and what that relied on; the director then plans it as
    subtitled for as long as that holds."""
    sidecar_fingerprint = None
    if found.sidecar:
        try:
            stat = (video.parent / found.sidecar).stat()
            sidecar_fingerprint = SourceFingerprint(size=stat.st_size, mtime_ns=stat.st_mtime_ns)
        except OSError:
            return  # gone already: no record, so the next round plans the video again
    record = SubtitledRecord(source=job.path, fingerprint=fingerprint or job.fingerprint, settings_key=job.settings.key(),
                             reason=found.reason(), language=found.language, at=time.time(), worker=worker_id,
                             sidecar=found.sidecar, sidecar_fingerprint=sidecar_fingerprint, stream=found.stream)  # fmt: skip
    write_atomic(subtitled_record_path(dest, job.path), record.model_dump_json(indent=2), owner=owner)
