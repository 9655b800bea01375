"""`fleet worker --check`: is the worker on this host alive? Read from its own heartbeat record.

A container health check in the style of arq's `--check`: it runs beside the worker (same host name,
same PID namespace), finds the record the worker keeps under <dest>/.fleet/workers/, and says
unhealthy when that record has gone stale, so a hung or frozen worker is visible in `docker ps`.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from fleet.state.paths import workers_dir
from fleet.state.worker_record import WorkerActivity, WorkerRecord, read_worker_records


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def own_record(dest: Path, host: str) -> WorkerRecord | None:
    """The newest record written by a live worker process on this host, if any."""
    mine = [record for record in read_worker_records(dest) if record.host == host and _alive(record.pid)]
    return max(mine, key=lambda record: record.last_beat, default=None)


def worker_health(dest: Path, now: float | None = None, host: str | None = None) -> tuple[bool, str]:
    """(healthy, one line why) for the worker running on this host."""
    now = time.time() if now is None else now
    record = own_record(dest, host or socket.gethostname())
    if record is None:
        return False, f"no heartbeat record of a live worker on this host under {workers_dir(dest)}"
    age_s = now - record.last_beat
    if record.state == WorkerActivity.STOPPED:
        return False, f"worker {record.worker} has stopped"
    if age_s > record.lost_after_s:
        return False, (f"worker {record.worker} silent for {age_s:.0f} s (limit {record.lost_after_s:.0f} s, "
                       f"state {record.state})")  # fmt: skip
    return True, f"worker {record.worker} {record.state}, last heartbeat {age_s:.0f} s ago"


def remote_worker_health(now: float | None = None) -> tuple[bool, str]:
    """The same check for a remote worker, whose record lies in its scratch folder (worker.remote.setup)."""
    from worker.remote.scratch import scratch_base

    answers = [worker_health(folder / "dest", now) for folder in sorted(scratch_base().glob("worker-*"))]
    healthy = [answer for answer in answers if answer[0]]
    return (healthy or answers or [(False, f"no remote worker's scratch folder under {scratch_base()}")])[0]
