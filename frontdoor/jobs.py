"""The front door's durable jobs: the kept FLAC, a record per job, the message on the front door's queue.

A job is named by the hash of its audio and the settings it runs with (task and language included): the same
request again, Bazarr's re-upload on every retry, finds the job running or finished and is never transcribed twice.
Everything lives under `<dest>/.fleet/asr/`: a restart of the door reads its records back, and a queue that came
back empty (LocalStack restarted) is told every job still open again.
"""

from __future__ import annotations

import hashlib
import os
import time
from enum import StrEnum
from pathlib import Path

import structlog
from pydantic import BaseModel, ConfigDict, ValidationError

from fleet.job.identity import OUTPUT_FORMATS, TranscriptionSettings
from fleet.job.messages import SourceFingerprint, TranscriptionJob
from fleet.state.atomic import read_regular, write_atomic
from fleet.state.paths import failure_record_path, front_door_audio_dir, front_door_dir, front_door_results_dir
from fleet.state.records import FailureRecord, read_commit_record
from fleet.transport.queue import JobQueue, OutgoingMessage, QueueError

log = structlog.get_logger()


class JobState(StrEnum):
    """Where a front-door job stands."""

    UNKNOWN = "unknown"  # never accepted
    OPEN = "open"  # accepted, queued or running
    DONE = "done"  # its subtitle is in the results
    FAILED = "failed"  # a worker recorded a permanent failure


class FrontDoorRecord(BaseModel):
    """One accepted job as `jobs/<key>.json` keeps it, the queue it was last sent to included."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    job: TranscriptionJob
    audio_sha256: str
    accepted_at: float
    sent_to: str = ""  # the queue identity that holds its message; another identity means it must be sent again


def job_key(audio_sha256: str, settings: TranscriptionSettings) -> str:
    """The job's name: its audio and every setting that changes the transcript (task and language among them)."""
    return hashlib.sha256(f"{audio_sha256}\0{settings.key()}".encode()).hexdigest()


class FrontDoorJobs:
    """The state folder and the queue, as the front door uses them."""

    def __init__(self, dest: Path, queue: JobQueue, owner: tuple[int, int] | None = None) -> None:
        self.queue = queue
        self.owner = owner
        self.root = front_door_dir(dest)
        self.audio = front_door_audio_dir(dest)
        self.results = front_door_results_dir(dest)
        self.records = self.root / "jobs"
        self.uploads = self.root / "uploads"
        self.languages = self.root / "languages"

    def prepare(self) -> None:
        """Create the folders; uploads left by a stopped door are incomplete by definition and go."""
        for folder in (self.audio, self.results, self.records, self.uploads, self.languages):
            folder.mkdir(parents=True, exist_ok=True)
        for leftover in self.uploads.iterdir():
            leftover.unlink(missing_ok=True)

    def result(self, key: str, fmt: str) -> Path:
        return self.results / f"{key}.{fmt}"

    def state(self, key: str) -> JobState:
        """Finished (its JSON twin carries a commit record), failed, open or never seen."""
        if self.result(key, "srt").exists() and read_commit_record(self.result(key, "json")) is not None:  # JSON last
            return JobState.DONE
        if self.failure(key) is not None:
            return JobState.FAILED
        if (self.records / f"{key}.json").exists():
            return JobState.OPEN
        return JobState.UNKNOWN

    def failure(self, key: str) -> FailureRecord | None:
        path = failure_record_path(self.results, f"{key}.flac")
        try:
            return FailureRecord.model_validate_json(read_regular(path))
        except (OSError, ValidationError):
            return None

    def accept(self, key: str, flac: Path, settings: TranscriptionSettings, audio_sha256: str) -> FrontDoorRecord:
        """Keep the FLAC under the key, record the job, then queue it: a crash in between leaves a record to send."""
        kept = self.audio / f"{key}.flac"
        os.replace(flac, kept)
        if self.owner:
            os.chown(kept, *self.owner)  # the workers read it under PUID:PGID
        info = kept.stat()
        job = TranscriptionJob(path=kept.name, output_base=key, fingerprint=SourceFingerprint(size=info.st_size,
                               mtime_ns=info.st_mtime_ns), settings=settings, formats=OUTPUT_FORMATS,
                               enqueued_at=time.time())  # fmt: skip
        record = FrontDoorRecord(key=key, job=job, audio_sha256=audio_sha256, accepted_at=job.enqueued_at)
        self._save(record)
        return self.send(record)

    def send(self, record: FrontDoorRecord) -> FrontDoorRecord:
        """Put the job's message on the queue (SQS drops a repeat within 5 minutes) and note which queue holds it."""
        job = record.job
        message = OutgoingMessage(dedup_id=job.dedup_id(), group_id=job.group_id(), body=job.model_dump_json())
        try:
            try:
                info = self.queue.info
            except QueueError:  # not opened yet: the door started while the queue server was away
                info = self.queue.ensure()
            if self.queue.send_batch([message]):
                raise QueueError("the queue refused the message")
        except QueueError as exc:  # kept: the next look at the queue sends it
            log.warning("front-door job not queued yet: sent when the queue answers", key=record.key, error=str(exc))
            return record
        sent = record.model_copy(update={"sent_to": info.identity})
        self._save(sent)
        return sent

    def open_records(self) -> list[FrontDoorRecord]:
        """Every accepted job not yet settled."""
        records = []
        for path in sorted(self.records.glob("*.json")):
            try:
                records.append(FrontDoorRecord.model_validate_json(read_regular(path)))
            except (OSError, ValidationError) as exc:
                log.warning("front-door job record unreadable: skipped", path=str(path), error=str(exc))
        return records

    def look_after(self) -> int:
        """Settle what finished or failed, send again what a recreated queue lost; the number sent."""
        try:
            identity = (self.queue.lookup() or self.queue.ensure()).identity
        except QueueError as exc:
            log.warning("front door queue unavailable: open jobs are sent when it answers", error=str(exc))
            return 0
        sent = 0
        for record in self.open_records():
            if self.state(record.key) in (JobState.DONE, JobState.FAILED):
                self.settle(record.key)
            elif record.sent_to != identity:
                sent += self.send(record).sent_to == identity
        if sent:
            log.info("front-door jobs sent again to a queue that did not hold them", count=sent)
        return sent

    def settle(self, key: str) -> None:
        """A finished or failed job needs neither its FLAC nor its record any more; the results stay."""
        (self.audio / f"{key}.flac").unlink(missing_ok=True)
        (self.records / f"{key}.json").unlink(missing_ok=True)

    def counts(self) -> dict[str, int]:
        """Open, done and failed jobs, for `fleet status` and the dashboard."""
        return front_door_counts(self.root)

    def _save(self, record: FrontDoorRecord) -> None:
        write_atomic(self.records / f"{record.key}.json", record.model_dump_json(), owner=self.owner)


def front_door_counts(root: Path) -> dict[str, int]:
    """How many front-door jobs are open, done and failed, read from the state folder alone."""
    def count(folder: Path, pattern: str) -> int:
        return sum(1 for _ in folder.glob(pattern)) if folder.is_dir() else 0

    return {"open": count(root / "jobs", "*.json"), "done": count(root / "results", "*.srt"),
            "failed": count(root / "results" / ".fleet" / "failed", "*.json")}  # fmt: skip
