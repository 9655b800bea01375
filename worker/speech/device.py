"""Where a worker's models run: the GPU it picks, the CPU it falls back to, and what CUDA running out of memory means."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import structlog

log = structlog.get_logger()
T = TypeVar("T")
ON_CPU_AFTER_OOM = "on the CPU after CUDA out of memory"


def resolve_device(configured: str) -> str:
    """`auto` -> `cuda` where torch sees a GPU, else `cpu`; anything else as configured."""
    if configured != "auto":
        return configured
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def emptiest_gpu() -> int:
    """The index of the visible GPU with the most free memory (0 with one GPU, or when torch cannot tell)."""
    import torch

    count = torch.cuda.device_count()
    if count <= 1:
        return 0
    try:
        free = [torch.cuda.mem_get_info(index)[0] for index in range(count)]
    except RuntimeError:
        return 0
    return max(range(count), key=lambda index: free[index])


def torch_device(device: str, index: int) -> str:
    """torch's name for `device` on the GPU `index` ("cuda:1"), or "cpu"."""
    return f"cuda:{index}" if device == "cuda" else device


def compute_type(configured: str, device: str) -> str:
    """`auto` -> float16 on a GPU, int8 on the CPU."""
    if configured != "auto":
        return configured
    return "float16" if device == "cuda" else "int8"


def free_cuda_cache() -> None:
    """Give the memory torch's allocator holds back to the GPU (after dropping the models that used it)."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA OOM from torch or from CTranslate2 (a RuntimeError with that text)."""
    return "out of memory" in str(exc).lower()


def smaller_batch_after_oom(batch_size: int) -> int | None:
    """Transcription out of GPU memory: half the batch; None at one window a batch (the CPU for good then)."""
    return max(1, batch_size // 2) if batch_size > 1 else None


def on_cpu_after_oom(device: str, stage: str, run: Callable[[str], T], release_gpu: Callable[[], None]) -> tuple[T, str]:
    """Run a stage on `device`; on CUDA out of memory drop its GPU models (`release_gpu`), free the cache, use the CPU.

    Alignment runs one segment at a time and diarization as pyannote batches it, so for them the next step is the
    CPU, for this file only: the next file tries the GPU again. Returns the result and a note ("" on the GPU).
    """
    try:
        return run(device), ""
    except RuntimeError as exc:
        if not is_out_of_memory(exc) or device != "cuda":
            raise
    release_gpu()
    free_cuda_cache()
    log.warning("CUDA out of memory: this stage runs on the CPU for this file", stage=stage)
    return run("cpu"), ON_CPU_AFTER_OOM
