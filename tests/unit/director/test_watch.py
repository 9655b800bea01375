"""Watch mode keeps running the director, and a queue outage only delays the next round."""

from __future__ import annotations

import threading

from director.watch import watch
from fleet.roots.readiness import SourceError
from fleet.transport.queue import QueueUnavailable


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


def test_a_failed_round_is_retried_sooner_than_the_interval_and_source_errors_do_not_end_the_watch(monkeypatch):
    # Given a director whose first rounds fail (queue still starting, source not mounted yet)
    stop = threading.Event()
    waits: list[float] = []
    outcomes = [QueueUnavailable("queue endpoint unreachable"), SourceError("source folder /x does not exist"), 3, 0, 0]

    def run_once() -> int:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def record_wait(timeout: float) -> bool:
        waits.append(timeout)
        if not outcomes:
            stop.set()
        return stop.is_set()

    monkeypatch.setattr(stop, "wait", record_wait)
    # When it watches with a long interval
    assert watch(run_once, interval_s=300, stop=stop) == 0
    # Then failures come back after 5, 10, 20 s, and a good round waits the whole interval again
    assert [round(w) for w in waits] == [5, 10, 20, 300, 300]
