"""How a process names itself in logs, status records and transcripts."""

from __future__ import annotations

import os
import secrets
import socket


def default_worker_id() -> str:
    """`<hostname>-<pid>`; a container's process is pid 1, and replicas on the host's network share its hostname:
    there a random part tells them apart."""
    pid = os.getpid()
    return f"{socket.gethostname()}-{secrets.token_hex(3) if pid == 1 else pid}"
