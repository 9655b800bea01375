"""Worker parts that need no queue: backoff, thread shares, writers, OOM and word-timing fallbacks, lease loss."""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pytest

from fleet.job.identity import TranscriptionSettings
from fleet.job.messages import SourceFingerprint, TranscriptionJob
from fleet.settings import FleetSettings
from fleet.state.atomic import remove_temps_of, temp_prefix
from fleet.state.records import CommitRecord
from fleet.transport.backoff import retry_delay_s
from fleet.transport.queue import QueueError, ReceivedMessage
from fleet.transport.sqs import SqsQueue
from worker.job.result import JobResult, Outcome
from worker.job.writers import LeaseLost, OutputPathError, commit_json, render, write_outputs
from worker.queue_loop.loop import Worker
from worker.queue_loop.shutdown import Shutdown
from worker.speech.alignment import Alignment
from worker.speech.device import is_out_of_memory
from worker.speech.diarization import Diarization
from worker.speech.language import vote_language
from worker.speech.pipeline import Pipeline
from worker.threads import threads_per_worker

RESULT = {"segments": [{"text": " Hello there.", "start": 0.5, "end": 1.75}], "language": "en"}
OPTIONS = {"max_line_width": None, "max_line_count": None, "highlight_words": False}
RECORD = CommitRecord(source="a.mp3", fingerprint=SourceFingerprint(size=1, mtime_ns=2), settings_key="k",
                      settings=TranscriptionSettings())  # fmt: skip


def test_backoff_doubles_and_is_capped():
    assert [retry_delay_s(n, 30) for n in (1, 2, 3)] == [30, 60, 120]
    assert retry_delay_s(50, 30) == 3600 and retry_delay_s(3, 0) == 0


def test_threads_are_a_fair_share_unless_configured():
    assert threads_per_worker(0, workers=2, cpus=2) == 1
    assert threads_per_worker(0, workers=1, cpus=16) == 16
    assert threads_per_worker(0, workers=4, cpus=2) == 1
    assert threads_per_worker(3, workers=4, cpus=2) == 3


def test_writers_render_every_format():
    assert render(RESULT, "txt", OPTIONS) == "Hello there.\n"
    assert "00:00:00,500 --> 00:00:01,750" in render(RESULT, "srt", OPTIONS)
    assert render(RESULT, "vtt", OPTIONS).startswith("WEBVTT")
    assert render(RESULT, "tsv", OPTIONS).splitlines()[1] == "500\t1750\tHello there."
    assert commit_json(RECORD, RESULT).startswith('{"fleet": {')


def test_outputs_are_written_json_last_with_owner_and_no_temp_left(tmp_path):
    written = write_outputs(tmp_path, "deep/er/a", ("json", "txt", "srt"), RESULT, RECORD, OPTIONS, lambda: True,
                            owner=(4321, 4321))  # fmt: skip
    assert [p.name for p in written] == ["a.txt", "a.srt", "a.json"]
    assert all(p.stat().st_uid == 4321 for p in written)
    assert (tmp_path / "deep").stat().st_uid == 4321 and (tmp_path / "deep" / "er").stat().st_gid == 4321
    assert not list(tmp_path.rglob(".fleet-tmp-*"))


def test_no_output_is_written_once_the_lease_is_lost(tmp_path):
    with pytest.raises(LeaseLost):
        write_outputs(tmp_path, "a", ("txt", "json"), RESULT, RECORD, OPTIONS, lambda: False)
    assert list(tmp_path.iterdir()) == []


def test_leftover_temps_of_exactly_these_outputs_are_removed(tmp_path):
    mine = tmp_path / f"{temp_prefix('take.txt')}abcd1234"
    other_base = tmp_path / f"{temp_prefix('take.txt.txt')}abcd1234"
    mine.touch()
    other_base.touch()
    assert remove_temps_of(tmp_path, ["take.txt"]) == 1
    assert not mine.exists() and other_base.exists()


class OomDecoder:
    """Raises CUDA OOM until the batch size is below `fail_below`."""

    def __init__(self, fail_below: int) -> None:
        self.fail_below = fail_below
        self.batches: list[int] = []

    def decode(self, audio, *, language, task, options, batch_size, want_word_timings, progress=None):
        self.batches.append(batch_size)
        if batch_size >= self.fail_below:
            raise RuntimeError("CUDA failed with error out of memory")
        return "decoded"


