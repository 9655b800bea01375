"""`fleet status` entry: one report (text or JSON), or a live redraw until Ctrl-C."""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.live import Live

from app.status import gather_status
from app.status_view import live_view, status_lines
from fleet.process import exits
from fleet.settings import FleetSettings
from fleet.transport.sqs import SqsQueue

REFRESH_S = 2.0


def run_status(settings: FleetSettings, as_json: bool = False, watch: bool = False) -> int:
    """Exit 0 when the queue answered, 3 when it did not (for scripts and health checks)."""
    spec = settings.queue_spec()
    queue = SqsQueue.connect(settings.queue_endpoint(), spec)
    if watch:
        console = Console()
        try:
            with Live(live_view(gather_status(settings, queue)), console=console, refresh_per_second=1) as live:
                while True:
                    time.sleep(REFRESH_S)
                    live.update(live_view(gather_status(settings, queue)))
        except KeyboardInterrupt:
            return 0
    report = gather_status(settings, queue)
    print(report.to_json() if as_json else "\n".join(status_lines(report)), file=sys.stdout)
    return exits.OK if report.queue is not None else exits.QUEUE
