"""A remote worker's own folders on its machine: status records and the audio in hand, never the library."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fleet.settings import FleetSettings


def scratch_base() -> Path:
    """Where remote workers on this machine keep their scratch folders (the health check looks here)."""
    return Path(tempfile.gettempdir()) / "whisper-fleet-remote"


@contextmanager
def scratch_roots(settings: FleetSettings) -> Iterator[FleetSettings]:
    """The settings with a private scratch folder as both roots (status records, the audio in hand), removed after."""
    if settings.transfer_bucket is None:
        raise ValueError("a worker without source and destination needs FLEET_TRANSFER_BUCKET")
    scratch_base().mkdir(exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="worker-", dir=scratch_base()))
    try:
        for name in ("source", "dest", "transfer"):
            (scratch / name).mkdir()
        yield settings.model_copy(update={"source_dir": scratch / "source", "dest_dir": scratch / "dest"})
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