def bare_pipeline(asr=None, decoder=None) -> Pipeline:
    pipeline = Pipeline.__new__(Pipeline)  # no model load: this tests the retry policy alone
    pipeline.settings, pipeline.device, pipeline.batch_size, pipeline.asr = FleetSettings(), "cuda", 8, asr
    pipeline.decoder = decoder
    pipeline.fallbacks = {}
    pipeline.device_index = 0
    pipeline.alignment = Alignment(pipeline.settings, "cuda", pipeline.torch_device, pipeline._record_fallback)
    pipeline.diarization = Diarization(pipeline.settings, 1, pipeline.torch_device, pipeline._record_fallback,
                                       pipeline.alignment.drop_gpu_models)  # fmt: skip
    return pipeline


class Aligners:
    """A stand-in alignment cache for one device: hands out a model named after it."""

    def __init__(self, device: str) -> None:
        self.device = device

    def get(self, language, model_name):
        return SimpleNamespace(model=f"wav2vec2 on {self.device}", metadata={})


def test_alignment_out_of_gpu_memory_runs_on_the_cpu_for_that_file_and_frees_the_gpu_cache(monkeypatch):
    from worker.audio.samples import ArrayAudio

    pipeline = bare_pipeline()
    pipeline.alignment.aligners = gpu_cache = Aligners("cuda:0")
    pipeline.alignment._cache = lambda device: Aligners(pipeline.torch_device(device))
    freed = []
    monkeypatch.setattr("worker.speech.device.free_cuda_cache", lambda: freed.append(True))

    def align(segments, model, metadata, audio, device, progress_callback=None):
        if device != "cpu":
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return {"segments": [{**s, "words": [{"word": "hi", "start": s["start"], "end": s["end"]}]} for s in segments]}

    pipeline.alignment.align_fn = align
    result = {"segments": [{"start": 700.0, "end": 701.0, "text": " hi"}], "language": "en"}
    audio = ArrayAudio(np.zeros(16000 * 702, dtype=np.float32))
    alignment = pipeline.alignment.align(result, audio, "en", TranscriptionSettings(), whisper_model=None)
    # The file is aligned on the CPU and says so; the GPU's alignment models were dropped with their memory
    assert alignment.endswith("on the CPU after CUDA out of memory") and freed == [True]
    assert pipeline.alignment.aligners is not gpu_cache and pipeline.device == "cuda"  # the next file tries the GPU again
    assert result["word_segments"] == [{"word": "hi", "start": 700.0, "end": 701.0}]  # in file time
    assert pipeline.fallbacks == {"align device": "CPU after CUDA out of memory (last file)"}
    assert pipeline.device_in_use() == "cuda:0"


def test_diarization_out_of_gpu_memory_runs_on_the_cpu(monkeypatch):
    from worker.audio.samples import ArrayAudio
    from worker.speech.speakers import SpeakerTurns

    pipeline = bare_pipeline()
    pipeline.alignment.aligners = gpu_cache = Aligners("cuda:0")
    pipeline.alignment._cache = lambda device: Aligners(device)
    monkeypatch.setattr("worker.speech.device.free_cuda_cache", lambda: None)

    def gpu_label(samples, low, high):
        raise RuntimeError("CUDA error: out of memory")

    pipeline.diarization.diarizer = SimpleNamespace(name="gpu", label=gpu_label)
    turns = SpeakerTurns([(0.0, 1.0, "SPEAKER_00")], "stand-in 1.0")
    pipeline.diarization._on_cpu = SimpleNamespace(name="cpu", label=lambda samples, low, high: turns)
    result: dict = {"segments": [{"start": 0.2, "end": 0.8, "text": " hi", "words": [{"word": "hi", "start": 0.2, "end": 0.8}]}],
                    "language": "en"}
    speakers = pipeline.diarization.label(result, ArrayAudio(np.zeros(160, dtype=np.float32)), TranscriptionSettings(), "cuda")
    assert speakers == {"backend": "stand-in 1.0", "count": 1, "speakers": ["SPEAKER_00"],
                        "device": "on the CPU after CUDA out of memory"}
    assert result["segments"][0]["speaker"] == "SPEAKER_00" and result["word_segments"][0]["speaker"] == "SPEAKER_00"
    # The GPU's alignment models were dropped to make room, and the worker record says what happened
    assert pipeline.alignment.aligners is not gpu_cache
    assert pipeline.fallbacks == {"diarize device": "CPU after CUDA out of memory (last file)"}


