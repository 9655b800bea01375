"""Fault injection: nothing is lost, nothing is done twice (see RELIABILITY.md for the table).

Real host LocalStack, real workers and whisperX (tiny.en) throughout, except the 2,000-file
burst, which replaces only the model call with an empty transcript: 2,000 real transcriptions
would take ~10 minutes of CI for no extra coverage of the queue, state and output paths.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from director.main import run_director
from fleet.job.identity import OUTPUT_FORMATS
from fleet.state.paths import workers_dir
from tests.support import speech
from tests.support.fleet_procs import FleetProcess, copy_tree, direct, fleet_env, start_worker, temp_files
from tests.support.paths import REPO_ROOT
from tests.support.ports import free_port

pytestmark = [pytest.mark.queue, pytest.mark.model]
HOST_SCRIPT = REPO_ROOT / "localstack" / "host.sh"
LONG_FILE_S = 1300  # longer than two VAD pieces: the third starts where a region ran into the second's margin


def transcribed(*workers: FleetProcess) -> Counter[str]:
    """How many times each file was transcribed, over every worker's log."""
    return Counter(e["file"] for w in workers for e in w.events()
                   if e.get("event") == "file finished" and e["outcome"] == "transcribed")  # fmt: skip


def outputs_complete(dest: Path, base: str) -> bool:
    return all((dest / f"{base}.{fmt}").exists() for fmt in OUTPUT_FORMATS)


def test_worker_killed_twice_mid_file_third_finishes_it_once(localstack_endpoint, make_settings, open_queue,
                                                             speech_corpus, models_dir, tmp_path):  # fmt: skip
    settings = make_settings(localstack_endpoint, models_dir=models_dir, whisper_model="tiny.en", whisper_align=False)
    copy_tree(speech_corpus / "long", settings.source_dir)
    direct(settings)
    lease = {"FLEET_VISIBILITY_TIMEOUT_S": "5", "FLEET_HEARTBEAT_INTERVAL_S": "1"}
    killed = []
    for attempt in (1, 2):
        worker = start_worker(settings, tmp_path, f"victim{attempt}", **lease)
        started = worker.wait_for_event("file started", timeout_s=180, file="long talk.wav")
        assert started["receive_count"] == attempt
        worker.wait_for_stage(settings.dest_dir)
        worker.kill()
        killed.append(worker)
    survivor = start_worker(settings, tmp_path, "survivor", FLEET_WORKER_ID="survivor", **lease)
    third = survivor.wait_for_event("file started", timeout_s=180, file="long talk.wav")
    assert third["receive_count"] == 3  # the receive count is in the log ...
    assert survivor.wait() == 0
    record = json.loads((settings.dest_dir / ".fleet" / "workers" / "survivor.json").read_text())
    assert record["files_done"] == 1  # ... and the worker's status record counted the file once
    assert transcribed(*killed, survivor) == {"long talk.wav": 1}
    assert outputs_complete(settings.dest_dir, "long talk") and temp_files(settings.dest_dir) == []
    assert open_queue(settings).counts().dead_letter == 0


