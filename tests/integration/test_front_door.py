"""Bazarr's Whisper provider through `fleet asr` to a real worker on LocalStack: detect, transcribe, translate, duplicates,
restarts and a job longer than the door's wait. The client sends what the provider sends (tests/support/front_door.py)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import jiwer
import pytest
import requests

from tests.support import speech
from tests.support.fleet_procs import FleetProcess, fleet_env
from tests.support.front_door import BazarrClient
from tests.support.paths import REPO_ROOT
from tests.support.ports import free_port

pytestmark = [pytest.mark.queue, pytest.mark.model, pytest.mark.long]
REAL = REPO_ROOT / "tests" / "data" / "real-speech"
JFK = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."


def decoded(path: Path) -> bytes:
    """The track as Bazarr uploads it with encode=false: ffmpeg's s16le, mono, 16 kHz, the whole of it."""
    return subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(path), "-f", "s16le", "-acodec",
                           "pcm_s16le", "-ac", "1", "-ar", "16000", "-"], check=True, capture_output=True).stdout  # fmt: skip


def start_door(env: dict[str, str], port: int, log: Path, wait_s: float) -> tuple[FleetProcess, BazarrClient]:
    """`fleet asr` on `port`, once it answers Bazarr's "Test connection"."""
    door = FleetProcess.start(["asr", "--port", str(port)], {**env, "FLEET_ASR_WAIT_S": str(wait_s)}, log)
    client = BazarrClient(f"http://127.0.0.1:{port}", timeout_s=900)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and door.process.poll() is None:
        try:
            if client.status().status_code == 200:
                return door, client
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError(f"the front door never answered; log:\n{log.read_text()[-3000:]}")


def stop(process: FleetProcess) -> None:
    process.signal(signal.SIGTERM)
    assert process.wait(60) == 0


def transcribed(worker: FleetProcess) -> list[str]:
    return [e["file"] for e in worker.events() if e.get("event") == "file finished" and e["outcome"] == "transcribed"]


def wait_until(condition, what: str, timeout_s: float, proc: FleetProcess) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"never {what} within {timeout_s} s; log:\n{proc.log_path.read_text()[-3000:]}")


def test_bazarrs_requests_are_answered_by_the_fleet_and_survive_restarts(localstack_endpoint, make_settings, models_dir,
                                                                          tmp_path):  # fmt: skip
    settings = make_settings(localstack_endpoint, models_dir=models_dir)
    settings.source_dir.mkdir(parents=True)
    settings.dest_dir.mkdir(parents=True)
    env = fleet_env(settings, WHISPER_MODEL="base", FLEET_THREADS="2")
    port = free_port()
    door, client = start_door(env, port, tmp_path / "door-1.log", wait_s=900)
    jfk = decoded(REAL / "jfk.flac")
    french = decoded(speech.speak(speech.FRENCH, tmp_path / "bonjour.wav", voice="fr"))

    # detect-language is the door's own: answered with no worker running at all
    assert client.detect_language(jfk).json() | {"confidence": 0, "speech_s": 0} == {
        "detected_language": "english", "language_code": "en", "confidence": 0, "speech_s": 0}  # fmt: skip
    assert client.detect_language(french).json()["language_code"] == "fr"
    maps = Path(f"/proc/{door.process.pid}/maps").read_text()
    assert "libtorch" not in maps and "whisperx" not in maps  # no torch in the door, only faster-whisper's ONNX VAD

    worker = FleetProcess.start(["worker"], env, tmp_path / "worker.log")
    try:
        answer = client.asr(jfk, "transcribe", "en")
        assert answer.status_code == 200, answer.text
        srt = answer.content.decode("utf-8")
        assert "00:00:0" in srt and "-->" in srt
        text = " ".join(line for line in srt.splitlines() if line and not line[0].isdigit())
        assert jiwer.wer(speech.normalise(JFK), speech.normalise(text)) < 0.15

        # Bazarr re-uploads on every retry: two identical translate requests at once share one job
        answers: list[requests.Response] = []
        both = [threading.Thread(target=lambda: answers.append(client.asr(french, "translate", "fr"))) for _ in range(2)]
        for thread in both:
            thread.start()
        for thread in both:
            thread.join(600)
        assert [a.status_code for a in answers] == [200, 200] and answers[0].content == answers[1].content
        assert len(transcribed(worker)) == 2  # jfk, and the French clip once
        twin = json.loads(next((settings.dest_dir / ".fleet" / "asr" / "results").glob(
            f"{answers[0].headers['X-Fleet-Job']}.json")).read_text())  # fmt: skip
        assert twin["fleet"]["settings"]["task"] == "translate" and twin["fleet"]["settings"]["language"] == "fr"

        # a job longer than the door's wait: an empty 202 (no subtitle, no timeout), and the work goes on
        stop(door)
        door, client = start_door(env, port, tmp_path / "door-2.log", wait_s=0.5)
        long_talk = decoded(REAL / "multilingual.mp3")
        early = client.asr(long_talk, "transcribe", "en")
        assert (early.status_code, early.content) == (202, b"")
        stop(door)  # the door restarts while the job runs or waits: nothing is lost
        door, client = start_door(env, port, tmp_path / "door-3.log", wait_s=900)
        wait_until(lambda: len(transcribed(worker)) == 3, "transcribed the long job", 600, worker)
        started = time.monotonic()
        late = client.asr(long_talk, "transcribe", "en")  # Bazarr's next search
        assert late.status_code == 200 and "Permission" in late.text and time.monotonic() - started < 30
        assert len(transcribed(worker)) == 3  # never transcribed twice
        command = [sys.executable, "-m", "app.cli", "status", "--json"]
        status = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        assert json.loads(status.stdout)["front_door"] == {"open": 0, "done": 3, "failed": 0}
    finally:
        worker.signal(signal.SIGTERM)
        worker.wait(120)
        door.kill()