def transcribe(pipeline: Pipeline):
    return pipeline._transcribe(None, TranscriptionSettings(language="en"), lambda language: False)


def test_cuda_oom_halves_the_batch_then_succeeds():
    decoder = OomDecoder(fail_below=3)
    pipeline = bare_pipeline(decoder=decoder)
    assert transcribe(pipeline) == "decoded"
    assert decoder.batches == [8, 4, 2] and pipeline.device == "cuda"


def test_cuda_oom_at_batch_one_moves_to_the_cpu_for_good(monkeypatch):
    gpu, cpu = OomDecoder(fail_below=1), OomDecoder(fail_below=99)
    pipeline = bare_pipeline(decoder=gpu)
    pipeline._load_asr = lambda device: f"whisperX on the {device}"
    monkeypatch.setattr("worker.speech.pipeline.WindowDecoder", lambda asr: cpu if asr == "whisperX on the cpu" else None)
    transcribe(pipeline)
    assert gpu.batches == [8, 4, 2, 1] and cpu.batches == [1] and pipeline.device == "cpu"
    assert pipeline.asr == "whisperX on the cpu" and pipeline.decoder is cpu
    assert is_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate"))


def test_language_vote_weighs_confident_speech_over_a_flat_guess():
    music = [("<|en|>", 0.43), ("<|nn|>", 0.13), ("<|de|>", 0.01)]
    speech = [("<|de|>", 0.71), ("<|en|>", 0.07), ("<|nn|>", 0.03)]
    guess = vote_language([music, speech], [23.6, 21.5])
    assert guess.language == "de" and guess.probability == pytest.approx(0.43, abs=0.01)
    assert [code for code, _ in guess.candidates] == ["de", "en", "nn"]
    # One window is whisper's own detection: its language and probability as they are
    assert vote_language([speech], [10.0]).probability == 0.71
    # A short greeting in another language does not outvote the talk after it
    assert vote_language([[("<|fr|>", 0.9)], [("<|de|>", 0.8)]], [1.5, 28.0]).language == "de"


def test_a_failing_word_timing_fallback_keeps_the_transcript_and_says_why(monkeypatch):
    def broken_timings(*args):
        raise RuntimeError("ctranslate2 align failed")

    monkeypatch.setattr("worker.speech.alignment.add_whisper_word_timings", broken_timings)
    pipeline = bare_pipeline(asr=SimpleNamespace(model="the faster-whisper model"))
    result = {"segments": [{"start": 0.0, "end": 1.0, "text": " hello", "words": [{"word": "half"}]}], "language": "en"}
    alignment = pipeline.alignment.whisper_word_timings(result, None, "en", "transcribe", "no alignment model for 'en'",
                                                        whisper_model="the faster-whisper model")
    assert alignment == "unaligned: no alignment model for 'en'; whisper word timings failed: ctranslate2 align failed"
    assert result["segments"] == [{"start": 0.0, "end": 1.0, "text": " hello"}]  # no half-timed words left behind
    assert pipeline.fallbacks == {"word timings (en)": alignment}  # what the worker record shows


class StaleQueue:
    """A queue whose heartbeat is refused: the receipt handle now belongs to someone else."""

    info = SimpleNamespace(identity="queue@1")
    spec = SimpleNamespace(max_receive_count=5)

    def __init__(self) -> None:
        self.calls: list[str] = []

    def change_visibility(self, handle, timeout_s):
        self.calls.append(f"visibility {timeout_s}")
        raise QueueError("change visibility failed: ReceiptHandleIsInvalid: gone", "ReceiptHandleIsInvalid")

    def lookup(self):
        return self.info  # the same queue: the handle was refused because another worker has the message

    def delete(self, handle):
        self.calls.append("delete")


