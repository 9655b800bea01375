"""The front door's lane: jobs that `fleet asr` accepted (Bazarr's requests), taken before the folder backlog.

A lane job is an ordinary TranscriptionJob whose roots are the front door's state: its source is the FLAC the
front door kept under `.fleet/asr/audio/`, its outputs go to `.fleet/asr/results/`. So the same stages, commit,
settle policy, journal and failure records apply; only the queue and the two roots differ.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING

import structlog

from fleet.settings import FleetSettings
from fleet.state.paths import front_door_audio_dir, front_door_results_dir
from fleet.state.worker_record import WorkerActivity
from fleet.transport.queue import JobQueue, QueueError

if TYPE_CHECKING:
    from worker.queue_loop.loop import Worker

log = structlog.get_logger()
# A front door that is not deployed leaves its queue empty; a queue error is said once a minute, not per poll.
WARN_EVERY_S = 60.0


def front_door_settings(settings: FleetSettings) -> FleetSettings:
    """The worker's settings with the front door's roots: mirror layout, no notifications (Bazarr is the one asking)."""
    dest = settings.dest_dir
    return settings.model_copy(update={
        "source_dir": front_door_audio_dir(dest), "dest_dir": front_door_results_dir(dest), "layout": "mirror",
        "notify_urls": (), "webhook_url": None,
    })  # fmt: skip


class FrontDoorLane:
    """Takes one front-door message at a time through a Worker bound to the lane's queue and roots."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self._warned_at = float("-inf")

    @classmethod
    def beside(cls, folder_worker: Worker, queue: JobQueue, heartbeat_queue: JobQueue) -> FrontDoorLane:
        """A lane for `folder_worker`: its pipeline, state, beacon and stop; the front door's queue and roots."""
        from worker.queue_loop.loop import Worker

        settings = front_door_settings(folder_worker.settings)
        ctx = replace(folder_worker.ctx, settings=settings, planned=None)  # no folder plan can supersede a lane job
        return cls(Worker(settings, queue, ctx, folder_worker.shutdown, folder_worker.rss_mb, folder_worker.beacon,
                          heartbeat_queue))  # fmt: skip

    def take_one(self, wait_s: int) -> bool:
        """Receive and run one lane job; False when there was none (or the lane's queue cannot be asked now)."""
        worker = self.worker
        worker.state.state = WorkerActivity.IDLE  # the state and beacon are the folder worker's too
        worker.beacon.beat()
        try:
            message = worker.queue.receive_one(wait_s, worker.settings.visibility_timeout_s)
        except QueueError as exc:
            now = time.monotonic()
            if now - self._warned_at >= WARN_EVERY_S:
                log.warning("front door queue unavailable: serving the folder's queue meanwhile", error=str(exc))
                self._warned_at = now
                try:
                    worker.queue.ensure()  # LocalStack restarted: the queue comes back empty, the front door sends again
                except QueueError:
                    pass
            return False
        if message is None:
            return False
        if worker.shutdown.requested.is_set():
            worker.hand_back_unstarted(message)
            return True
        worker.handle(message)
        return True
