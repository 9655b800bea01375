"""Workers anywhere in compose, for real: a home deployment with a local worker, and beside it a remote-style
worker project (docker-compose.remote.yml: no source, no destination, nothing but the queue and the bucket).

A third project on the same engine (the images tests/compose/test_lifecycle.py built), deployed like a user:
`./build.sh deploy` at home with FLEET_TRANSFER_BUCKET (LocalStack published on 127.0.0.1), and the remote
file with its own .env reaching that port over the host's network, as through an SSH tunnel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.compose.conftest import require_docker
from tests.support import speech
from tests.support.compose import (
    PGID,
    PUID,
    REAL_SPEECH,
    Deployment,
    base_images,
    compose_tool,
    shared_folder,
    torn_down_around,
    wait_for,
    write_env_file,
)
from tests.support.paths import REPO_ROOT
from tests.support.ports import free_port

pytestmark = [pytest.mark.compose, pytest.mark.long]
HOME_PROJECT, REMOTE_PROJECT = "whisper-fleet-home-test", "whisper-fleet-remote-test"
TRANSCRIBE_TIMEOUT_S = 900
LONG_FILE = REAL_SPEECH / "multilingual.mp3"


class Remote:
    """The remote machine's project: docker-compose.remote.yml and its .env, nothing else."""

    def __init__(self, env_file: Path) -> None:
        self.env_file = env_file
        self.command = [*compose_tool(), "-p", REMOTE_PROJECT, "--env-file", str(env_file), "-f", "docker-compose.remote.yml"]

    def run(self, *args: str, timeout_s: float = 900) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEET_", "WHISPER_", "AWS_"))}
        return subprocess.run([*self.command, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout_s)


@pytest.fixture(scope="module")
def fleets() -> Iterator[tuple[Deployment, Remote]]:
    require_docker()
    images = base_images()
    source, dest, state = shared_folder("wf-home-"), shared_folder("wf-home-dest-"), shared_folder("wf-home-env-")
    os.chown(dest, PUID, PGID)
    source.chmod(0o755)
    port = str(free_port())
    bucket = "s3://whisper-fleet-transfer/home-test"
    home_settings = {
        **images, "COMPOSE_PROJECT_NAME": HOME_PROJECT, "SOURCE_DIR": str(source), "DEST_DIR": str(dest),
        "PUID": str(PUID), "PGID": str(PGID), "FLEET_WORKERS": "1", "FLEET_WATCH_INTERVAL_S": "5", "FLEET_MIN_AGE_S": "0",
        "FLEET_VISIBILITY_TIMEOUT_S": "20", "FLEET_HEARTBEAT_INTERVAL_S": "5", "FLEET_LOG_FORMAT": "json",
        "FLEET_TRANSFER_BUCKET": bucket, "LOCALSTACK_PORT": port,
    }  # fmt: skip
    write_env_file(state / "home.env", home_settings)
    home = Deployment(source=source, dest=dest, env_file=state / "home.env", settings=home_settings, project=HOME_PROJECT)
    remote_settings = {
        **images, "PUID": str(PUID), "PGID": str(PGID), "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "FLEET_TRANSFER_BUCKET": bucket, "WHISPER_MODEL": "base", "FLEET_WORKERS": "1", "FLEET_VISIBILITY_TIMEOUT_S": "20",
        "FLEET_HEARTBEAT_INTERVAL_S": "5", "FLEET_LOG_FORMAT": "json",
    }  # fmt: skip
    write_env_file(state / "remote.env", remote_settings)
    remote = Remote(state / "remote.env")
    remote.run("down", "-v", "--remove-orphans", "--timeout", "5")
    with torn_down_around(home, source, dest, state):
        try:
            yield home, remote
        finally:
            remote.run("down", "-v", "--remove-orphans", "--timeout", "5")


def transcribed_by(home: Deployment, remote: Remote) -> Counter[str]:
    """How many times each file was transcribed, over every worker container of both machines."""
    events = home.log_events("worker")
    for container in remote.run("ps", "-q", "-a", "worker").stdout.split():
        logs = subprocess.run(["docker", "logs", container], capture_output=True, text=True)
        events += [{"event": line} for line in (logs.stdout + logs.stderr).splitlines() if '"file finished"' in line]
    counted: Counter[str] = Counter()
    for event in events:
        line = event["event"]
        if isinstance(line, str) and '"outcome": "transcribed"' in line:
            counted[line.split('"file": "', 1)[1].split('"', 1)[0]] += 1
        elif event.get("event") == "file finished" and event.get("outcome") == "transcribed":
            counted[event["file"]] += 1
    return counted


def add_files(home: Deployment, files: dict[str, Path]) -> None:
    for rel, original in files.items():
        target = home.source / rel
        target.parent.mkdir(mode=0o755, exist_ok=True)
        shutil.copy(original, target)
        target.chmod(0o644)


def test_a_remote_style_worker_beside_a_local_one_each_file_lands_once_even_through_a_kill_and_a_localstack_restart(
    fleets, tmp_path
):
    home, remote = fleets
    # Given the home deployment with the bucket, and a worker project that mounts neither folder
    result = home.build_sh("deploy")
    assert result.returncode == 0, result.stderr[-3000:]
    result = remote.run("up", "-d")
    assert result.returncode == 0, result.stderr[-3000:]
    (container,) = remote.run("ps", "-q", "worker").stdout.split()
    assert {m["Destination"] for m in home.inspect(container)["Mounts"]} == {"/models"}
    # And, for a start, no local worker: the remote one's status reaches DEST_DIR, through the bucket
    assert home.build_sh("scale", "0").returncode == 0
    seen = wait_for(lambda: [r for r in home.worker_records() if r.get("remote") and r.get("state") == "idle"], 600,
                    "the remote worker's status record at home")  # fmt: skip
    remote_ids = {r["worker"] for r in seen}
    # When recordings arrive
    sentences = {}
    for i, text in enumerate(speech.ENGLISH.values()):
        sentences[f"espeak/sentence {i}.mp3"] = speech.speak(text, tmp_path / f"sentence {i}.mp3")
    add_files(home, {"jfk.flac": REAL_SPEECH / "jfk.flac", **sentences})
    files = ["jfk.flac", *sentences]
    # Then every one of them lands in DEST_DIR, transcribed on the machine that saw none of them
    wait_for(lambda: all(home.commit_record(rel.rsplit(".", 1)[0]) for rel in files), TRANSCRIBE_TIMEOUT_S, "every file home")
    assert {home.commit_record(rel.rsplit(".", 1)[0])["worker"] for rel in files} <= remote_ids
    assert "ask what you can do for your country" in (home.dest / "jfk.txt").read_text().lower()
    # When a local worker joins, and the worker in the middle of a long file is killed (compose restarts it)
    assert home.build_sh("scale", "1").returncode == 0
    long_rel = "long/multilingual.mp3"
    add_files(home, {long_rel: LONG_FILE})

    def busy_with_long_file() -> dict | None:
        return next((r for r in home.worker_records() if r.get("file") == long_rel and r.get("stage") == "transcribe"), None)

    busy = wait_for(busy_with_long_file, 300, "a worker in the middle of the long file")
    # a local container's host name is its id; the remote ones share the host's network and its name
    victim = remote.run("ps", "-q", "worker").stdout.split()[0] if busy.get("remote") else busy["host"]
    subprocess.run(["docker", "kill", victim], check=True, capture_output=True)
    # And LocalStack restarts (its queues and its bucket come back empty) while the next file is on its way
    add_files(home, {"long/hotwords.mp3": REAL_SPEECH / "hotwords.mp3"})
    (localstack,) = home.containers("localstack")
    subprocess.run(["docker", "restart", localstack], check=True, capture_output=True, timeout=120)
    # Then both finish without a command, each file transcribed exactly once over both machines
    for rel in (long_rel, "long/hotwords.mp3"):
        wait_for(lambda rel=rel: home.commit_record(rel.rsplit(".", 1)[0]), TRANSCRIBE_TIMEOUT_S, f"{rel} home")
    counts = transcribed_by(home, remote)
    assert all(counts[rel] == 1 for rel in files), counts
    # A file in flight when LocalStack lost its queue may be queued again by the next round and done twice: the
    # lost queue is the only record that someone has it. Never more, and never lost.
    assert all(1 <= counts[rel] <= 2 for rel in (long_rel, "long/hotwords.mp3")), counts
    assert not list(home.dest.rglob(".fleet-tmp-*"))