def test_a_refused_heartbeat_means_the_worker_neither_writes_nor_deletes(monkeypatch, tmp_path):
    settings = FleetSettings(heartbeat_interval_s=0.1, visibility_timeout_s=5, dest_dir=tmp_path)
    queue = StaleQueue()
    seen_lease = []

    def slow_job(job, ctx, lease, on_stage, on_decoded):
        deadline = time.monotonic() + 3
        while lease.held() and time.monotonic() < deadline:
            time.sleep(0.05)
        seen_lease.append(lease.held())
        return JobResult(Outcome.LEASE_LOST if not lease.held() else Outcome.TRANSCRIBED)

    worker = Worker(settings, queue, ctx=None, shutdown=Shutdown(), rss_mb=lambda: 0, run_job=slow_job)
    worker.ctx = SimpleNamespace(pipeline=SimpleNamespace(fallbacks={}, device_in_use=lambda: "cpu"), worker_id="w", owner=None)
    job = TranscriptionJob(path="a.mp3", output_base="a", fingerprint=SourceFingerprint(size=1, mtime_ns=1),
                           settings=TranscriptionSettings(), enqueued_at=0)  # fmt: skip
    worker.handle(ReceivedMessage("m1", "handle", job.model_dump_json(), 1))
    assert seen_lease == [False]
    assert "delete" not in queue.calls and queue.calls[0] == "visibility 5"


def test_a_symlink_in_dest_cannot_make_the_worker_write_elsewhere(tmp_path):
    dest, elsewhere = tmp_path / "dest", tmp_path / "elsewhere"
    dest.mkdir()
    elsewhere.mkdir()
    (dest / "evil").symlink_to(elsewhere)
    for base in ("evil/a", "evil/new/deeper/a"):
        with pytest.raises(OutputPathError):
            write_outputs(dest, base, ("txt", "json"), RESULT, RECORD, OPTIONS, lambda: True)
    assert list(elsewhere.iterdir()) == []


def test_a_file_that_grows_while_it_is_decoded_is_retried_not_failed(monkeypatch, tmp_path):
    from worker.audio.samples import DecodeError
    from worker.job import run as job
    from worker.job.failures import PermanentFailure, TransientFailure

    # Given a recording still being copied in: ffmpeg sees a broken file, and meanwhile it grows
    source = tmp_path / "copying.mp3"
    source.write_bytes(b"\xff\xfb" * 100)
    before = source.stat()
    fingerprint = SourceFingerprint(size=before.st_size, mtime_ns=before.st_mtime_ns)

    def decode_while_it_grows(path, timeout_s, stream_index):
        with open(path, "ab") as growing:
            growing.write(b"\x00" * 4096)
        raise DecodeError("not decodable (corrupt or not a media file)")

    monkeypatch.setattr(job, "spool_audio", decode_while_it_grows)
    # Then it is a transient failure (retried later), not a permanent one
    with pytest.raises(TransientFailure, match="source file changed while it was read"):
        job._decode(source, fingerprint, 10, None)
    # And the same failure on an unchanged file stays permanent
    monkeypatch.setattr(job, "spool_audio", lambda *args: (_ for _ in ()).throw(DecodeError("not decodable")))
    now = source.stat()
    with pytest.raises(PermanentFailure):
        job._decode(source, SourceFingerprint(size=now.st_size, mtime_ns=now.st_mtime_ns), 10, None)


def test_a_source_gone_for_good_clears_its_failure_record(tmp_path):
    from fleet.state.paths import failure_record_path
    from worker.job.failures import write_failure_record
    from worker.job.lease import Lease
    from worker.job.run import JobContext, run_job

    # Given a last-attempt failure record for a file that was then deleted (the disk itself is there)
    source, dest = tmp_path / "source", tmp_path / "dest"
    source.mkdir()
    (source / "other.mp3").write_bytes(b"x")
    job = TranscriptionJob(path="gone.mp3", output_base="gone", fingerprint=SourceFingerprint(size=1, mtime_ns=1),
                           settings=TranscriptionSettings(), formats=("json",), enqueued_at=0.0)  # fmt: skip
    write_failure_record(dest, job, job.fingerprint, "last attempt of 5", "", "w", None)
    assert failure_record_path(dest, "gone.mp3").exists()
    # When a worker takes its message
    ctx = JobContext(settings=FleetSettings(source_dir=source, dest_dir=dest), pipeline=None, worker_id="w")
    result = run_job(job, ctx, Lease(), lambda *_: None)
    # Then the file is gone, and so is the record that said it failed
    assert result.outcome is Outcome.SOURCE_GONE
    assert not failure_record_path(dest, "gone.mp3").exists()


