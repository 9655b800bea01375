"""One job, start to finish, in the job thread: resolve, done-check, decode, stages, write. No network."""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from fleet.job.messages import Fingerprint, SourceFingerprint, TranscriptionJob
from fleet.language import written_language
from fleet.media.streams import AudioStream, StreamChoice, choose_stream, probe_audio_streams, streams_worth_probing
from fleet.outputs.beside import beside_name_problem, beside_video
from fleet.outputs.commit import NAME_REFUSED, ForeignOutput, LeaseLost, OutputPathError, shown_path
from fleet.roots.confine import resolve_inside
from fleet.roots.readiness import dest_problem, source_unavailable
from fleet.settings import FleetSettings
from fleet.state.done import done_check, probe_outputs
from fleet.state.failures import clear_failure_record
from fleet.state.planned_settings import PlannedSettingsReader
from fleet.state.records import COMMIT_KEY, CommitRecord
from worker.audio.samples import Audio, DecodeError, spool_audio
from worker.job.failures import PermanentFailure, TransientFailure
from worker.job.lease import Lease
from worker.job.record import transcribed_record
from worker.job.result import JobResult, Outcome
from worker.job.subtitled import AlreadySubtitled, subtitled_check, write_subtitled_record
from worker.job.writers import write_outputs
from worker.speech.models import ModelError
from worker.speech.pipeline import Pipeline, Transcript

log = structlog.get_logger()


@dataclass
class JobContext:
    """What every job needs from the worker process."""

    settings: FleetSettings
    pipeline: Pipeline
    worker_id: str
    owner: tuple[int, int] | None = None
    planned: PlannedSettingsReader | None = None  # what the director plans now, to skip stale messages


def run_job(
    job: TranscriptionJob, ctx: JobContext, lease: Lease, on_stage: Callable[[str], None],
    on_decoded: Callable[[float], None] = lambda audio_s: None,
) -> JobResult:  # fmt: skip
    """Process one job; never raises for the job's own failures, they come back as a JobResult."""
    fingerprint = None
    try:
        planned = ctx.planned.current() if ctx.planned else None
        stale = planned.superseded(job) if planned else None
        if stale:  # the director has queued this file again with today's settings (or its next round will)
            return JobResult(Outcome.SUPERSEDED, stale)
        source, fingerprint = _locate_source(job, ctx.settings.source_dir)
        if source is None:
            unavailable = source_unavailable(ctx.settings.source_dir, job.path)
            if unavailable:  # the disk, not the file: try again later, never drop the message
                raise TransientFailure(f"source not available: {unavailable}")
            clear_failure_record(ctx.settings.dest_dir, job.path)  # e.g. a last-attempt mark: nothing left to fail
            return JobResult(Outcome.SOURCE_GONE, "source file no longer exists")
        if _already_done(job, ctx.settings.dest_dir, fingerprint, ctx.settings.source_dir):
            clear_failure_record(ctx.settings.dest_dir, job.path)
            return JobResult(Outcome.ALREADY_DONE, fingerprint=fingerprint)
        if job.render_only and _rerender(job, ctx, source, fingerprint, lease, on_stage):
            clear_failure_record(ctx.settings.dest_dir, job.path)
            return JobResult(Outcome.RENDERED, fingerprint=fingerprint)
        if fingerprint.size == 0:
            raise PermanentFailure("empty file")
        too_long = beside_name_problem(job)
        if too_long:  # found now, not after the whole transcription
            raise PermanentFailure(too_long)
        dest_unusable = dest_problem(ctx.settings.dest_dir, ctx.settings.min_free_mb)
        if dest_unusable:  # found now, not after an hour of transcription that cannot be written
            raise TransientFailure(dest_unusable)
        on_stage("decode")
        started = time.perf_counter()
        choice = _choose_stream(job, source, ctx.settings.decode_timeout_s)
        check_subtitled = subtitled_check(job, ctx.settings, source)
        heard = choice.stream.language_code() if choice.stream else None  # the chosen track's tag: what it will hear
        known = job.settings.subtitle_language_known() or (written_language(job.settings.task, heard) if heard else None)
        if check_subtitled and known:
            check_subtitled(known)  # no decoding at all for a film that has the subtitle already
            check_subtitled = None
        with _decode(source, fingerprint, ctx.settings.decode_timeout_s, choice.stream) as audio:
            decode_s = round(time.perf_counter() - started, 3)
            on_decoded(audio.duration_s)
            transcript = ctx.pipeline.run(audio, job.settings, stop_when_lease_lost(lease, on_stage), on_language=check_subtitled)
        on_stage("write")
        record = transcribed_record(job, fingerprint, transcript, ctx.pipeline, ctx.worker_id, choice.record(), audio.duration_s,
                                    decode_s)  # fmt: skip
        written = write_outputs(
            ctx.settings.dest_dir, job.output_base, job.formats, transcript.result, record,
            job.settings.subtitle_options(), lease.held, ctx.owner,
            beside_video(job, ctx.settings.source_dir, transcript.language),
        )  # fmt: skip
        clear_failure_record(ctx.settings.dest_dir, job.path)
        shown = tuple(shown_path(path, ctx.settings.dest_dir, ctx.settings.source_dir) for path in written)
        return JobResult(Outcome.TRANSCRIBED, audio_s=audio.duration_s, fingerprint=fingerprint, language=transcript.language,
                         outputs=shown)  # fmt: skip
    except AlreadySubtitled as exc:
        write_subtitled_record(ctx.settings.dest_dir, job, fingerprint, exc.found, source, ctx.worker_id, ctx.owner)
        return JobResult(Outcome.SUBTITLED, exc.reason, fingerprint=fingerprint, language=exc.language)
    except PermanentFailure as exc:
        return JobResult(Outcome.FAILED, exc.reason, exc.detail, fingerprint=fingerprint)
    except (TransientFailure, ModelError) as exc:
        return JobResult(Outcome.RETRY, str(exc), getattr(exc, "detail", ""), fingerprint=fingerprint)
    except LeaseLost as exc:
        return JobResult(Outcome.LEASE_LOST, str(exc), fingerprint=fingerprint)
    except (OutputPathError, ForeignOutput) as exc:
        return JobResult(Outcome.FAILED, str(exc), fingerprint=fingerprint)
    except OSError as exc:  # dest full, read-only, unwritable: fixable by the user, so retry later
        reason = f"cannot write outputs: {exc.strerror or exc}"
        if exc.errno in NAME_REFUSED:  # the same name is refused every time: no retry can help
            return JobResult(Outcome.FAILED, f"the destination refuses the output name: {exc.strerror}", str(exc),
                             fingerprint=fingerprint)  # fmt: skip
        return JobResult(Outcome.RETRY, reason, str(exc), fingerprint=fingerprint)
    except Exception as exc:  # noqa: BLE001 - an unexpected bug must not kill the worker; retried once, then DLQ
        log.exception("job crashed")
        return JobResult(Outcome.CRASHED, f"unexpected error: {exc!r}"[:300], fingerprint=fingerprint)