def test_a_file_that_kills_every_worker_ends_failed_not_queued_forever(localstack_endpoint, make_settings, open_queue,
                                                                       speech_corpus, models_dir, tmp_path):  # fmt: skip
    # Given maxReceiveCount 2 and a file whose processing dies every time (here: kill -9)
    settings = make_settings(localstack_endpoint, models_dir=models_dir, whisper_model="tiny.en", whisper_align=False,
                             max_receive_count=2)  # fmt: skip
    copy_tree(speech_corpus / "long", settings.source_dir)
    direct(settings)
    lease = {"FLEET_VISIBILITY_TIMEOUT_S": "5", "FLEET_HEARTBEAT_INTERVAL_S": "1", "FLEET_MAX_RECEIVE_COUNT": "2"}
    for attempt in (1, 2):
        worker = start_worker(settings, tmp_path, f"victim{attempt}", **lease)
        worker.wait_for_event("file started", timeout_s=180, file="long talk.wav")
        worker.wait_for_stage(settings.dest_dir)
        worker.kill()
    # When SQS dead-letters it on the next receive once its lease ran out (no worker sees that)
    queue = open_queue(settings)
    deadline = time.monotonic() + 60
    while queue.counts().dead_letter != 1 and time.monotonic() < deadline:
        assert queue.receive_one(wait_s=1) is None  # never a third delivery
    assert queue.counts().dead_letter == 1
    # Then the director reports it as failed, with a reason, instead of "already queued"
    summary = direct(settings)
    assert "already queued 0, failed before 1" in summary
    (record,) = [json.loads(p.read_text()) for p in (settings.dest_dir / ".fleet" / "failed").iterdir()]
    assert record["reason"].startswith("last attempt of 2: the worker stopped without finishing it 1 time(s)")


