"""A local HTTP receiver for notification tests: records every POST's path and JSON body."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Received:
    """The requests a receiver got, in order."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.port, self.host = port, host
        self.posts: list[tuple[str, dict]] = []
        self.authorizations: list[str | None] = []  # each POST's Authorization header, in order
        self.arrived = threading.Condition()

    def url(self, path: str, scheme: str = "http") -> str:
        return f"{scheme}://{self.host}:{self.port}{path}"

    def bodies(self, path: str) -> list[dict]:
        return [body for where, body in list(self.posts) if where == path]

    def wait_for(self, path: str, count: int, timeout_s: float = 30.0) -> list[dict]:
        """The bodies POSTed to `path`, once there are at least `count` (AssertionError after `timeout_s`)."""
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.bodies(path)) >= count, timeout_s):
                raise AssertionError(f"{len(self.bodies(path))} POSTs to {path}, expected {count}: {self.posts}")
        return self.bodies(path)


@contextmanager
def receiver(bind: str = "127.0.0.1", host: str | None = None) -> Iterator[Received]:
    """A ThreadingHTTPServer on a free port of `bind` for the duration of the block; URLs name `host` (default `bind`)."""
    received: Received

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with received.arrived:
                received.posts.append((self.path, json.loads(body or b"{}")))
                received.authorizations.append(self.headers.get("Authorization"))
                received.arrived.notify_all()
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((bind, 0), Handler)
    received = Received(server.server_address[1], host or bind)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()
