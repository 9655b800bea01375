"""Bringing a remote worker's finished job home: its rendered outputs committed into DEST_DIR as a local worker would."""

from __future__ import annotations

import time
from pathlib import Path

import structlog

from fleet.outputs.beside import beside_video
from fleet.outputs.commit import NAME_REFUSED, ForeignOutput, OutputPathError, commit_outputs
from fleet.settings import FleetSettings
from fleet.state.failures import clear_failure_record, save_failure_record
from fleet.state.records import CommitRecord, FailureRecord
from fleet.transfer.documents import get_document
from fleet.transfer.protocol import ResultBundle, ResultReady, TransferKeys
from fleet.transport.objects import ObjectCorrupt, ObjectMissing, ObjectStore

log = structlog.get_logger()


def bring_in(ready: ResultReady, settings: FleetSettings, store: ObjectStore, keys: TransferKeys, scratch: Path,
             owner: tuple[int, int] | None) -> list[Path]:  # fmt: skip
    """Commit the outputs (atomically, never over another's file, JSON last), then drop the job's objects.

    Returns the files written ([] when there was nothing to bring in). An OSError other than a refused name
    (DEST_DIR full, read-only) and ObjectStoreError propagate: the caller leaves the message for a later try.
    """
    job = ready.job
    try:
        bundle = get_document(store, ready.key, ResultBundle, scratch)
    except ObjectMissing:  # brought in already (this message came twice), or the bucket was emptied: the next round redoes it
        log.info("result no longer in the bucket: nothing to bring in", file=job.path)
        return []
    except ObjectCorrupt as exc:  # the next round queues the file again (the queue holds none of it any more)
        log.error("result unusable, dropped: the file is queued again", file=job.path, error=str(exc))
        _drop_objects(job_keys(keys, ready), store)
        return []
    record = bundle.record
    try:
        beside = beside_video(job, settings.source_dir, record.language)
        written = commit_outputs(settings.dest_dir, job.output_base, job.formats, lambda fmt: bundle.rendered[fmt],
                                 bundle.result, record, lambda: True, owner, beside)  # fmt: skip
    except (ForeignOutput, OutputPathError) as exc:
        _fail(settings, job.path, record, str(exc), ready.worker, job.output_base, owner)
        written = []
    except OSError as exc:
        if exc.errno not in NAME_REFUSED:
            raise
        _fail(settings, job.path, record, f"the destination refuses the output name: {exc.strerror}", ready.worker,
              job.output_base, owner)  # fmt: skip
        written = []
    else:
        clear_failure_record(settings.dest_dir, job.path)
        log.info("outputs of a remote worker brought in", file=job.path, worker=ready.worker, outputs=len(written))
    _drop_objects(job_keys(keys, ready), store)
    return written


def job_keys(keys: TransferKeys, ready: ResultReady) -> list[str]:
    """Everything the bucket holds for this job: its result, its manifest, its audio."""
    return [ready.key, keys.staged(ready.job), keys.audio(ready.job)]


def _drop_objects(keys: list[str], store: ObjectStore) -> None:
    for key in keys:
        store.delete(key)


def _fail(settings: FleetSettings, path: str, record: CommitRecord, reason: str, worker: str, output_base: str,
          owner: tuple[int, int] | None) -> None:  # fmt: skip
    """What a local worker would have recorded on the same refusal (the message is gone already: the record stays)."""
    failure = FailureRecord(source=path, fingerprint=record.fingerprint, settings_key=record.settings_key, reason=reason,
                            failed_at=time.time(), worker=worker, output_base=output_base)  # fmt: skip
    save_failure_record(settings.dest_dir, failure, owner)
    log.error("file failed", file=path, reason=reason)
