"""The dashboard's HTTP server: the page, /api/status, and read-only transcripts under dest."""

from __future__ import annotations

import ipaddress
import json
import mimetypes
import os
import socket
import threading
import time
from collections import deque
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import structlog

from app.status import gather_status
from fleet.job.identity import OUTPUT_FORMATS
from fleet.job.messages import unsafe_path_reason
from fleet.roots.confine import resolve_inside
from fleet.settings import FleetSettings
from fleet.state.paths import FLEET_DIR
from fleet.transport.queue import JobQueue

log = structlog.get_logger()
ASSETS = Path(__file__).parent / "assets"
TRANSCRIPT_SUFFIXES = {f".{fmt}" for fmt in OUTPUT_FORMATS}
HISTORY_POINTS = 360  # a throughput sample per status poll: the last 12 minutes at 2 s
RECENT_LIMIT = 50
RECENT_CACHE_S = 10.0


class Dashboard:
    """State shared by request threads: the status source, the throughput history, recent transcripts."""

    def __init__(self, settings: FleetSettings, queue: JobQueue | None) -> None:
        self.settings = settings
        self.queue = queue
        self.history: deque[dict[str, float]] = deque(maxlen=HISTORY_POINTS)
        self._lock = threading.Lock()
        self._recent: tuple[float, list[dict[str, object]]] = (0.0, [])

    def status(self) -> dict[str, object]:
        report = gather_status(self.settings, self.queue)
        point = {"at": report.at, **{k: v or 0 for k, v in report.throughput.items() if k != "eta_s"}}
        with self._lock:
            self.history.append(point)
            history = list(self.history)
        return {**report.as_dict(), "history": history, "transcripts": self.recent_transcripts()}

    def recent_transcripts(self) -> list[dict[str, object]]:
        """The newest JSON transcripts (by mtime), with links to every format that exists."""
        with self._lock:
            cached_at, cached = self._recent
            if time.time() - cached_at < RECENT_CACHE_S:
                return cached
        dest = self.settings.dest_dir
        found = []
        for folder, dirs, files in os.walk(dest):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in files:
                if name.endswith(".json") and not name.startswith("."):
                    path = Path(folder, name)
                    try:
                        found.append((path.stat().st_mtime, path))
                    except FileNotFoundError:
                        continue
        found.sort(reverse=True)
        recent = []
        for mtime, path in found[:RECENT_LIMIT]:
            base = str(path.relative_to(dest))[: -len(".json")]
            formats = [s[1:] for s in sorted(TRANSCRIPT_SUFFIXES) if Path(dest, base + s).exists()]
            recent.append({"base": base, "finished_at": mtime, "formats": formats})
        with self._lock:
            self._recent = (time.time(), recent)
        return recent

    def transcript_path(self, rel: str) -> Path | None:
        """A finished transcript under dest, or None: no traversal, no .fleet state, no other files."""
        if unsafe_path_reason(rel) or any(part.startswith(".") for part in rel.split("/")):
            return None  # absolute, '..', control characters, hidden (.fleet state)
        if Path(rel).suffix not in TRANSCRIPT_SUFFIXES:
            return None
        path = resolve_inside(self.settings.dest_dir, rel)
        if path is None or FLEET_DIR in path.relative_to(os.path.realpath(self.settings.dest_dir)).parts:
            return None
        return path if path.is_file() else None


def host_allowed(host_header: str, allowed: tuple[str, ...]) -> bool:
    """An IP address, localhost, this machine's name, or a configured name: never a name someone else controls."""
    host = urlsplit(f"//{host_header}").hostname or ""
    try:
        ipaddress.ip_address(host)
        return True  # a rebinding attack needs a DNS name in the Host header, never a literal address
    except ValueError:
        pass
    names = {"localhost", socket.gethostname().lower(), *(name.lower() for name in allowed)}
    return host in names or host.endswith(".localhost")


def make_handler(dashboard: Dashboard) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "whisper-fleet"

        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            if not host_allowed(self.headers.get("Host", ""), dashboard.settings.dashboard_allowed_hosts):
                # DNS rebinding: a page on evil.example whose name now points here would read transcripts
                self.send_error(HTTPStatus.MISDIRECTED_REQUEST, "host not allowed: add it to FLEET_DASHBOARD_ALLOWED_HOSTS")
                return
            path = urlsplit(self.path).path
            if path in ("/", "/index.html"):
                self._send_file(ASSETS / "index.html")
            elif path.startswith("/assets/") and "/" not in path[len("/assets/") :]:
                asset = ASSETS / path[len("/assets/") :]
                self._send_file(asset) if asset.is_file() else self._refuse(HTTPStatus.NOT_FOUND)
            elif path == "/api/status":
                self._send_bytes(json.dumps(dashboard.status()).encode(), "application/json")
            elif path.startswith("/files/"):
                target = dashboard.transcript_path(unquote(path[len("/files/") :]))
                if target is None:
                    self._refuse(HTTPStatus.NOT_FOUND)
                else:
                    kind = "application/json" if target.suffix == ".json" else "text/plain; charset=utf-8"
                    self._send_bytes(target.read_bytes(), kind)
            else:
                self._refuse(HTTPStatus.NOT_FOUND)

        def _send_file(self, path: Path) -> None:
            kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            self._send_bytes(path.read_bytes(), f"{kind}; charset=utf-8" if kind.startswith("text/") else kind)

        def _send_bytes(self, body: bytes, kind: str) -> None:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(body)

        def _refuse(self, status: HTTPStatus) -> None:
            self.send_error(status)

        def log_message(self, fmt: str, *args: object) -> None:
            log.debug("http", request=fmt % args)

    return Handler


def serve(settings: FleetSettings, queue: JobQueue | None, host: str, port: int) -> ThreadingHTTPServer:
    """A started server (call serve_forever); port 0 picks a free one."""
    server = ThreadingHTTPServer((host, port), make_handler(Dashboard(settings, queue)))
    server.daemon_threads = True
    return server