def test_worker_records_silent_for_a_day_age_out_of_status(tmp_path):
    from app.status import WORKER_RECORD_TTL_S, worker_records

    folder = tmp_path / ".fleet" / "workers"
    folder.mkdir(parents=True)
    now = 10 * WORKER_RECORD_TTL_S
    for name, age_s in (("replaced-container", WORKER_RECORD_TTL_S + 1), ("recent", 60)):
        (folder / f"{name}.json").write_text(
            f'{{"worker": "{name}", "state": "stopped", "last_beat": {now - age_s}, "lost_after_s": 35}}')
    assert [r.worker for r in worker_records(tmp_path, now)] == ["recent"]


class SignalDuringPoll:
    """A queue whose long poll returns a message while the stop signal arrives (the race at a redeploy)."""

    def __init__(self, shutdown: Shutdown, body: str) -> None:
        self.shutdown, self.body, self.calls = shutdown, body, []

    def receive_one(self, wait_s, visibility_timeout_s=None):
        import signal

        self.shutdown._handle(signal.SIGTERM, None)  # the signal lands while the response is on its way
        return ReceivedMessage("m1", "handle", self.body, 1)

    def hand_back(self, message, group_id):
        self.calls.append(("hand back", message.message_id, group_id))


def test_a_message_received_as_the_stop_signal_arrives_is_handed_back_at_once(tmp_path):
    # Given a worker idle in its long poll
    job = TranscriptionJob(path="talks/a.mp3", output_base="talks/a", fingerprint=SourceFingerprint(size=1, mtime_ns=1),
                           settings=TranscriptionSettings(), enqueued_at=0)  # fmt: skip
    shutdown = Shutdown()
    queue = SignalDuringPoll(shutdown, job.model_dump_json())
    (tmp_path / "source" / "talks").mkdir(parents=True)
    settings = FleetSettings(source_dir=tmp_path / "source", dest_dir=tmp_path / "dest", min_free_mb=0)
    settings.dest_dir.mkdir()
    worker = Worker(settings, queue, ctx=None, shutdown=shutdown, rss_mb=lambda: 0)
    # When the stop signal arrives just as a message comes back from the poll
    assert worker.run() == 0
    # Then the message is handed back at once (a fresh copy, visible now), not hidden for a visibility timeout
    assert queue.calls == [("hand back", "m1", job.group_id())]


def test_a_lease_is_held_by_time_not_by_hope_and_an_orphaned_one_may_still_write():
    from worker.job.lease import Lease

    now = [100.0]
    lease = Lease(visibility_timeout_s=60, clock=lambda: now[0])
    # Held for the visibility timeout less a margin after each successful heartbeat
    now[0] = 154.9
    assert lease.held()
    lease.extended(150.0)
    now[0] = 204.9
    assert lease.held()
    # Past that, however long the heartbeat call keeps retrying, the message may be someone else's
    now[0] = 205.0
    assert not lease.held()
    lease.extended(205.0)  # a late success does not revive it
    assert not lease.held()
    # But when the queue that held the message is gone, nobody else can own it: writing is safe
    lease.orphan()
    assert lease.held() and lease.orphaned


def test_heartbeats_use_a_client_with_short_timeouts_and_few_attempts():
    from fleet.transport.sqs import HEARTBEAT_ATTEMPTS, HEARTBEAT_TIMEOUT_S

    settings = FleetSettings(aws_endpoint_url="http://127.0.0.1:9", queue_timeout_s=10, queue_max_attempts=6)
    config = SqsQueue.connect(settings.queue_endpoint(), settings.queue_spec(), for_heartbeats=True)._client.meta.config
    assert (config.connect_timeout, config.read_timeout, config.retries["total_max_attempts"]) == (
        HEARTBEAT_TIMEOUT_S, HEARTBEAT_TIMEOUT_S, HEARTBEAT_ATTEMPTS)  # fmt: skip
    long_poll = SqsQueue.connect(settings.queue_endpoint(), settings.queue_spec())._client.meta.config
    assert long_poll.read_timeout == 35 and long_poll.retries["total_max_attempts"] == 6


def test_decode_failures_of_the_surroundings_are_transient_of_the_bytes_permanent():
    from worker.audio.samples import DecodeError, _reason

    assert DecodeError("decoding took longer than 1800 s", transient=True).transient
    for stderr in ("x.mp3: Permission denied", "x.mp3: Input/output error", "x.mp3: Stale file handle"):
        assert DecodeError(_reason(stderr)).transient, stderr
    for stderr in ("Invalid data found when processing input", "Stream map '0:a:0' matches no streams."):
        assert not DecodeError(_reason(stderr)).transient, stderr


