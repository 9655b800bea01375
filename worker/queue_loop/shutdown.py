"""Signals only set flags: the first asks for a graceful stop, the second ends the process at once.

SIGUSR1 asks for less: take messages until the queue is drained, then exit (a local run sends it once
its director has queued everything, so the last worker leaves as soon as the last file is done).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import NoReturn

import structlog

from fleet.process import exits

log = structlog.get_logger()


def exit_now(code: int) -> NoReturn:
    """Flush the logs and leave without the interpreter's teardown (torch's takes seconds, or hangs on a busy thread)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class Shutdown:
    """Graceful-stop state shared by the signal handlers and the worker loop."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.drain = threading.Event()

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGUSR1, self._handle_drain)

    def _handle_drain(self, _signum: int, _frame: object) -> None:
        self.drain.set()

    def _handle(self, signum: int, _frame: object) -> None:
        if self.requested.is_set():
            log.warning("second signal: exiting now; the current message reappears after its visibility timeout")
            exit_now(exits.INTERRUPTED)
        self.requested.set()
        log.info("stop requested: finishing the current file, taking no new one", signal=signal.Signals(signum).name)
