"""One job on a remote worker: the staged audio from the bucket, the same stages, the outputs back to the bucket.

The home side decided what a local worker decides from the files (gone, done, superseded, which audio track,
undecodable) when it staged the audio; its manifest says which. Outputs are rendered here (whisperX's writers)
and committed at home, where the "never over a file the fleet did not write" rule can see DEST_DIR.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import structlog

from fleet.job.messages import TranscriptionJob
from fleet.outputs.beside import beside_name_problem
from fleet.outputs.commit import LeaseLost
from fleet.transfer.protocol import ResultBundle, StagedOutcome
from worker.audio.samples import DecodeError, SpooledAudio, spool_audio
from worker.job.failures import PermanentFailure, TransientFailure
from worker.job.lease import Lease
from worker.job.record import transcribed_record
from worker.job.result import JobResult, Outcome
from worker.job.run import JobContext, stop_when_lease_lost
from worker.job.writers import render
from worker.remote.transfer import RemoteTransfer
from worker.speech.models import ModelError

log = structlog.get_logger()
# What a manifest without audio means for the job, as a local worker would have ended it.
NOT_STAGED = {StagedOutcome.SOURCE_GONE: Outcome.SOURCE_GONE, StagedOutcome.ALREADY_DONE: Outcome.ALREADY_DONE,
              StagedOutcome.SUPERSEDED: Outcome.SUPERSEDED}  # fmt: skip


def run_remote_job(
    job: TranscriptionJob, ctx: JobContext, lease: Lease, on_stage: Callable[..., None],
    on_decoded: Callable[[float], None] = lambda audio_s: None, *, transfer: RemoteTransfer,
) -> JobResult:  # fmt: skip
    """Process one job through the bucket; never raises for the job's own failures (as run_job)."""
    try:
        too_long = beside_name_problem(job)
        if too_long:  # before the audio crosses the network
            raise PermanentFailure(too_long)
        on_stage("fetch")
        fetch_started = time.perf_counter()
        staged = transfer.await_staged(job, lease)
        if staged.outcome is not StagedOutcome.STAGED:
            transfer.forget_staged(job)  # consumed: a later delivery asks again, and the home side looks afresh
            if staged.outcome in NOT_STAGED:
                return JobResult(NOT_STAGED[staged.outcome], staged.reason, fingerprint=staged.fingerprint)
            if staged.outcome is StagedOutcome.FAILED:
                raise PermanentFailure(staged.reason, staged.detail)
            raise TransientFailure(staged.reason or "the home side could not stage the audio")
        assert staged.fingerprint is not None  # a staged manifest always carries the version it encoded
        flac = transfer.fetch_audio(job, staged)
        fetch_s = round(time.perf_counter() - fetch_started, 3)  # asking, waiting for the staging, downloading
        try:
            on_stage("decode")
            started = time.perf_counter()
            with _decode(flac, ctx.settings.decode_timeout_s) as audio:
                decode_s = round(time.perf_counter() - started, 3)
                on_decoded(audio.duration_s)
                # No subtitle check here: the sidecars are at home, where the commit keeps any subtitle not the fleet's.
                transcript = ctx.pipeline.run(audio, job.settings, stop_when_lease_lost(lease, on_stage))
                audio_s = audio.duration_s
        finally:
            flac.unlink(missing_ok=True)
        on_stage("write")
        record = transcribed_record(job, staged.fingerprint, transcript, ctx.pipeline, ctx.worker_id, staged.audio_stream,
                                    audio_s, decode_s)  # fmt: skip
        record = record.model_copy(update={"stage_s": {"fetch": fetch_s, **record.stage_s}})
        options = job.settings.subtitle_options()
        rendered = {fmt: render(transcript.result, fmt, options) for fmt in job.formats if fmt != "json"}
        if not lease.held():
            raise LeaseLost("lease lost before the outputs were handed back: the message may be with another worker")
        transfer.hand_back_result(job, ResultBundle(record=record, result=transcript.result, rendered=rendered), audio_s)
        return JobResult(Outcome.TRANSCRIBED, audio_s=audio_s, fingerprint=staged.fingerprint, language=transcript.language)
    except PermanentFailure as exc:
        return JobResult(Outcome.FAILED, exc.reason, exc.detail)
    except (TransientFailure, ModelError) as exc:
        return JobResult(Outcome.RETRY, str(exc), getattr(exc, "detail", ""))
    except LeaseLost as exc:
        return JobResult(Outcome.LEASE_LOST, str(exc))
    except OSError as exc:  # the scratch disk: full, gone
        return JobResult(Outcome.RETRY, f"scratch space: {exc.strerror or exc}", str(exc))
    except Exception as exc:  # noqa: BLE001 - an unexpected bug must not kill the worker; retried once, then DLQ
        log.exception("job crashed")
        return JobResult(Outcome.CRASHED, f"unexpected error: {exc!r}"[:300])


def _decode(flac: Path, timeout_s: float) -> SpooledAudio:
    """The staged FLAC into a spool; it was verified, so a failure here is this machine's, worth another try."""
    try:
        return spool_audio(flac, timeout_s)
    except DecodeError as exc:
        raise TransientFailure(f"staged audio did not decode: {exc.reason}", exc.stderr_tail) from exc
