"""Run ffprobe with a deadline that holds even when the file's share has stalled."""

from __future__ import annotations

import subprocess
import threading


def run_bounded(command: list[str], timeout_s: float) -> subprocess.CompletedProcess[bytes] | None:
    """The finished process, or None after `timeout_s`. A read stuck in the kernel on a stalled share (NFS, SMB)
    cannot be killed until it returns, and `subprocess.run` waits for the kill to take: this returns at once and
    reaps the process in the background whenever it ends."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        threading.Thread(target=process.communicate, name="reap-ffprobe", daemon=True).start()
        return None
    return subprocess.CompletedProcess(command, process.returncode, out, err)
