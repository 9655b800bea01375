"""`./build.sh local`: the whole fleet without Docker, as a user runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from fleet.job.identity import OUTPUT_FORMATS
from tests.support.paths import REPO_ROOT
from tests.support.ports import free_port

pytestmark = [pytest.mark.queue, pytest.mark.model]


def test_build_sh_local_transcribes_a_folder_reports_and_cleans_up(speech_corpus, tmp_path):
    # Given a folder with two recordings and one broken file, and no queue running
    source, dest = tmp_path / "recordings", tmp_path / "transcripts"
    shutil.copytree(speech_corpus / "english" / "stories", source)
    (source / "broken.mp3").write_bytes(b"\x00" * 4000)
    # ... and a folder whose settings file names a language whisper does not know
    (source / "mumbled").mkdir()
    shutil.copy(source / "fox.mp3", source / "mumbled" / "fox again.mp3")
    (source / "mumbled" / ".whisper-fleet.toml").write_text('language = "Klingon"\n')
    port = str(free_port())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT", "FLEET_", "WHISPER_"))}
    env.update({"LOCALSTACK_PORT": port, "LOCALSTACK_STATE_DIR": str(tmp_path / "ls"), "WHISPER_MODEL": "tiny.en",
                "WHISPER_ALIGN": "false", "HF_HUB_OFFLINE": "1"})  # fmt: skip
    # When the user runs the one command
    run = subprocess.run([str(REPO_ROOT / "build.sh"), "local", str(source), str(dest), "--workers", "2"],
                         env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    # Then the good files are transcribed, the broken one and the bad folder are reported, and the exit code says so
    assert run.returncode == 2, run.stdout + run.stderr  # 2: a folder could not be planned (before 1: failed files)
    lines = run.stdout.splitlines()
    assert lines[0].startswith("director: found 4, done 0, enqueued 3, already queued 0, failed before 0, skipped 1")
    assert "fleet: mumbled/.whisper-fleet.toml: line 1: language: unknown language 'Klingon'" in run.stderr
    summary = next(line for line in lines if line.startswith("local run:"))
    assert summary.startswith("local run: 2 transcribed, 1 failed")
    assert any("failed: broken.mp3: not decodable" in line for line in lines)
    for name in ("fox", "river"):
        for fmt in OUTPUT_FORMATS:
            assert (dest / f"{name}.{fmt}").exists()
        assert json.loads((dest / f"{name}.json").read_text())["fleet"]["worker"] in ("local-1", "local-2")
    # And each worker that transcribed left by itself once the queue was drained (no stop signal, no long poll
    # waited out), after a start-up whose phases its `worker ready` line names
    for log_path in sorted((dest / ".fleet" / "logs").glob("worker-*.log")):
        events = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
        names = [event["event"] for event in events]
        ready = next(event for event in events if event["event"] == "worker ready")
        assert {"imports", "vad import", "vad model", "whisper model", "queue"} <= set(ready["startup_s"])
        assert all(seconds >= 0 for seconds in ready["startup_s"].values())
        if "file started" in names:
            assert "queue drained, exiting" in names and not any(name.startswith("stop requested") for name in names)
    # And the LocalStack it started is stopped again
    status = subprocess.run([str(REPO_ROOT / "localstack" / "host.sh"), "status"], env={**env, "PATH": os.environ["PATH"]})
    assert status.returncode == 1
    # And a second run finds nothing to do
    again = subprocess.run([str(REPO_ROOT / "build.sh"), "local", str(source), str(dest)], env=env, capture_output=True,
                           text=True, timeout=600)  # fmt: skip
    assert "done 2, enqueued 0, already queued 0, failed before 1" in again.stdout
    assert "local run: nothing to transcribe" in again.stdout and again.returncode == 2
