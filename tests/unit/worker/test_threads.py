"""A worker's share of the cores."""

from __future__ import annotations

from worker.threads import threads_per_worker


def test_threads_are_a_fair_share_unless_configured():
    assert threads_per_worker(0, workers=2, cpus=2) == 1
    assert threads_per_worker(0, workers=1, cpus=16) == 16
    assert threads_per_worker(0, workers=4, cpus=2) == 1
    assert threads_per_worker(3, workers=4, cpus=2) == 3
