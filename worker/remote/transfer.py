"""The remote worker's side of the transfer: ask for a job's audio, fetch it verified, hand back the outputs."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import structlog

from fleet.job.messages import TranscriptionJob
from fleet.outputs.commit import LeaseLost
from fleet.state.records import FailureRecord
from fleet.transfer.documents import get_document, put_document
from fleet.transfer.protocol import FailureReady, ResultBundle, ResultReady, StagedAudio, StageRequest, TransferKeys, outgoing
from fleet.transport.objects import ObjectCorrupt, ObjectMissing, ObjectStore, ObjectStoreError, StoreUnavailable
from fleet.transport.queue import QUEUE_GONE_CODES, JobQueue, QueueError
from worker.job.failures import TransientFailure
from worker.job.lease import Lease

log = structlog.get_logger()
# How long a worker holds a message while the home side has not staged its audio: the home side answers in
# seconds (plus the encoding of a long film); longer means it is down, and the message goes back for later.
STAGE_WAIT_S = 900.0
# A request the home side may have missed (it restarted, the transfer queue was recreated) is sent again.
REQUEST_AGAIN_S = 60.0
# The home side answers within a second for a short file: look often at first, then every few seconds.
POLL_FAST_S = 0.25
POLL_FAST_FOR_S = 30.0
POLL_SLOW_S = 2.0


@dataclass
class RemoteTransfer:
    """The bucket, its keys, the transfer queue and a scratch folder on this machine."""

    store: ObjectStore
    keys: TransferKeys
    queue: JobQueue
    scratch: Path
    worker_id: str
    stage_wait_s: float = STAGE_WAIT_S

    def await_staged(self, job: TranscriptionJob, lease: Lease) -> StagedAudio:
        """The home side's manifest for this job, asking for it once it is not there; TransientFailure when it never comes."""
        started = time.monotonic()
        requested_at: float | None = None
        while True:
            if not lease.held():
                raise LeaseLost("lease lost while waiting for the audio to be staged: stopped")
            staged = self._manifest(job)
            if staged is not None:
                return staged
            now = time.monotonic()
            if requested_at is None or now - requested_at >= REQUEST_AGAIN_S:
                self._send(StageRequest(job=job, worker=self.worker_id))
                log.info("audio not staged yet: asked the home side for it")
                requested_at = now
            if now - started >= self.stage_wait_s:
                raise TransientFailure(f"the home side did not stage the audio within {self.stage_wait_s / 60:.0f} min "
                                       "(is the watching director running with FLEET_TRANSFER_BUCKET?)")  # fmt: skip
            time.sleep(POLL_FAST_S if now - started < POLL_FAST_FOR_S else POLL_SLOW_S)

    def _manifest(self, job: TranscriptionJob) -> StagedAudio | None:
        key = self.keys.staged(job)
        try:
            return get_document(self.store, key, StagedAudio, self.scratch)
        except ObjectMissing:
            return None
        except ObjectCorrupt as exc:  # a torn or foreign manifest: drop it, the home side stages again
            log.warning("staged manifest unusable: asking again", error=str(exc))
            self.forget_staged(job)
            return None
        except ObjectStoreError as exc:
            raise TransientFailure(f"transfer bucket unavailable: {exc}") from exc

    def fetch_audio(self, job: TranscriptionJob, staged: StagedAudio) -> Path:
        """The staged FLAC in scratch, whole and verified against the manifest; TransientFailure otherwise."""
        path = self.scratch / f"{job.dedup_id()}.flac"
        try:
            stored = self.store.get_file(self.keys.audio(job), path)
        except (ObjectMissing, ObjectCorrupt) as exc:  # gone (LocalStack restarted) or damaged: staged again next time
            self.forget_staged(job)
            raise TransientFailure(f"staged audio unusable, asked to be staged again: {exc}") from exc
        except ObjectStoreError as exc:
            raise TransientFailure(f"transfer bucket unavailable: {exc}") from exc
        if stored.sha256 != staged.sha256:
            path.unlink(missing_ok=True)
            self.forget_staged(job)
            raise TransientFailure("staged audio does not match its manifest (staged twice?): asked to be staged again")
        return path

    def forget_staged(self, job: TranscriptionJob) -> None:
        """Drop the manifest (and the audio), so the next attempt asks the home side afresh."""
        for key in (self.keys.staged(job), self.keys.audio(job)):
            try:
                self.store.delete(key)
            except ObjectStoreError as exc:
                log.warning("could not delete a staged object", key=key, error=str(exc))

    def hand_back_result(self, job: TranscriptionJob, bundle: ResultBundle, audio_s: float) -> None:
        """Outputs into the bucket, then the message that they are there; only then may the job message go."""
        key = self.keys.result(job)
        try:
            try:
                stored = put_document(self.store, key, bundle, self.scratch)
            except ObjectStoreError as exc:
                if isinstance(exc, StoreUnavailable):
                    raise
                self.store.ensure()  # LocalStack restarted: the bucket came back empty, or not at all yet
                stored = put_document(self.store, key, bundle, self.scratch)
        except ObjectStoreError as exc:
            raise TransientFailure(f"could not upload the outputs: {exc}") from exc
        self._send(ResultReady(job=job, key=key, sha256=stored.sha256, worker=self.worker_id, audio_s=audio_s))

    def forward_failure(self, record_path: Path) -> None:
        """A failure record written here goes home, for the director's "failed before" and `fleet status`."""
        try:
            record = FailureRecord.model_validate_json(record_path.read_bytes())
            self._send(FailureReady(record=record))
        except (OSError, ValueError, TransientFailure) as exc:
            log.error("failure record not sent home: the director will queue the file again", error=str(exc))

    def _send(self, message: StageRequest | ResultReady | FailureReady) -> None:
        try:
            try:
                refused = self.queue.send_batch([outgoing(message)])
            except QueueError as exc:
                if exc.code not in QUEUE_GONE_CODES:
                    raise
                self.queue.ensure()  # LocalStack restarted: the queue comes back empty, the message goes in again
                refused = self.queue.send_batch([outgoing(message)])
        except QueueError as exc:
            raise TransientFailure(f"transfer queue unavailable: {exc}") from exc
        if refused:
            raise TransientFailure("the transfer queue refused the message")
