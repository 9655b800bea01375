"""What a remote worker and the home side say to each other: the bucket's keys, the documents, the messages.

The home side (the watching director) stages a job's audio as 16 kHz mono FLAC under `audio/<dedup id>.flac`
and writes `audio/<dedup id>.json` (the StagedAudio) after it: the manifest's presence means "complete". A
remote worker puts its rendered outputs under `results/<dedup id>.json` and then says so on the transfer queue;
the home side commits them into DEST_DIR and deletes both. Remote workers' status records live under `workers/`.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from fleet.job.messages import SourceFingerprint, TranscriptionJob
from fleet.state.records import CommitRecord, FailureRecord
from fleet.transport.objects import BucketLocation
from fleet.transport.queue import OutgoingMessage


class TransferKeys:
    """Every key the fleet writes in the transfer bucket, under its prefix."""

    def __init__(self, location: BucketLocation) -> None:
        self.location = location

    def audio(self, job: TranscriptionJob) -> str:
        return self.location.key("audio", f"{job.dedup_id()}.flac")

    def staged(self, job: TranscriptionJob) -> str:
        return self.location.key("audio", f"{job.dedup_id()}.json")

    def result(self, job: TranscriptionJob) -> str:
        return self.location.key("results", f"{job.dedup_id()}.json")

    def workers(self) -> str:
        return self.location.key("workers") + "/"

    def worker(self, worker_id: str) -> str:
        return self.location.key("workers", f"{worker_id}.json")


class StagedOutcome(StrEnum):
    """What the home side found when it went to stage a job's audio."""

    STAGED = "staged"  # the FLAC is in the bucket
    SOURCE_GONE = "source-gone"  # deleted since it was queued: nothing to do
    ALREADY_DONE = "already-done"  # its outputs are in DEST_DIR already (another worker, an earlier delivery)
    SUPERSEDED = "superseded"  # queued again with the folder's new settings
    FAILED = "failed"  # the file cannot be decoded: a permanent failure, as a local worker would find it
    UNAVAILABLE = "unavailable"  # the source root is away (a NAS not mounted): try again later


class StagedAudio(BaseModel):
    """The manifest beside a staged FLAC: which version of which track it holds, or why there is none."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    outcome: StagedOutcome
    reason: str = ""
    detail: str = ""
    fingerprint: SourceFingerprint | None = None  # the version of the source that was encoded
    audio_stream: dict[str, Any] | None = None  # the track chosen (StreamChoice.record()), as a local worker records it
    sha256: str = ""  # of the FLAC
    size: int = 0
    staged_at: float = 0.0


class ResultBundle(BaseModel):
    """A remote worker's finished job: the commit record, whisperX's result, and every format rendered."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    record: CommitRecord
    result: dict[str, Any]
    rendered: dict[str, str]  # format -> text, rendered by the worker's whisperX writers


class StageRequest(BaseModel):
    """A remote worker holds this job and the audio is not staged yet."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["stage"] = "stage"
    job: TranscriptionJob
    worker: str


class ResultReady(BaseModel):
    """A remote worker's outputs are in the bucket under `key`, verified by `sha256`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["result"] = "result"
    job: TranscriptionJob
    key: str
    sha256: str
    worker: str
    audio_s: float


class FailureReady(BaseModel):
    """A remote worker dead-lettered this job: the failure record for DEST_DIR's `.fleet/failed/`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["failure"] = "failure"
    record: FailureRecord


TransferMessage = Annotated[StageRequest | ResultReady | FailureReady, Field(discriminator="kind")]
TRANSFER_MESSAGE: TypeAdapter[StageRequest | ResultReady | FailureReady] = TypeAdapter(TransferMessage)


def outgoing(message: StageRequest | ResultReady | FailureReady) -> OutgoingMessage:
    """The message for the transfer queue: a group and a dedup id of its own. No order is needed between them, and
    a shared group would hold a file's result behind its stage request while a stopped home side still held that."""
    unique = uuid.uuid4().hex
    return OutgoingMessage(dedup_id=unique, group_id=unique, body=message.model_dump_json())
