"""Workers anywhere: a worker that cannot see the library transcribes it through LocalStack's S3 and SQS, for real."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections import Counter
from pathlib import Path

import boto3
import jiwer
import pytest

from fleet.job.identity import OUTPUT_FORMATS
from tests.support import speech
from tests.support.cut_proxy import CuttableProxy
from tests.support.fleet_procs import FleetProcess, copy_tree, fleet_env, start_home, start_remote_worker, temp_files

pytestmark = [pytest.mark.queue, pytest.mark.model]
MAX_WER = 0.3  # tiny.en on espeak-ng's voice, as in test_worker.py


def bucket_keys(endpoint: str, bucket: str) -> list[str]:
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                      aws_secret_access_key="test")  # fmt: skip
    return sorted(item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def wait_for(condition, what: str, timeout_s: float = 120, *procs: FleetProcess) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    logs = "\n".join(p.log_path.read_text()[-2000:] for p in procs)
    raise AssertionError(f"never {what} within {timeout_s} s\n{logs}")


def transcribed(*workers: FleetProcess) -> Counter[str]:
    return Counter(e["file"] for w in workers for e in w.events()
                   if e.get("event") == "file finished" and e["outcome"] == "transcribed")  # fmt: skip


def outputs_complete(dest: Path, base: str) -> bool:
    return all((dest / f"{base}.{fmt}").exists() for fmt in OUTPUT_FORMATS)


def home_settings(make_settings, endpoint: str, models_dir: Path, home: Path):  # noqa: ANN001, ANN201
    """The home server's settings: source and destination under `home`, which remote workers never see."""
    return make_settings(endpoint, models_dir=models_dir, source_dir=home / "source", dest_dir=home / "dest")


def serve_home(settings, bucket: str, tmp_path: Path) -> FleetProcess:  # noqa: ANN001
    """The watching director with the bucket, once its first round has queued what is there."""
    director = start_home(settings, f"s3://{bucket}/fleet", tmp_path / "director.log")
    director.wait_for_event("director run finished", timeout_s=60)
    return director


@pytest.fixture
def bucket() -> str:
    return f"fleet-{uuid.uuid4().hex[:12]}"


def test_a_worker_that_cannot_see_the_library_transcribes_it_through_the_bucket(
    localstack_endpoint, make_settings, open_queue, speech_corpus, models_dir, tmp_path, tmp_path_factory, bucket
):
    # Given four recordings at home, one of them with a subtitle Bazarr wrote, and the watching director serving the bucket
    home = tmp_path / "home"
    settings = home_settings(make_settings, localstack_endpoint, models_dir, home)
    copy_tree(speech_corpus / "english", settings.source_dir)
    bazarr = settings.dest_dir / "stories" / "fox.srt"
    bazarr.parent.mkdir(parents=True)
    bazarr.write_text("1\n00:00:00,000 --> 00:00:02,000\nBazarr's own fox\n")
    director = serve_home(settings, bucket, tmp_path)
    # When a worker in a mount namespace where source and destination are an empty tmpfs drains the queue
    worker = start_remote_worker(settings, home, f"s3://{bucket}/fleet", tmp_path_factory.mktemp("remote"),
                                 tmp_path / "remote.log", "--until-empty", FLEET_WORKER_ID="gaming-pc")  # fmt: skip
    try:
        assert worker.wait() == 0
        # Then every file was transcribed there exactly once, and its outputs land at home within seconds
        assert transcribed(worker) == dict.fromkeys(speech.ENGLISH, 1)
        bases = [rel.rsplit(".", 1)[0] for rel in speech.ENGLISH]
        home_now = lambda: all(outputs_complete(settings.dest_dir, base) for base in bases)  # noqa: E731
        wait_for(home_now, "all outputs home", 30, director, worker)
        for rel, text in speech.ENGLISH.items():
            base = settings.dest_dir / rel.rsplit(".", 1)[0]
            record = json.loads(Path(f"{base}.json").read_text())["fleet"]
            assert record["worker"] == "gaming-pc" and record["source"] == rel
            if rel != "stories/fox.mp3":
                heard = Path(f"{base}.txt").read_text()
                assert jiwer.wer(speech.normalise(text), speech.normalise(heard)) <= MAX_WER, (rel, heard)
        # And the subtitle the fleet did not write is kept byte for byte, as a local worker keeps it
        assert bazarr.read_text() == "1\n00:00:00,000 --> 00:00:02,000\nBazarr's own fox\n"
        assert json.loads((settings.dest_dir / "stories" / "fox.json").read_text())["fleet"]["kept"] == ["srt"]
        assert temp_files(settings.dest_dir) == []
        # And the bucket holds nothing of the jobs once they are home, only the worker's status record
        wait_for(lambda: bucket_keys(localstack_endpoint, bucket) == ["fleet/workers/gaming-pc.json"], "bucket emptied", 30)
        # And `fleet status` at home shows the remote worker with its host
        record = settings.dest_dir / ".fleet" / "workers" / "gaming-pc.json"
        wait_for(lambda: json.loads(record.read_text())["files_done"] == 4, "the worker's last record home", 30, director, worker)
        shown = json.loads(record.read_text())
        assert shown["remote"] is True and shown["host"] and shown["files_done"] == 4
        # And the next round finds everything done, nothing dead-lettered
        director.wait_for_event("director run finished", timeout_s=60)
        wait_for(lambda: any("done 4, enqueued 0" in line for line in director.log_path.read_text().splitlines()),
                 "a round with everything done", 30, director)  # fmt: skip
        assert open_queue(settings).counts().dead_letter == 0
    finally:
        worker.kill()
        director.kill()


