"""`fleet dashboard` entry: serve until SIGTERM/Ctrl-C."""

from __future__ import annotations

import signal
import threading

import structlog

from fleet.dashboard.server import serve
from fleet.queue import JobQueue
from fleet.settings import FleetSettings

log = structlog.get_logger()


def run_dashboard(settings: FleetSettings) -> int:
    spec = settings.queue_spec()
    server = serve(settings, JobQueue.connect(settings, spec), settings.dashboard_host, settings.dashboard_port)
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
