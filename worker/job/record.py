"""The commit record of a transcribed job, as every JSON carries it: what was heard, how, by whom."""

from __future__ import annotations

import time
from importlib.metadata import version
from typing import Any

from fleet import __version__
from fleet.job.messages import SourceFingerprint, TranscriptionJob
from fleet.state.records import CommitRecord, LanguageCandidate
from worker.speech.pipeline import Pipeline, Transcript


def transcribed_record(job: TranscriptionJob, fingerprint: SourceFingerprint, transcript: Transcript, pipeline: Pipeline,
                       worker_id: str, audio_stream: dict[str, Any] | None, audio_s: float,
                       decode_s: float) -> CommitRecord:  # fmt: skip
    """The record for `transcript` of this version of the job's file (outputs and kept are filled in when written)."""
    return CommitRecord(
        source=job.path,
        fingerprint=fingerprint,
        settings_key=job.settings.key(),
        transcript_key=job.settings.transcript_key(),
        words_key=job.settings.words_key(),
        settings=job.settings,
        model=pipeline.model_name,
        model_path=pipeline.model_path,
        device=pipeline.device,
        language=transcript.language,
        language_probability=transcript.language_probability,
        language_candidates=[LanguageCandidate(language=code, probability=p) for code, p in transcript.language_candidates],
        language_source=str(transcript.language_source),
        loops=transcript.loops,
        audio_stream=audio_stream,
        alignment=transcript.alignment,
        diarization=transcript.diarization,
        speakers=transcript.speakers,
        audio_duration_s=round(audio_s, 3),
        stage_s={"decode": decode_s, **transcript.stage_s},
        worker=worker_id,
        fleet_version=__version__,
        whisperx_version=version("whisperx"),
        finished_at=time.time(),
    )
