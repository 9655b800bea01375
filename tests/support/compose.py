"""The compose deployment under test: its folders, its .env, and the commands a user types."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.paths import REAL_SPEECH, REPO_ROOT
from tests.support.speech import ENGLISH, speak

HERE = REPO_ROOT / "tests" / "compose"  # engine.sh and standins.sh
GERMAN = "Guten Morgen. Heute scheint die Sonne und wir gehen zusammen in den Park."
PROJECT = "whisper-fleet-test"
# Not root, not the host's user: proves the transcripts belong to PUID:PGID.
PUID = PGID = 4242


def docker_answers() -> bool:
    """Whether a Docker engine takes commands."""
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0


def compose_tool() -> list[str]:
    """`docker compose` (v2) where it exists, else Debian 12's `docker-compose` (v1): as build.sh chooses."""
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    return ["docker-compose"]


def wait_for(check: Callable[[], Any], timeout_s: float, what: str, poll_s: float = 0.5) -> Any:
    """Poll `check` until it returns something truthy (a file, a record, a state); fail saying what never came."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def shared_folder(prefix: str) -> Path:
    """A folder the containers' PUID can traverse (pytest's tmp folders are 0700 root)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


@dataclass
class Deployment:
    """One compose project on the real engine, driven through ./build.sh like a user would."""

    source: Path
    dest: Path
    env_file: Path
    settings: dict[str, str]
    references: dict[str, str] = field(default_factory=dict)  # good source -> what was said
    compose: list[str] = field(default_factory=compose_tool)
    project: str = PROJECT

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEET_", "WHISPER_", "AWS_"))}
        return {**env, "FLEET_ENV_FILE": str(self.env_file)}

    def build_sh(self, *args: str, timeout_s: float = 1800) -> subprocess.CompletedProcess:
        return subprocess.run([str(REPO_ROOT / "build.sh"), *args], cwd=REPO_ROOT, env=self.env, capture_output=True,
                              text=True, timeout=timeout_s)  # fmt: skip

    def compose_run(self, *args: str, timeout_s: float = 600) -> subprocess.CompletedProcess:
        command = [*self.compose, "--env-file", str(self.env_file), "-f", "docker-compose.yml", "--profile", "dashboard", *args]
        return subprocess.run(command, cwd=REPO_ROOT, env=self.env, capture_output=True, text=True, timeout=timeout_s)

    def containers(self, service: str, running_only: bool = True) -> list[str]:
        """Container ids of one service of this project (killed and exited ones too unless running_only)."""
        command = ["docker", "ps", "-q", "--no-trunc", "--filter", f"label=com.docker.compose.project={self.project}",
                   "--filter", f"label=com.docker.compose.service={service}"]  # fmt: skip
        if not running_only:
            command.insert(2, "-a")
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()

    def inspect(self, container: str) -> dict:
        return json.loads(subprocess.run(["docker", "inspect", container], capture_output=True, text=True, check=True).stdout)[0]

    def log_events(self, service: str) -> list[dict]:
        """Every JSON log event of every container of a service, also of containers that were killed."""
        events = []
        for container in self.containers(service, running_only=False):
            logs = subprocess.run(["docker", "logs", container], capture_output=True, text=True)
            for line in (logs.stdout + logs.stderr).splitlines():
                if line.startswith("{"):
                    try:
                        events.append({**json.loads(line), "container": container})
                    except ValueError:
                        continue
        return events

    def worker_records(self) -> list[dict]:
        records = []
        for path in (self.dest / ".fleet" / "workers").glob("*.json"):
            try:
                records.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue
        return records

    def commit_record(self, output_base: str) -> dict | None:
        """The `fleet` record of a finished transcript, None while it is not there."""
        try:
            return json.loads((self.dest / f"{output_base}.json").read_text())["fleet"]
        except (OSError, ValueError, KeyError):
            return None

    def last_plan(self) -> dict | None:
        try:
            return json.loads((self.dest / ".fleet" / "director" / "last-plan.json").read_text())
        except (OSError, ValueError):
            return None

    def down(self) -> None:
        self.compose_run("down", "-v", "--remove-orphans", "--timeout", "5")


@contextmanager
def torn_down_around(deployment: Deployment, *folders: Path) -> Iterator[Deployment]:
    """The project down before (a run that died half-way may have left it behind) and after; the folders removed."""
    deployment.down()
    try:
        yield deployment
    finally:
        deployment.down()
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)


def write_env_file(path: Path, settings: dict[str, str]) -> None:
    path.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))


def base_images() -> dict[str, str]:
    """BASE_IMAGE, LOCALSTACK_IMAGE and TORCH_INDEX_URL: the real ones, or stand-ins built here."""
    result = subprocess.run([str(HERE / "standins.sh")], capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr
    print(result.stderr, end="")
    return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)


def fill_source(source: Path) -> dict[str, str]:
    """Real speech, espeak-ng speech, a video, a call and two bad files; returns good file -> reference text."""
    references = {}
    (source / "real").mkdir()
    shutil.copy(REAL_SPEECH / "jfk.flac", source / "real" / "jfk.flac")
    references["real/jfk.flac"] = (
        "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."
    )
    shutil.copy(REAL_SPEECH / "hotwords.mp3", source / "real" / "hotwords.mp3")
    rel, text = next(iter(ENGLISH.items()))
    speak(text, source / "espeak" / "fox.mp3")
    references["espeak/fox.mp3"] = text
    speak(GERMAN, source / "espeak" / "morgen.wav", voice="de")
    references["espeak/morgen.wav"] = GERMAN
    (source / "video").mkdir()
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=duration=11:size=64x64:rate=5",
                    "-i", str(REAL_SPEECH / "jfk.flac"), "-shortest", "-pix_fmt", "yuv420p", "-c:a", "aac",
                    str(source / "video" / "speech.mkv")], check=True)  # fmt: skip
    references["video/speech.mkv"] = references["real/jfk.flac"]
    # A two-speaker call in a folder that asks for speakers (the bundled diarizer: no token, no network).
    (source / "calls").mkdir()
    shutil.copy(REAL_SPEECH / "diarization" / "sample.wav", source / "calls" / "call.wav")
    (source / "calls" / ".whisper-fleet.toml").write_text("diarize = true\n")
    (source / "bad").mkdir()
    (source / "bad" / "corrupt.mp3").write_bytes(os.urandom(20_000))
    (source / "bad" / "notes.wav").write_text("this is text, not audio\n" * 50)
    for path in source.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return references
