"""The settings the director plans each folder with now: how a worker tells a stale message from a current one.

A message carries the settings of the day it was queued. When a user changes the language or a folder's
prompt while a backlog waits, the director queues every affected file again with the new settings (a new
job), and writes this map first; a worker that then receives one of the old messages acknowledges it
without running (the file's current job is on the queue already, or the next round queues it).
"""

from __future__ import annotations

import posixpath
from pathlib import Path

from pydantic import BaseModel, ValidationError

from fleet.job.messages import TranscriptionJob
from fleet.state.atomic import write_atomic
from fleet.state.paths import planned_settings_path


class PlannedSettings(BaseModel):
    """Folder (relative to the source root, "" for the root) -> settings key, as of the round at `written_at`."""

    written_at: float
    folders: dict[str, str]

    def superseded(self, job: TranscriptionJob) -> str | None:
        """Why `job` is no longer what the director plans for its file; None: run it.

        Only a message queued before this map was written can be stale (one queued with it or after is the
        round's own), and only where the map knows the file's folder.
        """
        if job.enqueued_at >= self.written_at:
            return None
        planned = self.folders.get(posixpath.dirname(job.path))
        if planned is None or planned == job.settings.key():
            return None
        return f"settings changed since it was queued (queued with {job.settings.key()}, planned now with {planned})"


def write_planned_settings(dest: Path, planned: PlannedSettings) -> None:
    """Replace the map atomically: before the round's messages are sent, so none of them is ever taken for stale."""
    write_atomic(planned_settings_path(dest), planned.model_dump_json())


class PlannedSettingsReader:
    """The map as a worker reads it: parsed again only when the file changed (one stat per message)."""

    def __init__(self, dest: Path) -> None:
        self.path = planned_settings_path(dest)
        self._seen: tuple[int, int] | None = None
        self._planned: PlannedSettings | None = None

    def current(self) -> PlannedSettings | None:
        """The latest map, or None when no director wrote one (or it cannot be read: then nothing is stale)."""
        try:
            info = self.path.stat()
            stamp = (info.st_mtime_ns, info.st_size)
            if stamp != self._seen:
                self._planned, self._seen = PlannedSettings.model_validate_json(self.path.read_bytes()), stamp
        except (OSError, ValidationError):
            self._planned, self._seen = None, None
        return self._planned