def stop_when_lease_lost(lease: Lease, on_stage: Callable[..., None]) -> Callable[..., None]:
    """The stage callback, which the pipeline calls between windows: there, a lost lease stops the job.

    Once the message may be someone else's, every further window is work thrown away while another worker
    does the same file (a five-hour file would run twice).
    """

    def checked(stage: str, progress: float | None = None) -> None:
        if not lease.held():
            raise LeaseLost(f"lease lost during {stage}: the message may be with another worker; stopped")
        on_stage(stage, progress)

    return checked


def _rerender(job: TranscriptionJob, ctx: JobContext, source: Path, fingerprint: SourceFingerprint, lease: Lease,
              on_stage: Callable[..., None]) -> bool:  # fmt: skip
    """Rewrite the outputs from the JSON on disk when it holds this transcript's words; False: transcribe instead.

    Where only the speaker settings differ, the speakers are labelled anew on the JSON's words (the
    audio is decoded for the diarizer, the speech model does not run).
    """
    existing = resolve_inside(ctx.settings.dest_dir, f"{job.output_base}.json")  # never read outside dest
    try:
        if existing is None:
            return False
        document = json.loads(existing.read_text(encoding="utf-8"))
        old = CommitRecord.model_validate(document[COMMIT_KEY])
    except (OSError, ValueError, KeyError, TypeError):
        return False  # gone or unreadable since the director looked: the full job makes it right
    if (old.source, old.fingerprint) != (job.path, fingerprint):
        return False
    result = {key: value for key, value in document.items() if key != COMMIT_KEY}
    update: dict[str, object] = {}
    if old.transcript_key != job.settings.transcript_key():
        if old.words_key != job.settings.words_key():
            return False
        relabelled = _relabel(job, ctx, source, fingerprint, result, on_stage)
        update = {"diarization": relabelled.diarization, "speakers": relabelled.speakers,
                  "stage_s": {**{k: v for k, v in old.stage_s.items() if k != "diarize"}, **relabelled.stage_s}}  # fmt: skip
    on_stage("write")
    record = old.model_copy(update={**update, "settings": job.settings, "settings_key": job.settings.key(),
                                    "transcript_key": job.settings.transcript_key(), "words_key": job.settings.words_key(),
                                    "rendered_at": time.time(), "rendered_by": ctx.worker_id})  # fmt: skip
    write_outputs(ctx.settings.dest_dir, job.output_base, job.formats, result, record, job.settings.subtitle_options(),
                  lease.held, ctx.owner, beside_video(job, ctx.settings.source_dir, old.language))  # fmt: skip
    return True


