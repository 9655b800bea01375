"""The `fleet` console script: one entry point, one subcommand per process kind.

worker/ is imported only by the subcommands that run it: the director image has no worker code.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from director.main import DestError, run_director
from fleet import __version__
from fleet.job.messages import TranscriptionJob
from fleet.process import exits
from fleet.process.logs import configure_logging
from fleet.process.secrets import redact, register_secrets, url_secrets
from fleet.roots.readiness import SourceError
from fleet.settings import FleetSettings
from fleet.transport.queue import QueueError
from fleet.transport.spec import QueueSpecError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fleet", description="Transcribe a folder of recordings with a whisperX fleet.")
    parser.add_argument("--version", action="version", version=f"whisper-fleet {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    director = commands.add_parser("director", help="diff source against dest and enqueue what is missing")
    director.add_argument("--source", type=Path, help="source folder (default: FLEET_SOURCE_DIR)")
    director.add_argument("--dest", type=Path, help="destination folder (default: FLEET_DEST_DIR)")
    director.add_argument("--dry-run", action="store_true", help="print the plan, enqueue nothing")
    director.add_argument("--retry-failed", action="store_true", help="enqueue files that failed before, too")
    director.add_argument("--show", type=int, default=20, metavar="N", help="items listed per kind in --dry-run")
    director.add_argument("--watch", type=float, metavar="S", help="run again every S seconds (FLEET_WATCH_INTERVAL_S)")
    director.add_argument("--check", action="store_true", help="health check: exit 0 if a round finished lately, else 1")

    worker = commands.add_parser("worker", help="transcribe queued files, one at a time, models kept loaded")
    worker.add_argument("--source", type=Path, help="source folder (default: FLEET_SOURCE_DIR)")
    worker.add_argument("--dest", type=Path, help="destination folder (default: FLEET_DEST_DIR)")
    worker.add_argument("--until-empty", action="store_true", help="exit 0 once the queue is drained")
    worker.add_argument("--max-files", type=int, default=0, metavar="N", help="exit after N files (default: FLEET_MAX_FILES)")
    worker.add_argument("--check", action="store_true", help="health check: exit 0 if this host's worker beats, else 1")

    status = commands.add_parser("status", help="queue, last plan, workers and failures, without touching a message")
    status.add_argument("--dest", type=Path, help="destination folder (default: FLEET_DEST_DIR)")
    status.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    status.add_argument("--watch", action="store_true", help="redraw every 2 s with progress bars")

    dashboard = commands.add_parser("dashboard", help="a live web page with the fleet's status (127.0.0.1 by default)")
    dashboard.add_argument("--dest", type=Path, help="destination folder (default: FLEET_DEST_DIR)")
    dashboard.add_argument("--host", help="bind address (default: FLEET_DASHBOARD_HOST)")
    dashboard.add_argument("--port", type=int, help="port (default: FLEET_DASHBOARD_PORT)")
    dashboard.add_argument("--check", action="store_true", help="health check: exit 0 if the page answers on this host, else 1")

    preload = commands.add_parser("preload", help="fetch every model the workers will need, so they run offline")
    preload.add_argument("--languages", help="alignment languages, comma separated (default: FLEET_PRELOAD_LANGUAGES)")

    dlq = commands.add_parser("dlq", help="the dead-letter queue: list what failed and why, redrive it once fixed, purge")
    dlq.add_argument("action", choices=["list", "redrive", "purge"])
    dlq.add_argument("--yes", action="store_true", help="confirm purge")
    dlq.add_argument("--reason", default="", help="only dead letters whose reason contains this (case-insensitive)")
    dlq.add_argument("--path", default="", help="only files matching this glob, or below this folder (relative to the source)")

    subtitles = commands.add_parser("subtitles", help="the subtitles the fleet wrote beside videos: list, or remove "
                                    "(leaving the media layout; a dry run without --yes)")  # fmt: skip
    subtitles.add_argument("action", choices=["list", "remove"])
    subtitles.add_argument("--yes", action="store_true", help="really remove them")
    subtitles.add_argument("--source", type=Path, help="source folder (default: FLEET_SOURCE_DIR)")
    subtitles.add_argument("--dest", type=Path, help="destination folder (default: FLEET_DEST_DIR)")

    asr = commands.add_parser("asr", help="the front door for Bazarr's Whisper provider (whisper-asr-webservice's API) "
                              "on the fleet's queue (127.0.0.1:9000 by default)")  # fmt: skip
    asr.add_argument("--dest", type=Path, help="destination folder; its .fleet/asr/ keeps the jobs (default: FLEET_DEST_DIR)")
    asr.add_argument("--host", help="bind address (default: FLEET_ASR_HOST)")
    asr.add_argument("--port", type=int, help="port (default: FLEET_ASR_PORT)")

    local = commands.add_parser("local", help="director + N draining workers on this machine, with progress and a summary")
    local.add_argument("source", type=Path, help="source folder")
    local.add_argument("dest", type=Path, help="destination folder")
    local.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="worker processes (default: FLEET_WORKERS); 0 with FLEET_TRANSFER_BUCKET: remote workers only",
    )
    return parser


def settings_secrets(settings: FleetSettings) -> list[str]:
    """Every configured value that must never appear in a log line, a record or an error text."""
    urls = [url for url in (settings.webhook_url, *settings.notify_urls) if url]
    return [settings.hf_token or "", os.environ.get("AWS_SECRET_ACCESS_KEY", ""), os.environ.get("AWS_SESSION_TOKEN", ""),
            *(secret for url in urls for secret in url_secrets(url))]  # fmt: skip


def load_settings(overrides: dict[str, object]) -> FleetSettings:
    """Environment first, command-line flags on top; built once per process."""
    return FleetSettings(**{k: v for k, v in overrides.items() if v is not None})


def _one_line(error: ValidationError) -> str:
    first = error.errors()[0]
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    if not first["loc"]:  # a check across settings: its message names them
        return f"invalid settings: {first['msg'].removeprefix('Value error, ')}{more}"
    where = ".".join(str(part) for part in first["loc"])
    return f"invalid setting {where}: {first['msg']}{more}"


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, build settings, run the subcommand; errors become one line and an exit code."""
    args = build_parser().parse_args(argv)
    try:
        overrides = {"source_dir": getattr(args, "source", None), "dest_dir": getattr(args, "dest", None)}
        if getattr(args, "workers", None):
            overrides["workers"] = args.workers
        if isinstance(getattr(args, "watch", None), float):
            overrides["watch_interval_s"] = args.watch
        if getattr(args, "host", None) and args.command == "dashboard":
            overrides["dashboard_host"] = args.host
        if getattr(args, "port", None) is not None and args.command == "dashboard":
            overrides["dashboard_port"] = args.port
        if getattr(args, "languages", None):
            overrides["preload_languages"] = args.languages
        if args.command == "local" and "FLEET_MIN_AGE_S" not in os.environ:
            # One run, started by hand when the copying is done: nothing would take a "settling" file later.
            overrides["min_age_s"] = 0.0
        settings = load_settings(overrides)
        register_secrets(settings_secrets(settings))
        if args.command == "asr":
            from frontdoor.settings import FrontDoorSettings

            door = {"host": args.host, "port": args.port}
            args.door = FrontDoorSettings(**{k: v for k, v in door.items() if v is not None})
            register_secrets([args.door.password or ""])
    except ValidationError as exc:
        print(f"fleet: {redact(_one_line(exc))}", file=sys.stderr)
        return exits.BAD_INPUT
    if args.command == "local" and args.workers is not None and args.workers < (0 if settings.transfer_bucket else 1):
        print("fleet: --workers must be 1 or more (0 only with FLEET_TRANSFER_BUCKET, where remote workers transcribe)",
              file=sys.stderr)  # fmt: skip
        return exits.BAD_INPUT
    if getattr(args, "check", False):
        return _check(args, settings)
    configure_logging(settings.log_level, settings.log_format)
    try:
        return _run(args, settings)
    except (SourceError, DestError, QueueSpecError) as exc:
        print(f"fleet: {redact(str(exc))}", file=sys.stderr)
        return exits.BAD_INPUT
    except QueueError as exc:
        print(f"fleet: {redact(str(exc))}", file=sys.stderr)
        return exits.QUEUE
    except KeyboardInterrupt:
        print("fleet: interrupted", file=sys.stderr)
        return exits.INTERRUPTED


