"""ffprobe with a deadline that holds when the process cannot be killed at once (a read stuck on a stalled share)."""

from __future__ import annotations

import subprocess
import time

from fleet.media.probe import run_bounded


def test_a_process_that_outlives_its_kill_does_not_hold_the_caller(monkeypatch):
    monkeypatch.setattr(subprocess.Popen, "kill", lambda self: None)  # as a process in uninterruptible I/O: alive on
    started = time.monotonic()
    assert run_bounded(["sleep", "30"], 0.2) is None
    assert time.monotonic() - started < 10  # returned long before the process could end by itself


def test_a_process_that_answers_in_time_is_returned_whole():
    done = run_bounded(["sh", "-c", "echo out; echo err >&2; exit 3"], 10)
    assert done is not None and (done.returncode, done.stdout, done.stderr) == (3, b"out\n", b"err\n")
