"""`fleet dlq`: list what was dead-lettered and why, redrive it, purge; on LocalStack and on moto's server."""

from __future__ import annotations

import io
import json
import time

import pytest

from app.dlq import LetterFilter, run_dlq
from fleet.job.messages import SourceFingerprint, TranscriptionJob
from fleet.transport.queue import OutgoingMessage
from fleet.transport.sqs import SqsQueue

pytestmark = pytest.mark.queue


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


def test_list_ends_and_shows_every_letter_when_it_is_slower_than_its_hide_time(sqs_endpoint, make_settings, open_queue,
                                                                            monkeypatch):  # fmt: skip
    import app.dlq

    # Given 12 dead letters, three of them about one file (one FIFO group: a received one hides the others)
    settings = make_settings(sqs_endpoint)
    queue = open_queue(settings)
    for attempt in range(3):
        body = json.dumps({"path": "same.mp3"})
        queue.send_batch([OutgoingMessage(dedup_id=f"same-{attempt}", group_id="g-same.mp3", body=body)])
        queue.dead_letter(queue.receive_one(wait_s=1, visibility_timeout_s=30), "g-same.mp3", f"attempt {attempt}")
    for number in range(9):
        dead_letter(queue, f"file{number}.mp3", "empty file")
    # When listing takes longer than the time it hides each letter for
    monkeypatch.setattr(app.dlq, "WALK_HIDE_S", 2)
    requeue = queue.requeue_dead_letter
    monkeypatch.setattr(SqsQueue, "requeue_dead_letter", lambda self, *args: time.sleep(0.4) or requeue(*args))
    code, lines = dlq(settings, "list")
    # Then it ends, and names every letter once, all three of the one file's too
    assert code == 0 and lines[-1] == "dlq: 12 message(s) dead-lettered"
    assert sorted(line.split(" (dead-lettered")[0] for line in lines if line.startswith("same.mp3")) == [
        "same.mp3: attempt 0", "same.mp3: attempt 1", "same.mp3: attempt 2"]  # fmt: skip
    assert queue.counts().dead_letter == 12


def old_job(settings, path: str, **changes) -> TranscriptionJob:
    """A job as the director queued it back then, with that day's settings."""
    source = settings.source_dir / path
    info = source.stat()
    return TranscriptionJob(path=path, output_base=path.rsplit(".", 1)[0], enqueued_at=time.time() - 86400 * 20,
                            fingerprint=SourceFingerprint(size=info.st_size, mtime_ns=info.st_mtime_ns),
                            settings=settings.transcription().model_copy(update=changes))  # fmt: skip


def test_redrive_replans_the_chosen_files_with_todays_settings(sqs_endpoint, make_settings, open_queue):
    from fleet.state.failures import write_failure_record

    # Given two files dead-lettered weeks ago, queued with French as the language then, and a third (today's
    # settings) for another reason; each with the failure record its worker wrote
    settings = make_settings(sqs_endpoint, min_age_s=0)
    settings.source_dir.mkdir(parents=True)
    settings.dest_dir.mkdir(parents=True)
    for name in ("a.mp3", "talks/b.mp3", "c.mp3"):
        (settings.source_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (settings.source_dir / name).write_bytes(b"\xff\xfb" * 200)
    queue = open_queue(settings)
    for name, reason in (("a.mp3", "source not available: disk away"), ("talks/b.mp3", "source not available: disk away"),
                         ("c.mp3", "not decodable (corrupt or not a media file)")):  # fmt: skip
        job = old_job(settings, name, **({} if name == "c.mp3" else {"language": "fr"}))
        write_failure_record(settings.dest_dir, job, job.fingerprint, reason, "", "w1")
        queue.send_batch([OutgoingMessage(dedup_id=job.dedup_id(), group_id=job.group_id(), body=job.model_dump_json())])
        queue.dead_letter(queue.receive_one(wait_s=1, visibility_timeout_s=30), job.group_id(), reason)
    # When the ones that failed for the disk are redriven
    code, lines = dlq(settings, "redrive", chosen=LetterFilter(reason="not available"))
    # Then the director planned them again with today's settings (no French), and only their letters left
    assert code == 0 and lines[-1] == "dlq: 2 message(s) sent back to the job queue, planned with today's settings", lines
    sent = []
    while (message := queue.receive_one(wait_s=1, visibility_timeout_s=30)) is not None:
        sent.append(TranscriptionJob.model_validate_json(message.body))
        queue.delete(message.receipt_handle)
    assert sorted(job.path for job in sent) == ["a.mp3", "talks/b.mp3"]
    assert all(job.settings.key() == settings.transcription().key() and job.settings.language is None for job in sent)
    code, lines = dlq(settings, "list")
    assert lines[-1] == "dlq: 1 message(s) dead-lettered" and lines[0].startswith("c.mp3: not decodable")
    # And a filtered purge drops only what it names
    code, lines = dlq(settings, "purge", yes=True, chosen=LetterFilter(path="talks"))
    assert code == 0 and lines == ["dlq: purged 0 of 1 message(s)"]
    code, lines = dlq(settings, "purge", yes=True, chosen=LetterFilter(path="*.mp3", reason="decodable"))
    assert code == 0 and lines[-1] == "dlq: purged 1 of 1 message(s)" and queue.counts().dead_letter == 0


def test_purge_needs_a_yes_and_without_a_filter_drops_everything(sqs_endpoint, make_settings, open_queue):
    settings = make_settings(sqs_endpoint)
    queue = open_queue(settings)
    dead_letter(queue, "a.mp3", "broken")
    assert dlq(settings, "purge")[0] == 2 and queue.counts().dead_letter == 1
    code, lines = dlq(settings, "purge", yes=True)
    assert code == 0 and lines == ["dlq: purged about 1 message(s); failure records under .fleet/failed/ stay"]
    assert dlq(settings, "list")[1] == ["dlq: 0 message(s) dead-lettered"]