def test_a_remote_worker_killed_mid_file_another_finishes_it_once(
    localstack_endpoint, make_settings, open_queue, speech_corpus, models_dir, tmp_path, tmp_path_factory, bucket
):
    # Given a long recording at home, queued and served by the watching director
    home = tmp_path / "home"
    settings = home_settings(make_settings, localstack_endpoint, models_dir, home)
    copy_tree(speech_corpus / "long", settings.source_dir)
    director = serve_home(settings, bucket, tmp_path)
    lease = {"FLEET_VISIBILITY_TIMEOUT_S": "5", "FLEET_HEARTBEAT_INTERVAL_S": "1"}
    remote = (f"s3://{bucket}/fleet",)
    victim = start_remote_worker(settings, home, *remote, tmp_path_factory.mktemp("victim"), tmp_path / "victim.log", **lease)
    survivor = None
    try:
        # When the remote worker is killed while it transcribes (its status record, copied home, says so)
        victim.wait_for_stage(settings.dest_dir, timeout_s=180)
        victim.kill()
        # And another remote worker takes the queue
        survivor = start_remote_worker(settings, home, *remote, tmp_path_factory.mktemp("survivor"), tmp_path / "survivor.log",
                                       "--until-empty", **lease)  # fmt: skip
        assert survivor.wait() == 0
        # Then the file is transcribed once, by the survivor, its outputs whole at home, nothing dead-lettered
        assert transcribed(victim, survivor) == {"long talk.wav": 1}
        wait_for(lambda: outputs_complete(settings.dest_dir, "long talk"), "outputs home", 30, director, survivor)
        assert temp_files(settings.dest_dir) == [] and open_queue(settings).counts().dead_letter == 0
        jobs_left = lambda: [k for k in bucket_keys(localstack_endpoint, bucket) if "/workers/" not in k]  # noqa: E731
        wait_for(lambda: jobs_left() == [], "bucket emptied", 30)
    finally:
        for proc in (victim, survivor, director):
            if proc is not None:
                proc.kill()


def test_the_network_to_a_remote_worker_cut_for_longer_than_the_retry_budget_loses_nothing(
    localstack_endpoint, make_settings, open_queue, speech_corpus, models_dir, tmp_path, tmp_path_factory, bucket
):
    # Given two files at home, and a remote worker that reaches the queue and the bucket through a cable we can pull
    home = tmp_path / "home"
    settings = home_settings(make_settings, localstack_endpoint, models_dir, home)
    copy_tree(speech_corpus / "long", settings.source_dir)
    shutil.copy(speech_corpus / "english" / "stories" / "fox.mp3", settings.source_dir / "fox.mp3")
    cable = CuttableProxy("127.0.0.1", int(localstack_endpoint.rsplit(":", 1)[1]))
    director = serve_home(settings, bucket, tmp_path)
    fragile = {"AWS_ENDPOINT_URL": cable.url, "FLEET_RETRY_BUDGET_S": "2", "FLEET_VISIBILITY_TIMEOUT_S": "5",
               "FLEET_HEARTBEAT_INTERVAL_S": "1", "FLEET_QUEUE_TIMEOUT_S": "2", "FLEET_QUEUE_MAX_ATTEMPTS": "2",
               "FLEET_RETRY_BACKOFF_S": "1"}  # fmt: skip
    worker = start_remote_worker(settings, home, f"s3://{bucket}/fleet", tmp_path_factory.mktemp("remote"),
                                 tmp_path / "remote.log", "--until-empty", **fragile)  # fmt: skip
    try:
        # When the network is cut while it transcribes, for ten times the retry budget and more than a visibility timeout
        worker.wait_for_stage(settings.dest_dir, timeout_s=180)
        cable.cut()
        time.sleep(20)  # the outage itself: nothing to wait on but time
        cable.restore()
        # Then the worker waits the outage out and drains the queue: each file transcribed once, outputs whole at home
        assert worker.wait(300) == 0
        assert transcribed(worker) == {"long talk.wav": 1, "fox.mp3": 1}
        wait_for(lambda: outputs_complete(settings.dest_dir, "long talk") and outputs_complete(settings.dest_dir, "fox"),
                 "outputs home", 30, director, worker)  # fmt: skip
        # And nothing was dead-lettered for the outage, nothing half-written
        assert open_queue(settings).counts().dead_letter == 0 and temp_files(settings.dest_dir) == []
        failed = settings.dest_dir / ".fleet" / "failed"
        assert not failed.exists() or not any(failed.iterdir())
    finally:
        cable.close()
        worker.kill()
        director.kill()