def _relabel(job: TranscriptionJob, ctx: JobContext, source: Path, fingerprint: SourceFingerprint,
             result: dict[str, Any], on_stage: Callable[..., None]) -> Transcript:  # fmt: skip
    """Speakers labelled anew (or removed) on the words of `result`, the audio decoded only when speakers are asked."""
    if not job.settings.diarize:
        return ctx.pipeline.relabel(result, None, job.settings)
    on_stage("decode")
    stream = _choose_stream(job, source, ctx.settings.decode_timeout_s).stream
    with _decode(source, fingerprint, ctx.settings.decode_timeout_s, stream) as audio:
        on_stage("diarize")
        return ctx.pipeline.relabel(result, audio, job.settings)


def _choose_stream(job: TranscriptionJob, source: Path, timeout_s: float) -> StreamChoice:
    """The audio stream to transcribe: the one in the job's language where a video has several, else the default."""
    wanted = job.settings.audio_language
    streams = probe_audio_streams(source, timeout_s) if streams_worth_probing(source, wanted) else []
    return choose_stream(streams, wanted)


def _locate_source(job: TranscriptionJob, source_root: Path) -> tuple[Path | None, SourceFingerprint | None]:
    """The real source path and its current fingerprint; refuses anything outside the source root."""
    source = resolve_inside(source_root, job.path)
    if source is None:
        if os.path.lexists(Path(source_root) / job.path):
            raise PermanentFailure("path leaves the source folder (symlink)")
        return None, None
    try:
        info = os.stat(source)
    except FileNotFoundError:
        return None, None
    except OSError as exc:  # EIO, ESTALE, EACCES: the share or its permissions, not our outputs
        raise TransientFailure(f"source not readable: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise PermanentFailure("not a regular file")
    fingerprint = SourceFingerprint(size=info.st_size, mtime_ns=info.st_mtime_ns)
    if fingerprint != job.fingerprint:
        log.info("source changed since it was queued: transcribing the current version")
    return source, fingerprint


def _already_done(job: TranscriptionJob, dest: Path, fingerprint: SourceFingerprint, source_root: Path) -> bool:
    """The director's done-check, for this one output base (a duplicate delivery is harmless)."""
    state = probe_outputs(dest, [job.output_base], job.formats, source_root).get(job.output_base)
    return done_check(job.path, fingerprint.value(), job.settings.key(), frozenset(job.formats), state).done


def _decode(source: Path, fingerprint: SourceFingerprint, timeout_s: float, stream: AudioStream | None) -> Audio:
    """Decode into a spool (the caller closes it), and make sure the file did not change while it was read."""
    try:
        audio = spool_audio(source, timeout_s, None if stream is None else stream.index)
    except DecodeError as exc:
        if exc.transient:
            raise TransientFailure(exc.reason, exc.stderr_tail) from exc
        # A file still being copied in decodes as a broken one: only an unchanged file has really failed.
        changed = _changed_since(source, fingerprint)
        if changed:
            raise TransientFailure(changed, exc.stderr_tail) from exc
        raise PermanentFailure(exc.reason, exc.stderr_tail) from exc
    changed = _changed_since(source, fingerprint)
    if changed:
        audio.close()
        raise TransientFailure(changed)
    return audio


def _changed_since(source: Path, fingerprint: SourceFingerprint) -> str | None:
    """Why the file is not the version that was fingerprinted before decoding, if it is not."""
    try:
        after = os.stat(source)
    except FileNotFoundError:
        return "source file disappeared while it was read"
    if Fingerprint.of(after) != fingerprint.value():
        return "source file changed while it was read"
    return None
