"""The director's round scans before it needs the queue: a local run's scan overlaps LocalStack's start."""

from __future__ import annotations

import pytest

from director.main import run_director
from fleet.roots.readiness import SourceError
from fleet.settings import FleetSettings


class QueueNotUp(Exception):
    """Stands for the wait a local run does: the test ends the round there."""


def test_the_scan_runs_before_the_wait_for_the_queue_and_a_bad_source_never_waits(tmp_path):
    source, dest = tmp_path / "source", tmp_path / "dest"
    source.mkdir()
    (source / "talk.mp3").write_bytes(b"x")
    waits: list[bool] = []

    def wait_for_queue() -> None:
        waits.append(True)
        raise QueueNotUp

    settings = FleetSettings(source_dir=source, dest_dir=dest, aws_endpoint_url="http://127.0.0.1:9")
    with pytest.raises(QueueNotUp):
        run_director(settings, before_queue=wait_for_queue)
    assert waits == [True]
    # A source that is not there fails the round at once (exit 2 upstream), without waiting for any queue
    with pytest.raises(SourceError):
        run_director(settings.model_copy(update={"source_dir": tmp_path / "missing"}), before_queue=wait_for_queue)
    assert waits == [True]
