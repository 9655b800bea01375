"""`fleet asr`: serve the front door until SIGTERM or Ctrl-C."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import structlog
import uvicorn

from fleet.settings import FleetSettings
from fleet.transport.queue import QueueError
from fleet.transport.spec import FRONT_DOOR_QUEUE
from fleet.transport.sqs import SqsQueue
from frontdoor.api import FrontDoor, build_app
from frontdoor.detect import LanguageDetector
from frontdoor.jobs import FrontDoorJobs
from frontdoor.settings import FrontDoorSettings

log = structlog.get_logger()


def front_door(settings: FleetSettings, door_settings: FrontDoorSettings) -> FrontDoor:
    """The door's parts: its queue (opened now if the server answers, else when it does), state folder and detector."""
    from worker.speech.models import resolve_asr_model  # finds the worker's model; loads nothing, imports no torch

    queue = SqsQueue.connect(settings.queue_endpoint(), settings.queue_spec().companion(FRONT_DOOR_QUEUE))
    try:
        queue.ensure()
    except QueueError as exc:
        log.warning("front door queue not answering yet: jobs are accepted and sent when it does", error=str(exc))
    jobs = FrontDoorJobs(settings.dest_dir, queue, settings.output_owner())
    jobs.prepare()
    model = settings.whisper_model
    detector = LanguageDetector(lambda: resolve_asr_model(model, settings.models_dir), door_settings.detect_threads)
    return FrontDoor(door_settings, jobs, detector, settings.transcription())


def run_front_door(settings: FleetSettings, door_settings: FrontDoorSettings) -> int:
    """Serve until stopped; uvicorn handles SIGTERM and Ctrl-C (requests in flight are finished, jobs stay queued)."""
    if not settings.dest_dir.is_dir():
        print(f"fleet asr: the destination {settings.dest_dir} is not a folder (the front door keeps its state there)")
        return 2
    door = front_door(settings, door_settings)
    print(f"front door: http://{door_settings.host}:{door_settings.port}/ (API page /docs, state {door.jobs.root})", flush=True)
    config = uvicorn.Config(build_app(door), host=door_settings.host, port=door_settings.port, log_config=None,
                            access_log=False, timeout_graceful_shutdown=5)  # fmt: skip
    _Server(config).run()
    return 0


class _Server(uvicorn.Server):
    """uvicorn's server, except that a stop asked for (SIGTERM, Ctrl-C) ends the process with 0 like every fleet command:
    uvicorn raises the signal again once it has stopped, which a container reports as exit 143."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            self._captured_signals.clear()