def test_results_finished_while_the_home_side_is_down_land_when_it_is_back(
    localstack_endpoint, make_settings, open_queue, speech_corpus, models_dir, tmp_path, tmp_path_factory, bucket
):
    # Given a file staged for a remote worker, and the home side then stopped (a reboot, a redeploy)
    home = tmp_path / "home"
    settings = home_settings(make_settings, localstack_endpoint, models_dir, home)
    settings.source_dir.mkdir(parents=True)
    shutil.copy(speech_corpus / "english" / "stories" / "fox.mp3", settings.source_dir / "fox.mp3")
    director = serve_home(settings, bucket, tmp_path)
    worker = start_remote_worker(settings, home, f"s3://{bucket}/fleet", tmp_path_factory.mktemp("remote"),
                                 tmp_path / "remote.log", "--until-empty")  # fmt: skip
    try:
        director.wait_for_event("audio staged for a remote worker", timeout_s=180)
        director.kill()
        # When the remote worker finishes meanwhile
        assert worker.wait() == 0 and transcribed(worker) == {"fox.mp3": 1}
        assert not (settings.dest_dir / "fox.json").exists()  # nobody at home to bring it in
        # Then the home side, back, brings the result in: once, whole, and the next round finds it done
        director = start_home(settings, f"s3://{bucket}/fleet", tmp_path / "director-again.log")
        # (within a minute: a message the stopped side's last long poll took comes back after its 60 s visibility)
        wait_for(lambda: outputs_complete(settings.dest_dir, "fox"), "outputs home after the restart", 150, director)
        director.wait_for_event("outputs of a remote worker brought in", timeout_s=5)
        wait_for(lambda: "done 1, enqueued 0" in director.log_path.read_text(), "a round with the file done", 30, director)
        assert temp_files(settings.dest_dir) == [] and open_queue(settings).counts().dead_letter == 0
    finally:
        worker.kill()
        director.kill()


def test_a_local_run_with_no_worker_of_its_own_is_transcribed_by_a_remote_one_and_counts_only_its_files(
    localstack_endpoint, make_settings, speech_corpus, models_dir, tmp_path, tmp_path_factory, bucket
):
    # Given a remote worker waiting on the queue, and two recordings at home
    home = tmp_path / "home"
    settings = home_settings(make_settings, localstack_endpoint, models_dir, home)
    copy_tree(speech_corpus / "english" / "stories", settings.source_dir)
    url = f"s3://{bucket}/fleet"
    worker = start_remote_worker(settings, home, url, tmp_path_factory.mktemp("remote"), tmp_path / "remote.log",
                                 FLEET_WORKER_ID="gaming-pc")  # fmt: skip
    local_env = fleet_env(settings, FLEET_TRANSFER_BUCKET=url)

    def local_run(name: str) -> tuple[list[str], str]:
        """The run's output lines and its summary line."""
        run = FleetProcess.start(["local", str(settings.source_dir), str(settings.dest_dir), "--workers", "0"], local_env,
                                 tmp_path / f"{name}.log")  # fmt: skip
        assert run.wait(240) == 0, run.log_path.read_text()[-3000:]
        lines = run.log_path.read_text().splitlines()
        return lines, next(line for line in lines if line.startswith("local run:"))

    try:
        worker.wait_for_event("worker ready", timeout_s=120)
        # When the user runs `fleet local SRC DEST --workers 0` with the bucket set (`./build.sh local` runs it)
        lines, summary = local_run("first")
        # Then it serves the remote worker, waits for its results, and ends once both are home
        assert any(line.startswith(f"serving remote workers through {url}") for line in lines)
        assert summary.startswith("local run: 2 transcribed (2 by remote workers), 0 failed")
        for base in ("fox", "river"):
            assert outputs_complete(settings.dest_dir, base)
            assert json.loads((settings.dest_dir / f"{base}.json").read_text())["fleet"]["worker"] == "gaming-pc"
        # And a second run, with one new file, counts that file only, though the same remote worker did all three
        shutil.copy(speech_corpus / "english" / "stories" / "fox.mp3", settings.source_dir / "fox again.mp3")
        _, summary = local_run("second")
        assert summary.startswith("local run: 1 transcribed (1 by remote workers), 0 failed")
        assert outputs_complete(settings.dest_dir, "fox again")
        assert transcribed(worker) == {"fox.mp3": 1, "river.m4a": 1, "fox again.mp3": 1}
        assert temp_files(settings.dest_dir) == []
    finally:
        worker.kill()