def test_localstack_restart_loses_the_queue_and_the_rerun_director_restores_exactly_the_rest(
    make_settings, speech_corpus, models_dir, tmp_path
):
    # Given our own LocalStack (this test restarts it) and five queued files
    port = free_port()
    env = {**os.environ, "LOCALSTACK_PORT": str(port), "LOCALSTACK_STATE_DIR": str(tmp_path / "ls")}
    subprocess.run([str(HOST_SCRIPT), "start"], env=env, check=True)
    try:
        settings = make_settings(f"http://127.0.0.1:{port}", models_dir=models_dir, whisper_model="tiny.en",
                                 whisper_align=False, queue_max_attempts=2)  # fmt: skip
        copy_tree(speech_corpus / "english", settings.source_dir)
        copy_tree(speech_corpus / "long", settings.source_dir)
        assert "enqueued 5" in direct(settings)
        worker = start_worker(settings, tmp_path, "w1", FLEET_RETRY_BACKOFF_S="1")
        worker.wait_for_event("file finished", timeout_s=180)
        # When LocalStack restarts mid-run (free LocalStack forgets every queue and message)
        subprocess.run([str(HOST_SCRIPT), "stop"], env=env, check=True)
        time.sleep(3)
        subprocess.run([str(HOST_SCRIPT), "start"], env=env, check=True)
        # Then the worker waits, re-creates the queue, finds it empty, and exits cleanly (no crash loop)
        assert worker.wait(240) == 0
        assert any(e.get("event") == "queue unavailable, waiting" for e in worker.events())
        done_before = set(transcribed(worker))
        # And the director, run again, queues exactly the files that are not done
        summary = direct(settings)
        assert f"done {len(done_before)}, enqueued {5 - len(done_before)}" in summary
        second = start_worker(settings, tmp_path, "w2")
        assert second.wait() == 0
        # Then every file is done, and nothing that was done was transcribed again
        assert set(transcribed(second)).isdisjoint(done_before)
        assert set(transcribed(worker)) | set(transcribed(second)) == set(speech.ENGLISH) | {"long talk.wav"}
        assert "done 5, enqueued 0" in direct(settings)
    finally:
        subprocess.run([str(HOST_SCRIPT), "stop"], env=env, check=False)


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs as the destination (these machines run the tests as root)."""
    mount_point = tmp_path / "dest"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)], check=True)
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def queue_fox_onto(dest: Path, endpoint, make_settings, speech_corpus: Path, models_dir: Path):
    """One English file queued for a worker that writes to `dest`."""
    settings = make_settings(endpoint, models_dir=models_dir, whisper_model="tiny.en", whisper_align=False, dest_dir=dest)
    settings.source_dir.mkdir(parents=True)
    shutil.copy(speech_corpus / "english" / "stories" / "fox.mp3", settings.source_dir / "fox.mp3")
    direct(settings)
    return settings


def test_a_full_destination_is_waited_out_longer_than_the_retry_budget(localstack_endpoint, make_settings, open_queue,
                                                                       speech_corpus, models_dir, tmp_path,
                                                                       small_disk):  # fmt: skip
    # Given a file queued for a destination filled to the last byte by something else
    settings = queue_fox_onto(small_disk, localstack_endpoint, make_settings, speech_corpus, models_dir)
    filler = small_disk / "filler.bin"
    with open(filler, "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 1024)
        except OSError:
            pass
    # When a worker starts, it receives nothing and says why, for several times the whole retry budget
    worker = start_worker(settings, tmp_path, "w", FLEET_MIN_FREE_MB="1", **SHORT_BUDGET)
    waiting = worker.wait_for_event("waiting: nothing is received until this is fixed", timeout_s=180)
    assert waiting["reason"].startswith(f"destination full: 0 MB free in {small_disk}, below FLEET_MIN_FREE_MB=1")
    hold_fault(worker, 3 * 2)
    assert open_queue(settings).counts().visible == 1 and temp_files(small_disk) == []  # never received, nothing half-written
    # Then, once space comes back, the file is transcribed on its first delivery
    filler.unlink()
    assert worker.wait() == 0
    assert outputs_complete(small_disk, "fox") and transcribed(worker) == {"fox.mp3": 1}
    assert [e["receive_count"] for e in worker.events() if e.get("event") == "file started"] == [1]
    assert open_queue(settings).counts().dead_letter == 0


def test_a_read_only_destination_is_waited_out_longer_than_the_retry_budget(localstack_endpoint, make_settings, open_queue,
                                                                            speech_corpus, models_dir, tmp_path,
                                                                            small_disk):  # fmt: skip
    settings = queue_fox_onto(small_disk, localstack_endpoint, make_settings, speech_corpus, models_dir)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    worker = start_worker(settings, tmp_path, "w", FLEET_MIN_FREE_MB="1", **SHORT_BUDGET)
    waiting = worker.wait_for_event("waiting: nothing is received until this is fixed", timeout_s=180)
    assert waiting["reason"] == f"destination not writable: {small_disk}: Read-only file system"
    hold_fault(worker, 3 * 2)
    subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert worker.wait() == 0
    assert outputs_complete(small_disk, "fox")
    assert [e["receive_count"] for e in worker.events() if e.get("event") == "file started"] == [1]
    assert open_queue(settings).counts().dead_letter == 0


def hold_fault(worker: FleetProcess, seconds: float) -> None:
    """Keep a fault in place for `seconds` by the clock (the fault's length is the test's own parameter), the worker
    alive and receiving nothing throughout."""
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        assert worker.process.poll() is None
        time.sleep(0.2)
    assert not [e for e in worker.events() if e.get("event") == "file started"]


def test_source_vanished_or_changed_while_queued(localstack_endpoint, make_settings, open_queue, speech_corpus,
                                                 models_dir, tmp_path):  # fmt: skip
    settings = make_settings(localstack_endpoint, models_dir=models_dir, whisper_model="tiny.en", whisper_align=False)
    source = settings.source_dir
    source.mkdir(parents=True)
    shutil.copy(speech_corpus / "english" / "stories" / "fox.mp3", source / "gone.mp3")
    shutil.copy(speech_corpus / "english" / "stories" / "fox.mp3", source / "changed.mp3")
    direct(settings)
    # While queued: one file is deleted, the other replaced by a different recording
    (source / "gone.mp3").unlink()
    speech.speak("Please remember to water the garden while I am away.", source / "changed.mp3")
    worker = start_worker(settings, tmp_path, "w")
    assert worker.wait() == 0
    assert worker.outcomes() == {"gone.mp3": "source gone", "changed.mp3": "transcribed"}
    assert not list(settings.dest_dir.glob("gone.*")) and not (settings.dest_dir / ".fleet" / "failed").exists()
    # The transcript is of the new recording, and its record carries the new fingerprint: nothing stale is done
    assert "garden" in (settings.dest_dir / "changed.txt").read_text()
    record = json.loads((settings.dest_dir / "changed.json").read_text())["fleet"]
    info = (source / "changed.mp3").stat()
    assert record["fingerprint"] == {"size": info.st_size, "mtime_ns": info.st_mtime_ns}
    assert "found 1, done 1, enqueued 0" in direct(settings)
    assert open_queue(settings).counts().visible == 0


def test_poison_inputs_are_recorded_and_dead_lettered_the_rest_finish(localstack_endpoint, make_settings, open_queue,
                                                                      speech_corpus, models_dir, tmp_path):  # fmt: skip
    settings = make_settings(localstack_endpoint, models_dir=models_dir, whisper_model="tiny.en", whisper_align=False)
    source = settings.source_dir
    source.mkdir(parents=True)
    good = speech_corpus / "english" / "stories" / "fox.mp3"
    shutil.copy(good, source / "good.mp3")
    data = good.read_bytes()
    (source / "truncated.mp3").write_bytes(data[: len(data) // 2])
    (source / "zero.wav").write_bytes(b"")
    (source / "text.mp3").write_text("this is a text file pretending to be audio\n" * 50)
    (source / "corrupt.flac").write_bytes(os.urandom(20_000))
    speech.video_without_audio(source / "no audio.mkv")
    speech.silence(source / "silence.wav", 20)
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(good), "-t", "0.3", str(source / "blip.wav")],
                   check=True)  # fmt: skip
    direct(settings)
    worker = start_worker(settings, tmp_path, "w")
    assert worker.wait() == 0
    outcomes = worker.outcomes()
    permanent = {"zero.wav", "text.mp3", "corrupt.flac", "no audio.mkv"}
    assert {f for f, o in outcomes.items() if o == "failed"} == permanent
    assert {f for f, o in outcomes.items() if o == "transcribed"} == {"good.mp3", "truncated.mp3", "silence.wav", "blip.wav"}
    records = {json.loads(p.read_text())["source"]: json.loads(p.read_text())["reason"]
               for p in (settings.dest_dir / ".fleet" / "failed").iterdir()}  # fmt: skip
    assert set(records) == permanent and all(records.values())
    assert open_queue(settings).counts().dead_letter == len(permanent)  # exactly the permanent failures


@pytest.mark.long
def test_a_long_file_keeps_its_lease_through_many_extensions(localstack_endpoint, make_settings, open_queue,
                                                              models_dir, tmp_path):  # fmt: skip
    # 22 minutes: the VAD hears it in three pieces (worker.speech.vad.VAD_PIECE_S), the job lasts many 10 s leases
    settings = make_settings(localstack_endpoint, models_dir=models_dir, whisper_model="tiny.en", whisper_align=False)
    settings.source_dir.mkdir(parents=True)
    hour = settings.source_dir / "long.mp3"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "anoisesrc=r=16000:a=0.002:c=pink",
                    "-t", str(LONG_FILE_S), "-b:a", "32k", str(hour)], check=True)  # fmt: skip
    direct(settings)
    # 10 s leases beaten every 2 s: still ten or more extensions, and room for a busy CI machine (5 s leases were lost
    # there while other test processes and a compose deployment shared the two cores)
    lease = {"FLEET_VISIBILITY_TIMEOUT_S": "10", "FLEET_HEARTBEAT_INTERVAL_S": "2"}
    holder = start_worker(settings, tmp_path, "holder", **lease)
    holder.wait_for_event("file started", timeout_s=180)
    # A second worker polls the whole time: with a 10 s lease and no heartbeat it would get the file
    rival = FleetProcess.start(["worker"], fleet_env(settings, FLEET_WORKER_ID="rival", **lease), tmp_path / "rival.log")
    try:
        assert holder.wait(600) == 0
    finally:
        rival.signal(signal.SIGTERM)
        rival.wait(60)
    finished = holder.wait_for_event("file finished")
    assert finished["outcome"] == "transcribed" and finished["elapsed_s"] > 40  # many 10 s leases long
    assert rival.outcomes() == {}
    record = json.loads((settings.dest_dir / "long.json").read_text())["fleet"]
    assert record["audio_duration_s"] == pytest.approx(LONG_FILE_S, abs=1)


@pytest.mark.long
def test_a_burst_of_2000_tiny_files(localstack_endpoint, make_settings, open_queue, tmp_path, monkeypatch):
    """Model call replaced by an empty transcript (see the module docstring); queue, decode, writes are real."""
    import worker.queue_loop.loop as loop
    from fleet.transport.sqs import SqsQueue
    from worker.job.run import JobContext
    from worker.queue_loop.shutdown import Shutdown
    from worker.speech.pipeline import Transcript

    settings = make_settings(localstack_endpoint, whisper_model="tiny.en", whisper_align=False, receive_wait_s=0)
    source = settings.source_dir
    source.mkdir(parents=True)
    clip = tmp_path / "clip.wav"
    speech.silence(clip, 0.2)
    for i in range(2000):
        folder = source / f"batch-{i // 200:02d}"
        folder.mkdir(exist_ok=True)
        os.link(clip, folder / f"clip {i:04d}.wav")
    assert "enqueued 2000" in direct(settings)

    class EmptyPipeline:
        model_name, model_path, device = "tiny.en", "stub", "cpu"
        fallbacks: dict[str, str] = {}
        loaded = True

        def device_in_use(self):
            return self.device

        def run(self, audio, job, on_stage, on_language=None):
            return Transcript({"segments": [], "language": "en"}, "en", None, "off", "off")

    queue = SqsQueue.connect(settings.queue_endpoint(), settings.queue_spec())
    queue.lookup()
    ctx = JobContext(settings=settings, pipeline=EmptyPipeline(), worker_id="burst")
    assert loop.Worker(settings, queue, ctx, Shutdown(), rss_mb=lambda: 0).run(until_empty=True) == 0
    jsons = list(settings.dest_dir.rglob("clip *.json"))
    assert len(jsons) == 2000 and temp_files(settings.dest_dir) == []
    counts = open_queue(settings).counts()
    assert (counts.visible, counts.in_flight, counts.dead_letter) == (0, 0, 0)
    assert "done 2000, enqueued 0" in run_director_summary(settings)


def run_director_summary(settings) -> str:
    out = io.StringIO()
    run_director(settings, out=out)
    return out.getvalue().strip().splitlines()[-1]


@pytest.mark.long
def test_soak_two_workers_one_killed_and_restarted_repeatedly(localstack_endpoint, make_settings, open_queue,
                                                             models_dir, tmp_path):  # fmt: skip
    settings = make_settings(localstack_endpoint, models_dir=models_dir, whisper_model="tiny.en", whisper_align=False)
    source = settings.source_dir
    source.mkdir(parents=True)
    for i in range(120):
        speech.speak(f"Recording number {i} of the soak test.", source / f"take {i:03d}.wav")
    direct(settings)
    lease = {"FLEET_VISIBILITY_TIMEOUT_S": "5", "FLEET_HEARTBEAT_INTERVAL_S": "1"}
    steady = start_worker(settings, tmp_path, "steady", **lease)
    victims = []
    killed_mid_file = 0
    # The second worker is killed -9 in the middle of a file, again and again, and restarted
    # (every minute in the issue; here as soon as it is busy, to fit many kills into the run)
    while steady.process.poll() is None and len(victims) < 12:
        victim = start_worker(settings, tmp_path, f"victim{len(victims)}", **lease)
        victims.append(victim)
        try:
            victim.wait_for_event("file started", timeout_s=60)
            time.sleep(0.3)
            killed_mid_file += victim.process.poll() is None
        except AssertionError:
            pass  # the queue ran dry before this one got a file
        victim.kill()
    assert steady.wait(600) == 0
    last = start_worker(settings, tmp_path, "last", **lease)  # picks up what the last victim held
    assert last.wait() == 0
    every = transcribed(steady, last, *victims)
    done = {p.stem for p in settings.dest_dir.glob("*.json")}
    assert len(done) == 120 and all(outputs_complete(settings.dest_dir, base) for base in done)
    # A victim killed between its last write and its log line leaves a file transcribed but not
    # logged, whose redelivery then finds it done: never a second transcription.
    assert killed_mid_file >= 3
    assert max(every.values()) == 1 and sum(every.values()) >= 120 - killed_mid_file
    # A victim killed while replacing its own status record leaves that temp in .fleet/workers (the next worker start
    # sweeps it once stale, worker.main.STALE_TEMP_S); no output and no file's record is ever left half-written.
    assert [p for p in temp_files(settings.dest_dir) if p.parent != workers_dir(settings.dest_dir)] == []
    assert open_queue(settings).counts().dead_letter == 0
    assert "done 120, enqueued 0" in direct(settings)


# A budget of 2 s stands for the day a home server allows; the outages below last several budgets.
SHORT_BUDGET = {"FLEET_RETRY_BUDGET_S": "2", "FLEET_RETRY_BACKOFF_S": "1", "FLEET_ROOTS_CHECK_S": "0.5"}


def test_a_source_disk_away_longer_than_the_retry_budget_is_waited_out(localstack_endpoint, make_settings, open_queue,
                                                                      speech_corpus, models_dir, tmp_path):  # fmt: skip
    # Given two recordings queued from the source disk
    settings = make_settings(localstack_endpoint, models_dir=models_dir, whisper_model="tiny.en", whisper_align=False)
    shutil.copytree(speech_corpus / "english" / "stories", settings.source_dir / "stories")
    direct(settings)
    # When the disk goes away (the mount point stays, empty) for several times the whole retry budget
    unplugged = tmp_path / "unplugged"
    shutil.move(settings.source_dir / "stories", unplugged)
    worker = FleetProcess.start(["worker", "--until-empty"], fleet_env(settings, **SHORT_BUDGET), tmp_path / "w.log")
    waiting = worker.wait_for_event("waiting: nothing is received until this is fixed", timeout_s=180)
    assert waiting["reason"] == f"source not available: source folder {settings.source_dir} is empty (a disk not mounted?)"
    # Then the worker receives nothing and says so in its status record, for as long as the disk is away
    record = worker.wait_for_record(
        settings.dest_dir, lambda r: bool(r.get("waiting_since")) and r["last_beat"] - r["waiting_since"] >= 3 * 2,
        "waiting for 3 budgets",
    )  # fmt: skip
    assert record["state"] == "waiting" and record["waiting"] == waiting["reason"]
    assert not [e for e in worker.events() if e.get("event") == "file started"]
    # And once the disk is back, both are transcribed on their first delivery, nothing dead-lettered
    shutil.move(unplugged, settings.source_dir / "stories")
    assert worker.wait() == 0
    assert worker.outcomes() == {"stories/fox.mp3": "transcribed", "stories/river.m4a": "transcribed"}
    assert [e["receive_count"] for e in worker.events() if e.get("event") == "file started"] == [1, 1]
    assert open_queue(settings).counts().dead_letter == 0 and not list((settings.dest_dir / ".fleet" / "failed").glob("*"))


def test_a_destination_away_longer_than_the_retry_budget_is_waited_out(localstack_endpoint, make_settings, open_queue,
                                                                       speech_corpus, models_dir, tmp_path):  # fmt: skip
    # Given a recording queued, and a worker that has seen the destination with the fleet's state in it
    settings = make_settings(localstack_endpoint, models_dir=models_dir, whisper_model="tiny.en", whisper_align=False)
    shutil.copytree(speech_corpus / "english" / "stories", settings.source_dir)
    direct(settings)
    # When the destination disk goes away before the worker takes anything, for several retry budgets
    away = tmp_path / "dest-away"
    shutil.move(settings.dest_dir, away)
    worker = FleetProcess.start(["worker", "--until-empty"], fleet_env(settings, **SHORT_BUDGET), tmp_path / "w.log")
    waiting = worker.wait_for_event("waiting: nothing is received until this is fixed", timeout_s=180)
    assert waiting["reason"].startswith(f"destination not available: {settings.dest_dir} is missing"), waiting
    hold_fault(worker, 3 * 2)
    # (the worker never creates the destination: on a share not mounted yet it would fill the local disk)
    assert not settings.dest_dir.exists()
    shutil.move(away, settings.dest_dir)
    # Then, once it is back, every file is transcribed on its first delivery
    assert worker.wait() == 0
    assert set(worker.outcomes().values()) == {"transcribed"}
    assert {e["receive_count"] for e in worker.events() if e.get("event") == "file started"} == {1}
    assert [e for e in worker.events() if e.get("event") == "roots available again: receiving"]
    assert open_queue(settings).counts().dead_letter == 0


def test_a_transcript_finished_after_its_queue_vanished_is_still_written(localstack_endpoint, make_settings, open_queue,
                                                                         speech_corpus, models_dir, tmp_path):  # fmt: skip
    # Given a worker in the middle of a long file, with a short lease
    settings = make_settings(localstack_endpoint, models_dir=models_dir, whisper_model="tiny.en", whisper_align=False)
    copy_tree(speech_corpus / "long", settings.source_dir)
    direct(settings)
    worker = start_worker(settings, tmp_path, "w", FLEET_VISIBILITY_TIMEOUT_S="6", FLEET_HEARTBEAT_INTERVAL_S="1")
    worker.wait_for_event("file started")
    # When the queue vanishes (LocalStack restarted: free LocalStack keeps nothing)
    queue = open_queue(settings)
    for url in (queue.info.url, queue.info.dlq_url):
        queue._client.delete_queue(QueueUrl=url)
    # Then the heartbeat sees that nobody else can own the message, and the finished transcript is written
    worker.wait_for_event("the queue that held this message is gone: its outputs are still written, nothing to acknowledge")
    assert worker.wait() == 0
    assert worker.outcomes() == {"long talk.wav": "transcribed"}
    assert (settings.dest_dir / "long talk.json").exists() and temp_files(settings.dest_dir) == []


def test_a_job_past_its_time_limit_is_released_and_the_worker_exits_to_restart(
    localstack_endpoint, make_settings, open_queue, speech_corpus, models_dir, tmp_path
):
    # Given a time limit far below what the long file needs (a hung native call looks the same from outside)
    settings = make_settings(localstack_endpoint, models_dir=models_dir, whisper_model="tiny.en", whisper_align=False)
    copy_tree(speech_corpus / "long", settings.source_dir)
    direct(settings)
    worker = start_worker(settings, tmp_path, "w", FLEET_JOB_TIME_LIMIT_BASE_S="1", FLEET_JOB_TIME_LIMIT_FACTOR="0.01",
                          FLEET_VISIBILITY_TIMEOUT_S="120")  # fmt: skip
    # When the job overruns it
    abandoned = worker.wait_for_event("job time limit exceeded: message released, worker exits to restart")
    # Then the worker leaves with its own exit code (compose restarts it), nothing written,
    assert worker.wait(30) == 4
    assert abandoned["audio_s"] > 20 and abandoned["limit_s"] < 2
    assert not (settings.dest_dir / "long talk.json").exists() and temp_files(settings.dest_dir) == []
    # and the message is back at once, the attempt counted (a hang that repeats must reach the dead-letter queue)
    queue = open_queue(settings)
    again = queue.receive_one(wait_s=1, visibility_timeout_s=30)
    assert again is not None and again.receive_count == 2
