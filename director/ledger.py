"""What the director enqueued, tied to the queue's identity, so re-runs never enqueue twice.

SQS deduplicates for 5 minutes only; the ledger covers the hours and days after that. When the
queue was recreated (LocalStack restarted, a redeploy), its identity changes and the ledger is void.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import structlog
from filelock import FileLock, Timeout

from fleet.state.atomic import write_atomic
from fleet.state.paths import ledger_lock_path, ledger_path

log = structlog.get_logger()


def load_ledger(dest: Path, queue_identity: str | None) -> dict[str, float]:
    """Dedup id -> enqueue time; empty if missing, unreadable, or written for another queue.

    `queue_identity` None means the queue could not be asked (dry run offline): trust the file.
    """
    path = ledger_path(dest)
    try:
        raw = json.loads(path.read_text())
        entries = {str(k): float(v) for k, v in raw["entries"].items()}
        stored_identity = raw["queue"]
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("ledger unreadable, starting afresh", path=str(path), error=str(exc))
        return {}
    if queue_identity is not None and stored_identity != queue_identity:
        log.info("queue was recreated since the last run; ledger discarded", was=stored_identity, now=queue_identity)
        return {}
    return entries


@contextmanager
def ledger_lock(dest: Path) -> Iterator[None]:
    """Hold the ledger for one whole round; a second director waits (and says so) instead of losing entries."""
    path = ledger_lock_path(dest)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.info("another director is planning against this destination: waiting for it", lock=str(path))
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def save_ledger(dest: Path, queue_identity: str, entries: dict[str, float]) -> None:
    """Replace the ledger atomically."""
    payload = {"version": 1, "queue": queue_identity, "entries": entries}
    write_atomic(ledger_path(dest), json.dumps(payload, separators=(",", ":")))
