"""`fleet dashboard` entry: serve until SIGTERM/Ctrl-C."""

from __future__ import annotations

import json
import signal
import threading
import urllib.request

import structlog

from app.dashboard.server import serve
from fleet.settings import FleetSettings
from fleet.transport.sqs import SqsQueue

log = structlog.get_logger()


def run_dashboard(settings: FleetSettings) -> int:
    """Serve the dashboard until SIGTERM or Ctrl-C."""
    spec = settings.queue_spec()
    server = serve(settings, SqsQueue.connect(settings.queue_endpoint(), spec), settings.dashboard_host, settings.dashboard_port)
    host, port = server.server_address[:2]
    print(f"dashboard: http://{host}:{port}/ (dest {settings.dest_dir})", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    server.shutdown()
    return 0


def check_dashboard(port: int, timeout_s: float = 5.0) -> tuple[bool, str]:
    """(healthy, one line why): the status API answers on this host."""
    url = f"http://127.0.0.1:{port}/api/status"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            json.load(response)
            return True, f"{url} answers"
    except (OSError, ValueError) as exc:
        return False, f"{url} does not answer: {exc}"
