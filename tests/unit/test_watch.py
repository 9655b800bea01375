"""Watch mode keeps running the director, and a queue outage only delays the next round."""

from __future__ import annotations

import threading

from director.watch import watch
from fleet.queue import QueueUnavailable


def test_watch_runs_every_interval_until_stopped_and_survives_queue_errors():
    stop = threading.Event()
    calls = []

    def run_once() -> int:
        calls.append(len(calls))
        if len(calls) == 2:
            raise QueueUnavailable("queue endpoint unreachable")
        if len(calls) == 4:
            stop.set()
        return 0

    assert watch(run_once, interval_s=0.01, stop=stop) == 0
    assert len(calls) == 4