def test_a_missing_ffmpeg_is_one_clear_start_up_error(tmp_path):
    import subprocess
    import sys

    env = {"PATH": str(tmp_path), "FLEET_SOURCE_DIR": str(tmp_path), "FLEET_DEST_DIR": str(tmp_path / "dest"),
           "HOME": str(tmp_path)}  # fmt: skip
    result = subprocess.run([sys.executable, "-m", "app.cli", "worker"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == ("fleet: ffmpeg not found on PATH: install it (Debian: apt-get install ffmpeg); "
                                     "every file is decoded with it")  # fmt: skip


def test_a_lost_lease_stops_the_job_within_one_window(monkeypatch, tmp_path):
    from worker.audio.samples import ArrayAudio
    from worker.job import run as job_run
    from worker.job.lease import Lease
    from worker.job.run import JobContext, run_job

    # Given a long recording being transcribed window by window
    source, dest = tmp_path / "source", tmp_path / "dest"
    source.mkdir()
    dest.mkdir()
    (source / "long.wav").write_bytes(b"x" * 100)
    info = (source / "long.wav").stat()
    job = TranscriptionJob(path="long.wav", output_base="long", enqueued_at=0.0, settings=TranscriptionSettings(),
                           fingerprint=SourceFingerprint(size=info.st_size, mtime_ns=info.st_mtime_ns))  # fmt: skip
    monkeypatch.setattr(job_run, "_decode", lambda *args: ArrayAudio(np.zeros(16000, dtype=np.float32)))
    monkeypatch.setattr(job_run, "probe_audio_streams", lambda *args: [])
    lease = Lease(visibility_timeout_s=60)
    windows_run = []

    class Pipeline:
        def run(self, audio, transcription, on_stage, on_language=None):
            for window in range(100):
                on_stage("transcribe", window)
                windows_run.append(window)
                if window == 2:
                    lease.lose()  # the heartbeat found the receipt handle refused
            raise AssertionError("ran to the end with a lost lease")

    ctx = JobContext(settings=FleetSettings(source_dir=source, dest_dir=dest, min_free_mb=0), pipeline=Pipeline(),
                     worker_id="w")  # fmt: skip
    # When the lease is lost after the third window
    result = run_job(job, ctx, lease, lambda *_: None)
    # Then the job stops before the fourth, and nothing is written
    assert result.outcome is Outcome.LEASE_LOST and windows_run == [0, 1, 2]
    assert list(dest.iterdir()) == []


class IdleQueue:
    """An empty queue: every poll comes back with nothing; `drained()` answers as told."""

    def __init__(self, drained: list[bool]) -> None:
        self.waits: list[int] = []
        self.answers = drained

    def receive_one(self, wait_s, visibility_timeout_s=None):
        self.waits.append(wait_s)
        if len(self.waits) > 10:
            raise AssertionError("the worker kept polling after the queue was drained")
        return None

    def drained(self):
        return self.answers.pop(0)


def test_sigusr1_makes_an_idle_worker_leave_once_the_queue_is_drained_without_a_long_poll(tmp_path):
    import os
    import signal

    # Given a worker that long-polls an empty queue, with its signal handlers installed
    settings = FleetSettings(source_dir=tmp_path / "source", dest_dir=tmp_path / "dest", min_free_mb=0, receive_wait_s=20)
    (settings.source_dir / "talks").mkdir(parents=True)  # an empty source looks like a share not mounted
    settings.dest_dir.mkdir()
    shutdown = Shutdown()
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)}
    shutdown.install()
    try:
        queue = IdleQueue(drained=[False, True])  # another worker still holds the last file at first
        worker = Worker(settings, queue, ctx=None, shutdown=shutdown, rss_mb=lambda: 0)
        # When the local run says everything is queued (SIGUSR1) before the worker's first poll
        os.kill(os.getpid(), signal.SIGUSR1)
        # Then the worker short-polls until the queue is drained, and leaves by itself
        assert worker.run() == 0
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    assert queue.waits == [0, 0] and queue.answers == []
    assert not shutdown.requested.is_set()  # not a stop: nothing was handed back or cut short
