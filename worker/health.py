"""`fleet worker --check`: is the worker on this host alive? Read from its own heartbeat record.

A container health check in the style of arq's `--check`: it runs beside the worker (same host name,
same PID namespace), finds the record the worker keeps under <dest>/.fleet/workers/, and says
unhealthy when that record has gone stale, so a hung or frozen worker is visible in `docker ps`.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from fleet.layout import workers_dir


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def own_record(dest: Path, host: str) -> dict | None:
    """The newest record written by a live worker process on this host, if any."""
    newest: dict | None = None
    for path in workers_dir(dest).glob("*.json"):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if record.get("host") != host or not _alive(int(record.get("pid", 0) or 0)):
            continue
        if newest is None or record.get("last_beat", 0) > newest.get("last_beat", 0):
            newest = record
    return newest


def worker_health(dest: Path, now: float | None = None, host: str | None = None) -> tuple[bool, str]:
    """(healthy, one line why) for the worker running on this host."""
    now = time.time() if now is None else now
    record = own_record(dest, host or socket.gethostname())
    if record is None:
        return False, f"no heartbeat record of a live worker on this host under {workers_dir(dest)}"
    age_s = now - float(record.get("last_beat", 0))
    limit_s = float(record.get("lost_after_s", 0))
    state = record.get("state")
    if state == "stopped":
        return False, f"worker {record.get('worker')} has stopped"
    if age_s > limit_s:
        return False, f"worker {record.get('worker')} silent for {age_s:.0f} s (limit {limit_s:.0f} s, state {state})"
    return True, f"worker {record.get('worker')} {state}, last heartbeat {age_s:.0f} s ago"