def _run(args: argparse.Namespace, settings: FleetSettings) -> int:
    """The subcommand itself; heavy modules are imported only by the one that needs them."""
    if args.command == "local":
        from app.local_run import run_local

        return run_local(settings, settings.workers if args.workers is None else args.workers)
    if args.command == "status":
        from app.status_cli import run_status

        return run_status(settings, as_json=args.json, watch=args.watch)
    if args.command == "dashboard":
        from app.dashboard.main import run_dashboard

        return run_dashboard(settings)
    if args.command in ("worker", "preload"):
        return _run_worker_side(args, settings)
    if args.command == "asr":
        from frontdoor.main import run_front_door

        return run_front_door(settings, args.door)
    if args.command == "subtitles":
        from app.beside_subtitles import run_beside_subtitles

        return run_beside_subtitles(settings, args.action, args.yes)
    if args.command == "dlq":
        from app.dlq import LetterFilter, run_dlq

        return run_dlq(settings, args.action, yes=args.yes, chosen=LetterFilter(args.reason, args.path))

    def direct(on_outstanding: Callable[[list[TranscriptionJob]], None] | None = None) -> int:
        return run_director(settings, dry_run=args.dry_run, retry_failed=args.retry_failed, show=args.show,
                            on_outstanding=on_outstanding).exit_code  # fmt: skip

    if settings.watch_interval_s and not args.dry_run:
        from director.watch import watch

        if settings.transfer_bucket is None:
            return watch(direct, settings.watch_interval_s)
        from director.transfer.home import connect_home_transfer, start_home_transfer

        stop = threading.Event()
        home = connect_home_transfer(settings)
        threads = start_home_transfer(home, stop)  # remote workers' audio out and results in, between the rounds
        try:
            return watch(lambda: direct(home.offer), settings.watch_interval_s, stop)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
            home.close()
    return direct()


