"""The worker loop in one process: the in-memory queue, the real job (ffmpeg, writers, done-check), a stub pipeline.

These test what the loop and settle decide (message validation, the retry budget, recycling, stale settings):
nothing here needs a model or a queue server. The end-to-end paths users take stay in tests/integration.
"""

from __future__ import annotations

import io
import json
import re
import wave
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from director.main import run_director
from fleet.job.messages import TranscriptionJob
from fleet.settings import FleetSettings
from fleet.state.planned_settings import PlannedSettingsReader
from fleet.transport.memory import MemoryQueue
from fleet.transport.queue import OutgoingMessage
from worker.job.run import JobContext
from worker.queue_loop.loop import Worker
from worker.queue_loop.shutdown import Shutdown
from worker.speech.pipeline import Transcript


class StubPipeline:
    """Stands in for the speech stages: one segment of text per file, at once; counts its runs."""

    model_name, model_path, device = "stub", "stub", "cpu"

    def __init__(self) -> None:
        self.fallbacks: dict[str, str] = {}
        self.runs: list[dict[str, Any]] = []
        self.unloads = self.reloads = 0

    def device_in_use(self) -> str:
        return "cpu"

    @property
    def loaded(self) -> bool:
        return self.unloads == self.reloads

    def unload(self) -> None:
        self.unloads += 1

    def run(self, audio, settings, on_stage, on_language=None) -> Transcript:
        if not self.loaded:
            self.reloads += 1
        on_stage("transcribe", 0.0)  # where the real pipeline notices a lost lease
        self.runs.append(settings.decoding.model_dump())
        words = [{"word": "Hello.", "start": 0.0, "end": 0.5, "score": 1.0}]
        result = {"segments": [{"text": " Hello.", "start": 0.0, "end": 0.5, "words": words}], "language": "en"}
        return Transcript(result=result, language="en", language_probability=1.0, alignment="stub", diarization="off")


