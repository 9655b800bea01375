"""Watch mode: run the director every N seconds, so new or changed recordings are queued."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable

import structlog

from fleet.queue import QueueError

log = structlog.get_logger()


def watch(run_once: Callable[[], int], interval_s: float, stop: threading.Event | None = None) -> int:
    """Call `run_once` now and then every `interval_s` until SIGTERM/SIGINT; queue errors only delay it."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
    runs = 0
    while not stop.is_set():
        started = time.monotonic()
        try:
            code = run_once()
        except QueueError as exc:  # LocalStack restarting: try again next round, do not crash-loop
            log.warning("director run failed, retrying next round", error=str(exc))
            code = 3
        runs += 1
        log.info("director run finished", run=runs, exit_code=code, next_in_s=interval_s)
        stop.wait(max(0.0, interval_s - (time.monotonic() - started)))
    return 0
