"""The front door for Bazarr (issue 33) against the design of the servers Bazarr uses today, side by side in one run.

  fleet     `fleet asr` + WORKERS resident `fleet worker`s of 1 thread each, host LocalStack, base model, defaults
  baseline  whisper-asr-webservice's design: one faster-whisper model in the request process behind a lock
            (the same bundled base model, int8, all cores, beam 5, no VAD: Bazarr asks for none), built here

Measured, each with Bazarr's request (s16le 16 kHz PCM, encode=false, output=srt):
  busy      upload to SRT of a 3-minute recording while a folder backlog keeps every fleet worker busy (the baseline
            has no backlog: it transcribes it at once)
  ten       ten different 20-second recordings posted at once: the time to the last SRT, and the mean wait
  upload    the door's upload throughput: a one-hour body (115 MB) posted again, so it is only read, hashed and joined

    .venv/bin/python -m bench.front_door [--backlog 6] [--write]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse

from bench.corpus import build_corpus
from bench.enqueue_scale import start_localstack
from bench.runs import free_port, write_section
from tests.support.front_door import BazarrClient, serving
from tests.support.paths import HOST_SCRIPT, REPO_ROOT

WORKERS = 2
JFK = REPO_ROOT / "tests" / "data" / "real-speech" / "jfk.flac"
RATE = 16000


def pcm(path: Path) -> np.ndarray:
    raw = subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(path), "-f", "s16le", "-ac", "1", "-ar",
                          str(RATE), "-"], check=True, capture_output=True).stdout  # fmt: skip
    return np.frombuffer(raw, dtype="<i2")


def recording(speech: np.ndarray, seconds: float, pad_s: float = 0.0) -> bytes:
    """Real speech repeated to `seconds`, after `pad_s` of silence (a different body, so a different job)."""
    repeats = int(np.ceil(seconds * RATE / len(speech)))
    body = np.concatenate([np.zeros(int(pad_s * RATE), dtype="<i2"), np.tile(speech, repeats)[: int(seconds * RATE)]])
    return body.astype("<i2").tobytes()


def baseline_app(model_dir: str, threads: int):  # noqa: ANN201
    """whisper-asr-webservice's faster-whisper engine, reduced to what Bazarr calls: one model, one lock."""
    from faster_whisper import WhisperModel
    from faster_whisper.utils import format_timestamp
    from starlette.concurrency import run_in_threadpool

    model = WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=threads)
    lock = threading.Lock()
    app = FastAPI()

    def transcribe(data: bytes, task: str, language: str | None) -> str:
        audio = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768
        with lock:  # one transcription at a time: the model is shared by every request
            segments, _ = model.transcribe(audio, task=task, language=language, beam_size=5)  # Bazarr asks no VAD
            out = io.StringIO()
            for i, seg in enumerate(segments, 1):
                out.write(f"{i}\n{format_timestamp(seg.start, True, ',')} --> {format_timestamp(seg.end, True, ',')}\n"
                          f"{seg.text.strip()}\n\n")  # fmt: skip
        return out.getvalue()

    @app.post("/asr")
    async def asr(request: Request, task: str = "transcribe", language: str | None = None) -> PlainTextResponse:
        form = await request.form()
        data = await form["audio_file"].read()  # type: ignore[union-attr]
        return PlainTextResponse(await run_in_threadpool(transcribe, data, task, language))

    return app


def fleet(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    handle = open(log, "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([sys.executable, "-m", "app.cli", *args], env=env, stdout=handle, stderr=subprocess.STDOUT)


def wait_for_door(client: BazarrClient) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if client.status().status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the front door never answered")


def workers_busy(dest: Path, count: int) -> bool:
    import json

    busy = 0
    for path in (dest / ".fleet" / "workers").glob("*.json"):
        try:
            busy += json.loads(path.read_text()).get("stage") == "transcribe"
        except (OSError, ValueError):
            continue
    return busy >= count


def timed_post(client: BazarrClient, body: bytes) -> float:
    started = time.perf_counter()
    answer = client.asr(body, "transcribe", "en")
    assert answer.status_code == 200 and "-->" in answer.text, (answer.status_code, answer.text[:200])
    return time.perf_counter() - started


def ten_at_once(client: BazarrClient, bodies: list[bytes]) -> tuple[float, float]:
    """(seconds to the last SRT, mean seconds per request) of all bodies posted together."""
    started = time.perf_counter()
    with ThreadPoolExecutor(len(bodies)) as pool:
        waits = list(pool.map(lambda body: timed_post(client, body), bodies))
    return time.perf_counter() - started, statistics.mean(waits)


def run_fleet(root: Path, bodies: dict[str, object], backlog: int) -> dict[str, float]:
    endpoint, ls_env = start_localstack(root / "localstack")
    corpus, _ = build_corpus(Path("/tmp/fleet-bench-front-door-corpus"), files=backlog)
    dest = root / "dest"
    dest.mkdir()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("FLEET_", "WHISPER_", "AWS_ENDPOINT"))}
    env = {**clean, "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "FLEET_QUEUE_NAME": f"bench-{uuid.uuid4().hex[:8]}", "FLEET_LOG_FORMAT": "json", "FLEET_MIN_AGE_S": "0",
           "FLEET_WORKERS": str(WORKERS), "FLEET_SOURCE_DIR": str(corpus), "FLEET_DEST_DIR": str(dest),
           "WHISPER_MODEL": "base", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}  # fmt: skip
    port = free_port()
    client = BazarrClient(f"http://127.0.0.1:{port}")
    procs = [fleet(["asr", "--port", str(port)], {**env, "FLEET_ASR_WAIT_S": "0.01"}, root / "door-upload.log")]
    try:
        wait_for_door(client)
        hour: bytes = bodies["hour"]  # type: ignore[assignment]
        params = {"encode": "false", "language": "en", "output": "srt"}
        for attempt in ("queued", "joined"):  # the second is only read, hashed and joined: the upload itself
            started = time.perf_counter()
            answer = client.session.post(f"{client.endpoint}/asr", params=params, files={"audio_file": hour}, timeout=600)
            upload_s = time.perf_counter() - started
            assert answer.status_code == 202, (attempt, answer.status_code, answer.text[:200])
        procs[0].terminate()
        procs[0].wait()
        shutil.rmtree(dest / ".fleet" / "asr")  # the hour is not transcribed: the workers start on the backlog
        procs[0] = fleet(["asr", "--port", str(port)], env, root / "door.log")
        wait_for_door(client)
        subprocess.run([sys.executable, "-m", "app.cli", "director"], env=env, check=True, stdout=subprocess.DEVNULL)
        procs += [fleet(["worker"], env, root / f"worker-{i}.log") for i in range(WORKERS)]
        while not workers_busy(dest, WORKERS):
            time.sleep(0.1)
        busy_s = timed_post(client, bodies["three_minutes"])  # type: ignore[arg-type]
        ten = ten_at_once(client, bodies["ten"])  # type: ignore[arg-type]
        return {"busy_s": busy_s, "ten_last_s": ten[0], "ten_mean_s": ten[1], "upload_mb_s": len(hour) / 2**20 / upload_s}
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait()
        subprocess.run([str(HOST_SCRIPT), "stop"], env=ls_env, check=False)


