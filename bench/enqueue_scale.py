"""Enqueue throughput: `fleet director` sending N new files (default 10,000) into host LocalStack.

Goal (issue 2): 10,000 messages in under 60 s. Starts its own LocalStack on a free port (or uses
AWS_ENDPOINT_URL if set), uses a fresh queue per run, and times the director end to end
(scan, plan, SendMessageBatch with FLEET_ENQUEUE_THREADS threads), then counts the queue.

    .venv/bin/python bench/enqueue_scale.py [--files 10000] [--threads 4]
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from bench.synthetic_tree import build_tree
from director.main import run_director
from fleet.settings import FleetSettings
from fleet.transport.sqs import SqsQueue
from tests.support.paths import REPO_ROOT

HOST_SCRIPT = REPO_ROOT / "localstack" / "host.sh"


def start_localstack(state_dir: Path) -> tuple[str, dict[str, str]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "LOCALSTACK_PORT": str(port), "LOCALSTACK_STATE_DIR": str(state_dir)}
    subprocess.run([str(HOST_SCRIPT), "start"], env=env, check=True)
    return f"http://127.0.0.1:{port}", env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=FleetSettings().enqueue_threads)
    parser.add_argument("--root", type=Path, default=Path("/tmp/fleet-bench-enqueue"))
    args = parser.parse_args()
    source, _ = build_tree(args.root / str(args.files), args.files, 0.0, FleetSettings().transcription())
    own_server = not os.environ.get("AWS_ENDPOINT_URL")
    state = Path(tempfile.mkdtemp(prefix="fleet-bench-ls-"))
    endpoint, env = start_localstack(state) if own_server else (os.environ["AWS_ENDPOINT_URL"], {})
    try:
        settings = FleetSettings(
            source_dir=source,
            dest_dir=Path(tempfile.mkdtemp(prefix="fleet-bench-dest-")),
            queue_name=f"bench-{uuid.uuid4().hex[:8]}",
            aws_endpoint_url=endpoint,
            enqueue_threads=args.threads,
        )
        out = io.StringIO()
        started = time.perf_counter()
        code = run_director(settings, out=out).exit_code
        total = time.perf_counter() - started
        spec = settings.queue_spec()
        queue = SqsQueue.connect(settings.queue_endpoint(), spec)
        queue.lookup()
        visible = queue.counts().visible
        print(out.getvalue().strip())
        rate = args.files / total
        verdict = "PASS" if code == 0 and visible == args.files and total < 60 else "MISS"
        print(
            f"enqueue_scale: {args.files} messages, {args.threads} threads: director {total:.1f} s end to end "
            f"({rate:.0f} msg/s), queue holds {visible} (goal < 60 s): {verdict}"
        )
    finally:
        if own_server:
            subprocess.run([str(HOST_SCRIPT), "stop"], env=env, check=False)


if __name__ == "__main__":
    main()
