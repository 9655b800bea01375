"""Models freed after a while without work: a GPU that is also someone's gaming PC gets its memory back."""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

log = structlog.get_logger()


class IdleUnload:
    """Unloads the models once no message came for `after_s` (0: never); the next job loads them again."""

    def __init__(self, after_s: float, loaded: Callable[[], bool], unload: Callable[[], None],
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.after_s = after_s
        self._loaded = loaded
        self._unload = unload
        self._clock = clock
        self._since = clock()

    def worked(self) -> None:
        """A message was handled: the idle time starts again."""
        self._since = self._clock()

    def unload_if_idle(self) -> bool:
        """Between polls without work (nothing received, or the roots away): True if the models were just unloaded."""
        idle_s = self._clock() - self._since
        if not self.after_s or idle_s < self.after_s or not self._loaded():
            return False
        started = time.perf_counter()
        self._unload()
        log.info("models unloaded while idle", idle_s=round(idle_s), unload_s=round(time.perf_counter() - started, 2))
        return True