def _run_worker_side(args: argparse.Namespace, settings: FleetSettings) -> int:
    """`fleet worker` and `fleet preload`: the only subcommands that need worker/ (and torch)."""
    from worker.audio.ffmpeg import FfmpegMissing
    from worker.speech.models import ModelError

    try:
        if args.command == "preload":
            from worker.preload import preload

            return preload(settings)
        from worker.main import run_worker  # imports torch only when a worker starts
        from worker.queue_loop.shutdown import exit_now

        # Every output is fsynced and every queue call answered by now; skipping the interpreter's
        # teardown of torch and CTranslate2 is time a short run waits for (BENCHMARKS.md, start-up and shut-down).
        exit_now(run_worker(settings, until_empty=args.until_empty, max_files=args.max_files,
                            remote=works_remotely(args, settings)))  # fmt: skip
    except (ModelError, FfmpegMissing) as exc:
        print(f"fleet: {redact(str(exc))}", file=sys.stderr)
        return exits.BAD_INPUT


def works_remotely(args: argparse.Namespace, settings: FleetSettings) -> bool:
    """A worker given no source and no destination, with a transfer bucket: its files travel through the bucket."""
    roots_given = args.source or args.dest or os.environ.get("FLEET_SOURCE_DIR") or os.environ.get("FLEET_DEST_DIR")
    return settings.transfer_bucket is not None and not roots_given


def _check(args: argparse.Namespace, settings: FleetSettings) -> int:
    """A container health check: one line, exit 0 (healthy) or 1, no queue call, no model load."""
    command = args.command
    if command == "worker" and works_remotely(args, settings):
        from worker.health import remote_worker_health

        healthy, why = remote_worker_health()
    elif command == "worker":
        from worker.health import worker_health

        healthy, why = worker_health(settings.dest_dir)
    elif command == "director":
        from director.health import director_health

        healthy, why = director_health(settings.dest_dir, settings.watch_interval_s)
    elif command == "dashboard":
        from app.dashboard.main import check_dashboard

        healthy, why = check_dashboard(settings.dashboard_port)
    else:
        print(f"fleet: {command} has no --check", file=sys.stderr)
        return exits.BAD_INPUT
    print(f"{'healthy' if healthy else 'unhealthy'}: {why}")
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
