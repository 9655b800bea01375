"""`fleet status` against a real run: queue counts, the worker's live record, then the totals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.support.fleet_procs import copy_tree, direct, fleet_env, start_worker

pytestmark = [pytest.mark.queue, pytest.mark.model]


def status_json(settings) -> dict:
    env = fleet_env(settings)
    result = subprocess.run([sys.executable, "-m", "app.cli", "status", "--json"], env=env, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_status_shows_the_busy_worker_then_the_finished_run(localstack_endpoint, make_settings, speech_corpus,
                                                            models_dir, tmp_path):  # fmt: skip
    settings = make_settings(localstack_endpoint, models_dir=models_dir, whisper_model="tiny.en", whisper_align=False)
    copy_tree(speech_corpus / "long", settings.source_dir)
    (settings.source_dir / "broken.mp3").write_bytes(b"\x00" * 100)
    direct(settings)
    worker = start_worker(settings, tmp_path, "w", FLEET_WORKER_ID="status-test")
    worker.wait_for_event("file started", file="long talk.wav")
    # While the long file is being transcribed
    deadline = time.monotonic() + 60
    busy = None
    while time.monotonic() < deadline:
        report = status_json(settings)
        workers = {w["worker"]: w for w in report["workers"]}
        if workers.get("status-test", {}).get("stage") == "transcribe":
            busy = report
            break
        time.sleep(0.5)
    assert busy is not None, "the worker never showed up as transcribing"
    record = {w["worker"]: w for w in busy["workers"]}["status-test"]
    assert record["state"] == "working" and record["file"] == "long talk.wav" and not record["lost"]
    assert busy["queue"]["in_flight"] == 1
    assert busy["plan"]["counts"]["enqueue"] == 2 and busy["progress"]["queued"] == 2
    assert worker.wait() == 0
    # After the run
    done = status_json(settings)
    record = {w["worker"]: w for w in done["workers"]}["status-test"]
    assert record["state"] == "stopped" and record["files_done"] == 1 and record["files_failed"] == 1
    assert record["audio_s_done"] > 20
    assert done["progress"] == {"queued": 2, "remaining": 0, "completed": 2, "found": 2, "transcribed": 1, "failed": 1,
                                "percent": 100}  # fmt: skip
    assert done["queue"]["dead_letter"] == 1
    assert [f["source"] for f in done["failures"]] == ["broken.mp3"]
    text = subprocess.run([sys.executable, "-m", "app.cli", "status"], env=fleet_env(settings), capture_output=True,
                          text=True, timeout=60).stdout  # fmt: skip
    assert "status-test on cpu: stopped; 1 done, 1 failed" in text and "broken.mp3: not decodable" in text
    assert os.path.exists(settings.dest_dir / ".fleet" / "workers" / "status-test.json")