def half_second_wav(path: Path) -> Path:
    """A real WAV file ffmpeg decodes: half a second of quiet noise."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(bytes(i % 7 for i in range(16000)))
    return path


@pytest.fixture
def settings(tmp_path: Path) -> FleetSettings:
    source, dest = tmp_path / "source", tmp_path / "dest"
    source.mkdir()
    dest.mkdir()
    return FleetSettings(source_dir=source, dest_dir=dest, queue_name="loop-test", min_free_mb=0, receive_wait_s=0,
                         whisper_model="tiny.en", whisper_align=False, worker_id="w1")  # fmt: skip


def worker_on(settings: FleetSettings, queue: MemoryQueue, pipeline: StubPipeline | None = None) -> Worker:
    ctx = JobContext(settings=settings, pipeline=pipeline or StubPipeline(), worker_id=settings.worker_id,
                     planned=PlannedSettingsReader(settings.dest_dir))  # fmt: skip
    return Worker(settings, queue, ctx, Shutdown(), rss_mb=lambda: 0)


def direct(settings: FleetSettings, queue: MemoryQueue) -> str:
    out = io.StringIO()
    assert run_director(settings, out=out, queue=queue).exit_code == 0
    return out.getvalue().strip().splitlines()[-1]


def run_until_empty(worker: Worker, **kwargs: Any) -> list[dict[str, Any]]:
    """Run the worker until the queue is drained; the events it logged."""
    structlog.contextvars.clear_contextvars()
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as events:
        assert worker.run(until_empty=True, **kwargs) == 0
    return events


def finished(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == "file finished"]


def test_hostile_messages_are_dead_lettered_and_nothing_outside_the_roots_is_touched(settings, tmp_path):
    # Given a queue of hostile messages, and a symlink in the source that leads outside it
    outside = tmp_path / "outside"
    secret = half_second_wav(outside / "secret.wav")
    (settings.source_dir / "escape.wav").symlink_to(secret)
    job = TranscriptionJob(path="x.wav", output_base="x", fingerprint={"size": 1, "mtime_ns": 1},
                           settings={"model": "tiny.en", "align": False}, enqueued_at=0)  # fmt: skip
    valid = json.loads(job.model_dump_json())
    bodies = [
        "not json",
        json.dumps({**valid, "version": 99}),
        json.dumps({**valid, "path": "../../etc/passwd"}),
        json.dumps({**valid, "path": "/etc/passwd"}),
        json.dumps({**valid, "path": "a\nb.wav"}),
        json.dumps({**valid, "output_base": "../../outside/stolen"}),
        json.dumps({**valid, "path": "escape.wav", "output_base": "escape"}),
        "x" * 200_000,
    ]
    queue = MemoryQueue(settings.queue_spec())
    queue.ensure()
    queue.send_batch([OutgoingMessage(f"h{i}", f"g{i}", body) for i, body in enumerate(bodies)])
    before = sorted(p.name for p in tmp_path.iterdir())
    # When a worker drains the queue
    pipeline = StubPipeline()
    events = run_until_empty(worker_on(settings, queue, pipeline))
    # Then every one is dead-lettered, seven rejected unread and the escaping one failed, and nothing was written
    assert queue.counts().dead_letter == len(bodies) and queue.counts().pending == 0
    assert len([e for e in events if e["event"] == "message rejected"]) == 7
    assert [(e["file"], e["outcome"]) for e in finished(events)] == [("escape.wav", "failed")]
    assert pipeline.runs == []
    assert [p.name for p in settings.dest_dir.rglob("*") if ".fleet" not in p.parts] == []
    assert sorted(p.name for p in tmp_path.iterdir()) == before and [p.name for p in outside.iterdir()] == ["secret.wav"]


def test_unwritable_destination_is_retried_for_its_time_budget_then_dead_lettered_with_a_reason(settings):
    # Given a file whose output folder cannot be created (a plain file sits where it should be)
    half_second_wav(settings.source_dir / "talks" / "fox.wav")
    (settings.dest_dir / "talks").write_text("in the way")
    settings = settings.model_copy(update={"retry_backoff_s": 0, "retry_budget_s": 1.0})
    queue = MemoryQueue(settings.queue_spec())
    direct(settings, queue)
    # When a worker tries, with no backoff between attempts and a 1 s budget standing for the day
    events = run_until_empty(worker_on(settings, queue))
    # Then it retried (transient) until the budget was spent, and said why
    attempts = finished(events)
    assert len(attempts) >= 2 and {e["outcome"] for e in attempts} == {"retry"}
    assert "cannot write outputs" in attempts[0]["reason"]
    assert queue.counts().dead_letter == 1 and queue.counts().pending == 0
    (record,) = [json.loads(p.read_text()) for p in (settings.dest_dir / ".fleet" / "failed").iterdir()]
    assert re.match(rf"gave up after {len(attempts)} attempts over \d+ s: cannot write outputs", record["reason"]), record


def test_worker_recycles_itself_after_max_files(settings):
    # Given two files queued
    for name in ("a.wav", "b.wav"):
        half_second_wav(settings.source_dir / name)
    queue = MemoryQueue(settings.queue_spec())
    assert ", enqueued 2," in direct(settings, queue)
    # When a worker may take one file per process
    events = run_until_empty(worker_on(settings, queue), max_files=1)
    # Then it leaves after one, and the other waits for the fresh process
    assert [e["outcome"] for e in finished(events)] == ["transcribed"]
    assert queue.counts().visible == 1


def test_a_backlog_queued_with_old_settings_is_not_run_once_the_settings_change(settings):
    # Given a backlog queued with yesterday's settings
    for name in ("fox.wav", "owl.wav"):
        half_second_wav(settings.source_dir / name)
    queue = MemoryQueue(settings.queue_spec())
    assert ", enqueued 2," in direct(settings, queue)
    # When the user gives the folder a prompt before any worker ran, and the director plans again
    (settings.source_dir / ".whisper-fleet.toml").write_text('initial_prompt = "A story about a fox."\n')
    assert ", enqueued 2," in direct(settings, queue)
    pipeline = StubPipeline()
    events = run_until_empty(worker_on(settings, queue, pipeline))
    # Then each file ran once, with today's settings; the old messages were acknowledged unrun, saying why
    outcomes = sorted(e["outcome"] for e in finished(events))
    assert outcomes == ["superseded", "superseded", "transcribed", "transcribed"]
    assert all("settings changed since it was queued" in e["reason"] for e in finished(events) if e["outcome"] == "superseded")
    assert [run["initial_prompt"] for run in pipeline.runs] == ["A story about a fox."] * 2
    assert ", done 2," in direct(settings, queue)


def test_a_message_delivered_twice_is_transcribed_once(settings):
    # Given one file queued, and the same job sent again (a rerun after the five-minute dedup window)
    half_second_wav(settings.source_dir / "fox.wav")
    queue = MemoryQueue(settings.queue_spec())
    direct(settings, queue)
    (body,) = [json.dumps(b) for b in queue.bodies()]
    queue.send_batch([OutgoingMessage("again", "other-group", body)])
    pipeline = StubPipeline()
    # When a worker drains the queue
    events = run_until_empty(worker_on(settings, queue, pipeline))
    # Then the second delivery finds the outputs done
    assert sorted(e["outcome"] for e in finished(events)) == ["already done", "transcribed"]
    assert len(pipeline.runs) == 1



def test_an_idle_worker_frees_its_models_says_so_and_loads_them_again_for_the_next_file(settings, tmp_path):
    # Given a worker whose queue has nothing for it, with models unloaded after two seconds of that
    import threading
    import time

    from fleet.state.worker_record import read_worker_records

    settings = settings.model_copy(update={"unload_idle_s": 2, "receive_wait_s": 1})
    queue, pipeline = MemoryQueue(settings.queue_spec()), StubPipeline()
    queue.ensure()
    (settings.source_dir / "notes.txt").write_text("a mounted disk is not empty")
    worker = worker_on(settings, queue, pipeline)
    runner = threading.Thread(target=worker.run, daemon=True)
    runner.start()

    def until(condition, what: str, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert time.monotonic() < deadline, what
            time.sleep(0.05)

    try:
        # When it has waited longer than that: the models are unloaded once, and its record says so
        until(lambda: pipeline.unloads == 1, "models unloaded")
        until(lambda: read_worker_records(settings.dest_dir)[0].models_unloaded, "the record says unloaded")
        assert pipeline.unloads == 1 and pipeline.reloads == 0  # once, not at every empty poll
        # And a file arrives: it is transcribed with the models loaded again, and the record says they are
        half_second_wav(settings.source_dir / "a.wav")
        direct(settings, queue)
        until(lambda: (settings.dest_dir / "a.json").exists(), "a.json written")
        until(lambda: not read_worker_records(settings.dest_dir)[0].models_unloaded, "the record says loaded")
        assert pipeline.reloads == 1 and len(pipeline.runs) == 1
        # And idle again, they go again
        until(lambda: pipeline.unloads == 2, "unloaded a second time")
    finally:
        worker.shutdown.requested.set()
        runner.join(10)
    assert not runner.is_alive()
