"""Staging one job's audio for a remote worker: what a local worker would decide from the files, then the FLAC.

The audio travels as 16 kHz mono 16-bit FLAC of the track a local worker would take: lossless against what a
local worker decodes (the same samples reach the model), and a fraction of a film's size (~1 MB per minute).
"""

from __future__ import annotations

import os
import stat
import tempfile
import time
from pathlib import Path

import structlog

from fleet.job.messages import Fingerprint, SourceFingerprint, TranscriptionJob
from fleet.media.probe import run_bounded
from fleet.media.streams import choose_stream, probe_audio_streams, streams_worth_probing
from fleet.roots.confine import resolve_inside
from fleet.roots.readiness import source_unavailable
from fleet.settings import FleetSettings
from fleet.state.done import done_check, probe_outputs
from fleet.state.planned_settings import PlannedSettingsReader
from fleet.transfer.documents import put_document
from fleet.transfer.protocol import StagedAudio, StagedOutcome, TransferKeys
from fleet.transport.objects import ObjectStore, ObjectTooLarge

log = structlog.get_logger()
SAMPLE_RATE = 16000  # whisper's; what a local worker decodes to
STDERR_LINES = 3


def stage_job(job: TranscriptionJob, settings: FleetSettings, store: ObjectStore, keys: TransferKeys, scratch: Path,
              planned: PlannedSettingsReader) -> StagedAudio:  # fmt: skip
    """Decide, encode and upload; the manifest goes last. ObjectStoreError propagates (the caller retries the request)."""
    staged = _staged_or_why_not(job, settings, keys, store, scratch, planned)
    put_document(store, keys.staged(job), staged, scratch)
    what = "audio staged for a remote worker" if staged.outcome is StagedOutcome.STAGED else "nothing to stage"
    log.info(what, file=job.path, outcome=staged.outcome.value, reason=staged.reason or None, mb=round(staged.size / 2**20, 1))
    return staged


def _staged_or_why_not(job: TranscriptionJob, settings: FleetSettings, keys: TransferKeys, store: ObjectStore, scratch: Path,
                       planned: PlannedSettingsReader) -> StagedAudio:  # fmt: skip
    now = time.time()
    current = planned.current()
    stale = current.superseded(job) if current else None
    if stale:
        return StagedAudio(outcome=StagedOutcome.SUPERSEDED, reason=stale, staged_at=now)
    source = resolve_inside(settings.source_dir, job.path)
    info = _stat(source)
    if source is None or info is None:
        unavailable = source_unavailable(settings.source_dir, job.path)
        if unavailable:  # the disk, not the file: the worker tries again later
            return StagedAudio(outcome=StagedOutcome.UNAVAILABLE, reason=f"source not available: {unavailable}", staged_at=now)
        return StagedAudio(outcome=StagedOutcome.SOURCE_GONE, reason="source file no longer exists", staged_at=now)
    if not stat.S_ISREG(info.st_mode):
        return StagedAudio(outcome=StagedOutcome.FAILED, reason="not a regular file", staged_at=now)
    fingerprint = SourceFingerprint(size=info.st_size, mtime_ns=info.st_mtime_ns)
    if is_done(job, fingerprint, settings):
        return StagedAudio(outcome=StagedOutcome.ALREADY_DONE, fingerprint=fingerprint, staged_at=now)
    if fingerprint.size == 0:
        return StagedAudio(outcome=StagedOutcome.FAILED, reason="empty file", fingerprint=fingerprint, staged_at=now)
    wanted = job.settings.audio_language
    streams = probe_audio_streams(source, settings.decode_timeout_s) if streams_worth_probing(source, wanted) else []
    choice = choose_stream(streams, wanted)
    flac = Path(tempfile.mkstemp(dir=scratch, prefix="stage-", suffix=".flac")[1])  # never shared by two stagings
    try:
        failure = _encode(source, None if choice.stream is None else choice.stream.index, flac, settings.decode_timeout_s)
        after = _stat(source)
        if after is None or Fingerprint.of(after) != fingerprint.value():  # still being copied in: not the file's fault
            return StagedAudio(outcome=StagedOutcome.UNAVAILABLE, reason="source file changed while it was read", staged_at=now)
        if failure:
            return StagedAudio(outcome=StagedOutcome.FAILED, reason=failure[0], detail=failure[1], fingerprint=fingerprint,
                               staged_at=now)  # fmt: skip
        try:
            stored = store.put_file(keys.audio(job), flac)
        except ObjectTooLarge as exc:
            return StagedAudio(outcome=StagedOutcome.FAILED, reason=f"staged audio too large: {exc}", fingerprint=fingerprint,
                               staged_at=now)  # fmt: skip
    finally:
        flac.unlink(missing_ok=True)
    return StagedAudio(outcome=StagedOutcome.STAGED, fingerprint=fingerprint, audio_stream=choice.record(), sha256=stored.sha256,
                       size=stored.size, staged_at=now)  # fmt: skip


def is_done(job: TranscriptionJob, fingerprint: SourceFingerprint, settings: FleetSettings) -> bool:
    """The director's done-check for this job's one output base: its outputs are in DEST_DIR for this version."""
    state = probe_outputs(settings.dest_dir, [job.output_base], job.formats, settings.source_dir).get(job.output_base)
    return done_check(job.path, fingerprint.value(), job.settings.key(), frozenset(job.formats), state).done


def _stat(path: Path | None) -> os.stat_result | None:
    if path is None:
        return None
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


def _encode(source: Path, stream_index: int | None, flac: Path, timeout_s: float) -> tuple[str, str] | None:
    """ffmpeg to 16 kHz mono s16 FLAC; (reason, stderr tail) when the file cannot be decoded, None when it was."""
    stream = "0:a:0" if stream_index is None else f"0:{stream_index}"
    command = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(source), "-map", stream,
        "-vn", "-sn", "-dn", "-ac", "1", "-ar", str(SAMPLE_RATE), "-sample_fmt", "s16", "-c:a", "flac", str(flac),
    ]  # fmt: skip
    result = run_bounded(command, timeout_s)  # a stalled share must not hold a staging thread past the limit
    if result is None:
        return f"decoding took longer than {timeout_s:.0f} s", ""
    stderr = result.stderr.decode("utf-8", "replace").strip()
    if result.returncode != 0 or not flac.exists() or flac.stat().st_size == 0:
        tail = stderr.splitlines()[-STDERR_LINES:]
        if "matches no streams" in stderr:
            return "no audio stream", "\n".join(tail)
        return "not decodable (corrupt or not a media file)", "\n".join(tail)
    return None
