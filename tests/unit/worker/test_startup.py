"""A worker's start-up phases, as its `worker ready` line reports them."""

from __future__ import annotations

import time

from worker.startup import StartupPhases, process_age_s


def test_process_age_counts_from_the_process_start():
    age = process_age_s()
    assert age is not None and 0 <= age < 3600  # this test process started earlier, within the hour


def test_phases_follow_each_other_and_parts_timed_inside_are_shown_on_their_own():
    phases = StartupPhases()
    assert "process" in phases.seconds
    time.sleep(0.05)
    phases.done("imports")
    time.sleep(0.05)
    phases.done("models, other", {"vad model": 0.02, "whisper model": 0.01})
    assert phases.seconds["imports"] >= 0.05
    assert phases.seconds["vad model"] == 0.02 and phases.seconds["whisper model"] == 0.01
    assert phases.seconds["models, other"] >= 0.01  # the rest of the phase, its parts taken out
    phases.done("queue", {"everything": 5.0})
    assert "queue" not in phases.seconds  # parts that fill the phase leave no remainder to show