def run_baseline(root: Path, bodies: dict[str, object]) -> dict[str, float]:
    from worker.speech.models import bundled_model_dir

    model_dir = str(bundled_model_dir("base", root / "models"))
    with serving(baseline_app(model_dir, os.cpu_count() or 2), free_port()) as url:
        client = BazarrClient(url)
        busy_s = timed_post(client, bodies["three_minutes"])  # type: ignore[arg-type]
        ten = ten_at_once(client, bodies["ten"])  # type: ignore[arg-type]
    return {"busy_s": busy_s, "ten_last_s": ten[0], "ten_mean_s": ten[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=6, help="folder files queued before the front-door requests")
    parser.add_argument("--write", action="store_true", help="write the figures into BENCHMARKS.md")
    args = parser.parse_args()
    speech = pcm(JFK)
    bodies = {"three_minutes": recording(speech, 180), "ten": [recording(speech, 20, pad_s=0.1 * i) for i in range(10)],
              "hour": recording(speech, 3600, pad_s=0.05)}  # fmt: skip
    root = Path(tempfile.mkdtemp(prefix="fleet-bench-front-door-"))
    try:
        baseline = run_baseline(root, bodies)
        print(f"baseline: 3-min {baseline['busy_s']:.1f} s, ten at once: last {baseline['ten_last_s']:.1f} s, "
              f"mean {baseline['ten_mean_s']:.1f} s", flush=True)  # fmt: skip
        fleet_figures = run_fleet(root, bodies, args.backlog)
        print(f"fleet: 3-min behind a busy backlog {fleet_figures['busy_s']:.1f} s, ten at once: last "
              f"{fleet_figures['ten_last_s']:.1f} s, mean {fleet_figures['ten_mean_s']:.1f} s, upload "
              f"{fleet_figures['upload_mb_s']:.0f} MB/s", flush=True)  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)
    ratios = {key: fleet_figures[key] / baseline[key] for key in ("busy_s", "ten_last_s", "ten_mean_s")}
    print("fleet/baseline: " + ", ".join(f"{key} x{value:.2f}" for key, value in ratios.items()))
    if args.write:
        table = [
            "| | baseline (one model, one lock) | fleet (`fleet asr` + 2 workers x 1 thread) | fleet/baseline |",
            "|---|---|---|---|",
            f"| 3-min recording, upload to SRT (fleet: every worker busy on the folder) | {baseline['busy_s']:.1f} s | "
            f"{fleet_figures['busy_s']:.1f} s | x{ratios['busy_s']:.2f} |",
            f"| ten 20-s recordings at once: last SRT | {baseline['ten_last_s']:.1f} s | {fleet_figures['ten_last_s']:.1f} s | "
            f"x{ratios['ten_last_s']:.2f} |",
            f"| ten at once: mean wait | {baseline['ten_mean_s']:.1f} s | {fleet_figures['ten_mean_s']:.1f} s | "
            f"x{ratios['ten_mean_s']:.2f} |",
            f"| upload throughput (1 h of PCM, 115 MB, read and hashed) | - | {fleet_figures['upload_mb_s']:.0f} MB/s | |",
        ]  # fmt: skip
        write_section("front-door", "The front door for Bazarr (fleet asr)",
                      "Bazarr's requests (s16le PCM, encode=false, output=srt) on real speech (jfk.flac repeated); the "
                      "baseline is whisper-asr-webservice's design built in the bench on the same model.",
                      "`.venv/bin/python -m bench.front_door --write`", table,
                      ", ".join(f"{key} x{value:.2f}" for key, value in ratios.items()))  # fmt: skip


if __name__ == "__main__":
    main()
