"""A remote worker's status record, copied into the transfer bucket, where the home side picks it up for `fleet status`."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import structlog

from fleet.transport.objects import ObjectStore, ObjectStoreError
from worker.queue_loop.beacon import BEAT_S, Beacon, WorkerState

log = structlog.get_logger()


class UploadingBeacon(Beacon):
    """The local beacon, plus its record put into the bucket by a thread of its own: a slow or cut network
    must never delay the heartbeat that keeps the message."""

    def __init__(self, scratch_dest: Path, state: WorkerState, store: ObjectStore, key: str,
                 rss_mb: Callable[[], float] | None = None) -> None:  # fmt: skip
        super().__init__(scratch_dest, state, rss_mb)
        self.store = store
        self.key = key
        self._pending = threading.Event()
        self._stopped = threading.Event()
        self._failing = False
        self._snapshot = self.path.with_name(f".{self.path.name}.upload")
        self._thread = threading.Thread(target=self._upload_forever, name="status-upload", daemon=True)
        self._thread.start()

    def beat(self, force: bool = False) -> None:
        written_before = self._last
        super().beat(force)
        if self._last != written_before:  # the record on disk changed: the bucket's copy follows
            self._pending.set()

    def close(self, timeout_s: float = 3 * BEAT_S) -> None:
        """Send the last record (stopped), waiting a few seconds at most (an upload behind it may still be running)."""
        self._pending.set()
        self._stopped.set()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.warning("last status record not sent: the home side shows this worker as lost", waited_s=timeout_s)

    def _upload_forever(self) -> None:
        while True:
            self._pending.wait()
            self._pending.clear()
            try:
                # A snapshot only this thread writes: the beacon replaces the record at every stage, mid-upload too
                shutil.copyfile(self.path, self._snapshot)
                self.store.put_file(self.key, self._snapshot)
                if self._failing:
                    log.info("status record reaches the transfer bucket again")
                self._failing = False
            except (ObjectStoreError, OSError) as exc:
                if not self._failing:
                    log.warning("status record not uploaded: the home side shows this worker as lost until it is", error=str(exc))
                self._failing = True
            if self._stopped.is_set() and not self._pending.is_set():  # the last record, asked for mid-upload, went too
                return
