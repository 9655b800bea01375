"""Starting a remote worker: the bucket, the transfer queue, the uploading beacon."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace

import structlog

from fleet.settings import FleetSettings
from fleet.transfer.protocol import TransferKeys
from fleet.transport.s3 import S3ObjectStore
from fleet.transport.sqs import SqsQueue
from worker.job.result import JobResult
from worker.memory import current_rss_mb
from worker.queue_loop.beacon import WorkerState
from worker.remote.job import run_remote_job
from worker.remote.status import UploadingBeacon
from worker.remote.transfer import RemoteTransfer

log = structlog.get_logger()
STATUS_ATTEMPTS = 2
STATUS_TIMEOUT_S = 3.0


def connect_remote(
    settings: FleetSettings, state: WorkerState
) -> tuple[UploadingBeacon, Callable[..., JobResult], RemoteTransfer]:
    """The beacon that also reaches the bucket, the job function that works through it, and the transfer itself."""
    location = settings.transfer_bucket
    assert location is not None  # scratch_roots checked it
    store = S3ObjectStore.connect(settings.transfer_endpoint(), location, settings.transfer_max_mb << 20)
    transfer_queue = SqsQueue.connect(settings.queue_endpoint(), settings.transfer_queue_spec())
    transfer_queue.ensure()
    keys = TransferKeys(location)
    transfer = RemoteTransfer(store, keys, transfer_queue, settings.dest_dir.parent / "transfer", settings.worker_id)
    # Its own quick client: a record is replaced every few seconds, so retrying one for long only delays the next,
    # and the last one, sent as the worker stops, must fit in the few seconds the stop waits for it.
    quick = replace(settings.transfer_endpoint(), max_attempts=STATUS_ATTEMPTS, timeout_s=STATUS_TIMEOUT_S)
    status_store = S3ObjectStore.connect(quick, location, settings.transfer_max_mb << 20)
    beacon = UploadingBeacon(settings.dest_dir, state, status_store, keys.worker(settings.worker_id), current_rss_mb)
    log.info("remote worker: audio and outputs through the transfer bucket", bucket=str(location))
    return beacon, functools.partial(run_remote_job, transfer=transfer), transfer
