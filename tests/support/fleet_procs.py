"""Start real `fleet` processes (director, workers) against host LocalStack and read their JSON logs."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from director.main import run_director
from fleet.settings import FleetSettings


def fleet_env(settings: FleetSettings, **extra: str) -> dict[str, str]:
    """Environment for a fleet process using the same folders and queue as `settings`."""
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": settings.aws_endpoint_url or "",
        "FLEET_QUEUE_NAME": settings.queue_name or "",
        "FLEET_SOURCE_DIR": str(settings.source_dir),
        "FLEET_DEST_DIR": str(settings.dest_dir),
        "FLEET_LOG_FORMAT": "json",
        "FLEET_MODELS_DIR": str(settings.models_dir),
        "WHISPER_MODEL": "tiny.en",
        "WHISPER_ALIGN": "false",
        "FLEET_THREADS": "1",
        "FLEET_RECEIVE_WAIT_S": "1",
        "HF_HUB_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra)
    return env


@dataclass
class FleetProcess:
    """A running `fleet ...` with its stderr in a file, for JSON log events."""

    process: subprocess.Popen
    log_path: Path
    name: str = field(default="")

    @classmethod
    def start(cls, args: list[str], env: dict[str, str], log_path: Path) -> FleetProcess:
        handle = open(log_path, "wb")  # noqa: SIM115 - closed when the process is reaped
        process = subprocess.Popen([sys.executable, "-m", "app.cli", *args], env=env, stdout=handle, stderr=subprocess.STDOUT)
        return cls(process, log_path, args[0])

    def events(self) -> list[dict]:
        """Every JSON log line so far (whisperX's own plain-text lines are skipped)."""
        found = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except ValueError:
                    continue
        return found

    def wait_for_event(self, event: str, timeout_s: float = 120, **fields: object) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for entry in self.events():
                if entry.get("event") == event and all(entry.get(k) == v for k, v in fields.items()):
                    return entry
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"{self.name}: no {event!r} {fields} within {timeout_s}s; log:\n{self.log_path.read_text()[-3000:]}")

    def wait_for_stage(self, dest: Path, stage: str = "transcribe", timeout_s: float = 180) -> dict:
        """This worker's status record once it is in `stage` of a file: mid-file, whatever the CPU's speed."""
        return self.wait_for_record(dest, lambda record: record.get("stage") == stage, f"in stage {stage!r}", timeout_s)

    def wait_for_record(self, dest: Path, matches: Callable[[dict], bool], what: str, timeout_s: float = 180) -> dict:
        """This worker's status record (under `dest`) once `matches` says yes; `what` names it in the failure."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.process.poll() is None:
            for path in (dest / ".fleet" / "workers").glob("*.json"):
                try:
                    record = json.loads(path.read_text())
                except (OSError, ValueError):
                    continue
                if record.get("pid") == self.process.pid and matches(record):
                    return record
            time.sleep(0.05)
        log_tail = self.log_path.read_text()[-3000:]
        raise AssertionError(f"{self.name}: never {what} within {timeout_s}s; log:\n{log_tail}")

    def wait(self, timeout_s: float = 300) -> int:
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired as exc:
            self.process.kill()
            raise AssertionError(f"{self.name} did not exit in {timeout_s}s; log:\n{self.log_path.read_text()[-3000:]}") from exc

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)

    def outcomes(self) -> dict[str, str]:
        """file -> outcome of every finished file."""
        return {e["file"]: e["outcome"] for e in self.events() if e.get("event") == "file finished"}


def copy_tree(source: Path, target: Path) -> None:
    """Copy a corpus into a source folder (which may exist already)."""
    shutil.copytree(source, target, dirs_exist_ok=True)


def direct(settings: FleetSettings) -> str:
    """Run the director once; its summary line."""
    out = io.StringIO()
    assert run_director(settings, out=out).exit_code == 0
    return out.getvalue().strip().splitlines()[-1]


def start_worker(settings: FleetSettings, tmp_path: Path, name: str, **env: str) -> FleetProcess:
    """A `fleet worker --until-empty` process logging to <tmp_path>/<name>.log."""
    return FleetProcess.start(["worker", "--until-empty"], fleet_env(settings, **env), tmp_path / f"{name}.log")


def temp_files(root: Path) -> list[Path]:
    """Temp files the atomic writer left behind (there must be none)."""
    return [p for p in root.rglob(".fleet-tmp-*")]


def remote_env(settings: FleetSettings, bucket: str, scratch: Path, **extra: str) -> dict[str, str]:
    """A remote worker's environment: the queue and the bucket, no source and no destination, its own TMPDIR."""
    env = fleet_env(settings, FLEET_TRANSFER_BUCKET=bucket, TMPDIR=str(scratch), **extra)
    del env["FLEET_SOURCE_DIR"], env["FLEET_DEST_DIR"]
    return env


def start_remote_worker(settings: FleetSettings, hidden: Path, bucket: str, scratch: Path, log_path: Path,
                        *args: str, **env: str) -> FleetProcess:  # fmt: skip
    """A `fleet worker` in a private mount namespace where `hidden` (holding source and destination) is an empty
    tmpfs: the process cannot see the library at all, as on another machine. Root, or a user namespace, needed."""
    user_namespace = [] if os.geteuid() == 0 else ["--map-root-user"]
    hide = 'mount -t tmpfs -o size=1m hidden "$1" && shift && exec "$@"'
    command = ["unshare", *user_namespace, "--mount", "--propagation", "private", "--", "sh", "-c", hide, "sh", str(hidden),
               sys.executable, "-m", "app.cli", "worker", *args]  # fmt: skip
    handle = open(log_path, "wb")  # noqa: SIM115 - closed when the process is reaped
    process = subprocess.Popen(command, env=remote_env(settings, bucket, scratch, **env), stdout=handle, stderr=subprocess.STDOUT)
    return FleetProcess(process, log_path, "remote worker")


def start_home(settings: FleetSettings, bucket: str, log_path: Path, interval_s: float = 2, **env: str) -> FleetProcess:
    """The watching director with the transfer bucket: the home side that serves remote workers."""
    env = fleet_env(settings, FLEET_TRANSFER_BUCKET=bucket, FLEET_MIN_AGE_S="0", **env)
    return FleetProcess.start(["director", "--watch", str(interval_s)], env, log_path)
