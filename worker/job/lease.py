"""The lease on a message: whether this worker may still write its outputs (the loop writes it, the job reads it)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Lease:
    """Whether this worker may still write the message's outputs. Written by the loop, read by the job thread.

    Held until the last successful extension plus the visibility timeout, less a margin: after that the
    message may be with another worker, whatever the heartbeat is still trying. Lost at once when the
    queue refuses the receipt handle. Orphaned when the queue that held the message is gone: nobody
    else can own it then, so the finished transcript is still written (atomically, idempotently).
    """

    def __init__(self, visibility_timeout_s: float = 0.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._visibility_s = visibility_timeout_s
        self._valid_until = clock() + self._term_s() if visibility_timeout_s else float("inf")
        self._lost = threading.Event()
        self._orphaned = threading.Event()

    def _term_s(self) -> float:
        return self._visibility_s - min(5.0, self._visibility_s / 4)

    def extended(self, at: float) -> None:
        """A heartbeat succeeded (`at` from the same clock); an expired lease is never revived."""
        if self.held() and self._visibility_s:
            self._valid_until = at + self._term_s()

    def lose(self) -> None:
        self._lost.set()

    def orphan(self) -> None:
        self._orphaned.set()

    @property
    def orphaned(self) -> bool:
        return self._orphaned.is_set()

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def expired(self) -> bool:
        return self._clock() >= self._valid_until

    def held(self) -> bool:
        if self._orphaned.is_set():
            return True
        return not self._lost.is_set() and not self.expired()
