"""`fleet worker`: pin threads, load the models once, then run the loop until told to stop."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING

import structlog

from fleet.roots.readiness import RootsWatch
from fleet.settings import FleetSettings
from fleet.state.atomic import remove_stale_temps
from fleet.state.planned_settings import PlannedSettingsReader
from fleet.transport.queue import QueueUnavailable
from fleet.transport.spec import FRONT_DOOR_QUEUE
from fleet.transport.sqs import SqsQueue
from worker.audio.ffmpeg import require_ffmpeg
from worker.memory import current_rss_mb, memory_limit_mb
from worker.queue_loop.shutdown import Shutdown
from worker.startup import StartupPhases
from worker.threads import cpu_quota, pin_native_threads, pin_torch_threads, threads_per_worker

if TYPE_CHECKING:  # imported at run time only after the threads are pinned
    from worker.queue_loop.lane import FrontDoorLane
    from worker.queue_loop.loop import Worker

log = structlog.get_logger()
# A temp file is written and renamed within milliseconds; one this old belongs to a dead process.
STALE_TEMP_S = 600
# A queue server not answering at start is asked again after 0.25 s, then twice as long each time, up to 10 s.
QUEUE_PROBE_FIRST_S = 0.25
QUEUE_PROBE_CAP_S = 10.0


def wait_for_queue_server(settings: FleetSettings, shutdown: Shutdown) -> bool:
    """Wait while the queue server does not answer yet (LocalStack starting beside us, a queue host booting).

    Probed with one attempt at a time, quickly at first, so a worker whose models are loaded starts the
    moment the server answers. False when a stop is asked for meanwhile.
    """
    probe = SqsQueue.connect(replace(settings.queue_endpoint(), max_attempts=1), settings.queue_spec())
    delay_s, since = QUEUE_PROBE_FIRST_S, time.monotonic()
    while True:
        try:
            probe.lookup()  # any answer will do, "no such queue" too: ensure() creates it next
        except QueueUnavailable as exc:
            if delay_s == QUEUE_PROBE_FIRST_S:
                log.warning("queue server not answering yet: waiting for it", error=str(exc))
            if shutdown.requested.wait(delay_s):
                return False
            delay_s = min(delay_s * 2, QUEUE_PROBE_CAP_S)
            continue
        if delay_s > QUEUE_PROBE_FIRST_S:
            log.info("queue server answering", waited_s=round(time.monotonic() - since, 1))
        return True


def run_worker(settings: FleetSettings, until_empty: bool = False, max_files: int = 0, remote: bool = False) -> int:
    """Start one worker process; returns its exit code. `remote`: no roots here, the job's files travel through the bucket."""
    if remote:
        from worker.remote.scratch import scratch_roots

        with scratch_roots(settings) as scratch_settings:
            return _run_worker(scratch_settings, until_empty, max_files, remote=True)
    return _run_worker(settings, until_empty, max_files)


def _front_door_lane(settings: FleetSettings, worker: Worker) -> FrontDoorLane:
    """The lane for front-door jobs, with its own queue (created here if the front door has not yet)."""
    from worker.queue_loop.lane import FrontDoorLane

    spec = settings.queue_spec().companion(FRONT_DOOR_QUEUE)
    queue = SqsQueue.connect(settings.queue_endpoint(), spec)
    queue.ensure()
    heartbeats = SqsQueue.connect(settings.queue_endpoint(), spec, for_heartbeats=True)
    heartbeats.lookup()
    return FrontDoorLane.beside(worker, queue, heartbeats)


def _run_worker(settings: FleetSettings, until_empty: bool, max_files: int, remote: bool = False) -> int:
    phases = StartupPhases()
    require_ffmpeg()
    threads = threads_per_worker(settings.threads, settings.workers, cpu_quota())
    pin_native_threads(threads)  # before torch is imported by the pipeline
    shutdown = Shutdown()
    shutdown.install()
    # No check of the roots here: a NAS still booting is waited for by the loop (fleet/roots/readiness.py), and a
    # destination is never created by a worker (on a share not mounted yet it would land on the local disk).
    removed = remove_stale_temps(settings.dest_dir, STALE_TEMP_S, time.time())
    if removed:
        log.info("removed temp files left by a crashed worker", count=removed)
    spec = settings.queue_spec()
    pin_torch_threads(threads)
    # numpy, torch and CTranslate2 read their thread settings when first imported: only now.
    from worker.job.run import JobContext
    from worker.queue_loop.beacon import Beacon, WorkerState, lost_after_s
    from worker.queue_loop.loop import Worker, job_places
    from worker.speech.pipeline import Pipeline

    phases.done("imports")
    pipeline = Pipeline(settings, threads)
    phases.done("models, other", pipeline.load_s)
    # After the model load: a queue server that starts alongside the workers has had time to come up.
    if not wait_for_queue_server(settings, shutdown):
        return 0
    queue = SqsQueue.connect(settings.queue_endpoint(), spec)
    queue.ensure()
    heartbeat_queue = SqsQueue.connect(settings.queue_endpoint(), spec, for_heartbeats=True)
    heartbeat_queue.lookup()
    phases.done("queue")
    owner = settings.output_owner()
    ctx = JobContext(settings=settings, pipeline=pipeline, worker_id=settings.worker_id, owner=owner,
                     planned=None if remote else PlannedSettingsReader(settings.dest_dir))  # fmt: skip
    log.info("worker ready", worker=settings.worker_id, queue=spec.queue_name, threads=threads, device=pipeline.device_in_use(),
             startup_s=phases.seconds)  # fmt: skip
    state = WorkerState(
        worker=settings.worker_id, lost_after_s=lost_after_s(settings.receive_wait_s), model=pipeline.model_name,
        device=pipeline.device_in_use(), threads=threads, memory_limit_mb=memory_limit_mb(),
    )  # fmt: skip
    if remote:
        from worker.remote.setup import connect_remote

        state.remote = True
        beacon, run_one, transfer = connect_remote(settings, state)
        worker = Worker(settings, queue, ctx, shutdown, current_rss_mb, beacon, heartbeat_queue, run_job=run_one)
        worker.settler.on_failure_recorded = transfer.forward_failure
        # its scratch space: no source to wait for
        worker.roots = RootsWatch(None, settings.dest_dir, settings.min_free_mb, more=job_places(settings))
    else:
        beacon = Beacon(settings.dest_dir, state, current_rss_mb)
        worker = Worker(settings, queue, ctx, shutdown, current_rss_mb, beacon, heartbeat_queue)
        if not until_empty:  # a resident worker serves the front door too (`fleet asr`); a draining one only its run
            worker.lane = _front_door_lane(settings, worker)
    try:
        return worker.run(until_empty=until_empty, max_files=max_files)
    finally:
        worker.notifier.close()  # the last file's notifications, for a few seconds at most
        beacon.close()
