"""Watch mode: run the director every N seconds, so new or changed recordings are queued."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable

import structlog

from director.main import DestError
from fleet.roots.readiness import SourceError
from fleet.transport.backoff import retry_delay_s
from fleet.transport.queue import QueueError

log = structlog.get_logger()
# After a failed round (LocalStack still starting after a reboot, a disk not mounted yet) the next
# one comes after 5, 10, 20 ... seconds, never later than the interval itself.
RETRY_BASE_S = 5


def watch(run_once: Callable[[], int], interval_s: float, stop: threading.Event | None = None) -> int:
    """Call `run_once` now and then every `interval_s` until SIGTERM/SIGINT; failed rounds are retried sooner."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
    runs = failures_in_a_row = 0
    while not stop.is_set():
        started = time.monotonic()
        try:
            code = run_once()
        except (QueueError, SourceError, DestError, OSError) as exc:  # do not crash-loop: log, back off, keep watching
            log.warning("director run failed, retrying", error=str(exc))
            code = 3
        runs += 1
        failures_in_a_row = failures_in_a_row + 1 if code else 0
        wait_s = interval_s
        if failures_in_a_row:
            wait_s = min(interval_s, retry_delay_s(failures_in_a_row, RETRY_BASE_S))
        log.info("director run finished", run=runs, exit_code=code, next_in_s=wait_s)
        stop.wait(max(0.0, wait_s - (time.monotonic() - started)))
    return 0
