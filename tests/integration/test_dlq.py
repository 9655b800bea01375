"""`fleet dlq`: list what was dead-lettered and why, redrive it, purge; on LocalStack and on moto's server."""

from __future__ import annotations

import io
import json

import pytest

from app.dlq import run_dlq
from fleet.queue import OutgoingMessage

pytestmark = pytest.mark.integration


def dead_letter(queue, path: str, reason: str) -> None:
    """What a worker does with a permanent failure: receive the job, move it to the dead-letter queue."""
    queue.send_batch([OutgoingMessage(dedup_id=f"d-{path}", group_id=f"g-{path}", body=json.dumps({"path": path}))])
    received = queue.receive_one(wait_s=1, visibility_timeout_s=30)
    queue.dead_letter(received, f"g-{path}", reason)


def dlq(settings, action: str, **kwargs) -> tuple[int, list[str]]:
    out = io.StringIO()
    code = run_dlq(settings, action, out=out, **kwargs)
    return code, out.getvalue().splitlines()


def test_list_shows_each_dead_letter_with_its_reason_and_keeps_it(sqs_endpoint, make_settings, open_queue):
    # Given two permanent failures in the dead-letter queue
    settings = make_settings(sqs_endpoint)
    queue = open_queue(settings)
    dead_letter(queue, "talks/broken.mp3", "not decodable (corrupt or not a media file)")
    dead_letter(queue, "notes.wav", "empty file")
    # When they are listed, twice
    for _ in range(2):
        code, lines = dlq(settings, "list")
        # Then each is named with its reason, and nothing left the dead-letter queue
        assert code == 0 and lines[-1] == "dlq: 2 message(s) dead-lettered"
        assert sorted(line.split(" (dead-lettered")[0] for line in lines[:-1]) == [
            "notes.wav: empty file", "talks/broken.mp3: not decodable (corrupt or not a media file)"]  # fmt: skip
    assert queue.counts().dead_letter == 2 and queue.counts().visible == 0


def test_redrive_sends_them_back_as_first_deliveries_and_purge_needs_a_yes(sqs_endpoint, make_settings, open_queue):
    settings = make_settings(sqs_endpoint)
    queue = open_queue(settings)
    dead_letter(queue, "a.mp3", "fixed since")
    # When the cause is fixed and they are redriven
    code, lines = dlq(settings, "redrive")
    assert code == 0 and lines[-1] == "dlq: 1 message(s) sent back to the job queue"
    # Then the job queue holds them again, each a first delivery in its own group
    received = queue.receive_one(wait_s=1, visibility_timeout_s=30)
    assert json.loads(received.body) == {"path": "a.mp3"} and received.receive_count == 1
    assert queue.counts().dead_letter == 0
    # And purge drops dead letters only when confirmed
    queue.dead_letter(received, "g-a.mp3", "broken again")
    assert dlq(settings, "purge")[0] == 2 and queue.counts().dead_letter == 1
    code, lines = dlq(settings, "purge", yes=True)
    assert code == 0 and lines == ["dlq: purged about 1 message(s); failure records under .fleet/failed/ stay"]
    assert dlq(settings, "list")[1] == ["dlq: 0 message(s) dead-lettered"]
