"""Bazarr's side of the front door, written from its Whisper provider's requests (none of its code), and a door to test."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
import uvicorn

# What Bazarr's provider sends: a requests Session with subliminal's User-Agent, the whole track decoded to
# s16le mono 16 kHz in the multipart field `audio_file` (requests names the file after the field), encode=false.
USER_AGENT = "Subliminal/2.1.0"


class BazarrClient:
    """The three requests Bazarr's Whisper provider makes, with its (connect, read) timeouts."""

    def __init__(self, endpoint: str, response_s: float = 5, timeout_s: float = 3600) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.timeouts = (response_s, timeout_s)
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT

    def status(self) -> requests.Response:
        return self.session.get(f"{self.endpoint}/status", timeout=self.timeouts)

    def detect_language(self, pcm: bytes) -> requests.Response:
        return self.session.post(f"{self.endpoint}/detect-language", params={"encode": "false"}, files={"audio_file": pcm},
                                 timeout=self.timeouts)  # fmt: skip

    def asr(self, pcm: bytes, task: str, language: str) -> requests.Response:
        params = {"task": task, "language": language, "output": "srt", "encode": "false"}
        return self.session.post(f"{self.endpoint}/asr", params=params, files={"audio_file": pcm}, timeout=self.timeouts)


@contextmanager
def serving(app: Any, port: int) -> Iterator[str]:
    """Serve an ASGI app on the loopback in a thread; its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the front door did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
