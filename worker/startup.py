"""Where a worker's start-up time goes, phase by phase, for its `worker ready` line (bench/startup.py reads it)."""

from __future__ import annotations

import os
import time


def process_age_s() -> float | None:
    """Seconds since this process started (the interpreter and its first imports); None off Linux."""
    try:
        with open("/proc/self/stat") as stat:
            # Field 22, counted after the parenthesised command name (which may hold spaces).
            started_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as uptime:
            up_s = float(uptime.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return max(0.0, up_s - started_ticks / os.sysconf("SC_CLK_TCK"))


class StartupPhases:
    """Seconds per phase, each measured from the end of the one before."""

    def __init__(self) -> None:
        age = process_age_s()
        self.seconds: dict[str, float] = {} if age is None else {"process": round(age, 2)}
        self._mark = time.perf_counter()

    def done(self, phase: str, parts: dict[str, float] | None = None) -> None:
        """The phase named here ends now; `parts` of it timed inside (the model loads) are shown on their own."""
        now = time.perf_counter()
        total = now - self._mark
        self._mark = now
        for part, seconds in (parts or {}).items():
            self.seconds[part] = round(seconds, 2)
            total -= seconds
        if parts is None or total >= 0.01:
            self.seconds[phase] = round(total, 2)
