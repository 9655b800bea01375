"""Pin every thread pool to this worker's share of the CPUs (unpinned workers oversubscribe the cores: BENCHMARKS.md)."""

from __future__ import annotations

import os
from pathlib import Path

# The native pools read these when they start, so they must be set before torch is imported.
_THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def cpu_quota() -> int:
    """CPUs this process may use: the affinity mask, capped by a cgroup v2 quota (containers)."""
    cpus = len(os.sched_getaffinity(0))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cpus = min(cpus, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cpus


def threads_per_worker(configured: int, workers: int, cpus: int) -> int:
    """FLEET_THREADS if set, else a fair share of the CPUs among the workers on this machine."""
    if configured > 0:
        return configured
    return max(1, cpus // max(1, workers))


def pin_native_threads(threads: int) -> None:
    """Set the thread environment for OpenMP/MKL before torch loads; torch itself is pinned later."""
    for name in _THREAD_ENV_VARS:
        os.environ[name] = str(threads)


def pin_torch_threads(threads: int) -> None:
    """torch's intra-op pool; inter-op stays at 1, the pipeline has no parallel ops to overlap."""
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # can only be set once per process, before any parallel work
