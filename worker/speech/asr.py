"""The whisper model in whisperX's pipeline, with the VAD beside it: loaded once per worker, on its device."""

from __future__ import annotations

import contextlib
import io
import time
from typing import Any

import structlog

from fleet.settings import FleetSettings
from worker.speech.device import compute_type, torch_device
from worker.speech.models import ModelError
from worker.speech.vad import load_vad

log = structlog.get_logger()


def load_asr(settings: FleetSettings, model_path: str, device: str, device_index: int, threads: int,
             load_s: dict[str, float]) -> Any:  # fmt: skip
    """whisperX's FasterWhisperPipeline for `model_path` on `device`; the seconds each part took go into `load_s`.

    No language and no task: each job brings its own (a folder's language, a translation), and the decoding
    builds its tokenizer from the job, so one loaded model serves every folder.
    """
    import whisperx

    vad_options = {key: value for key, value in settings.decoding.vad().items() if key != "vad_method"}
    kind = compute_type(settings.whisper_compute_type, device)
    try:
        vad = load_vad(settings.decoding.vad_method, vad_options, torch_device(device, device_index), load_s)
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # whisperX prints that a VAD was handed to it
            asr = whisperx.load_model(
                model_path,
                device,
                device_index=device_index,
                compute_type=kind,
                local_files_only=True,
                threads=threads,
                download_root=str(settings.models_dir),
                vad_model=vad,
                vad_options=vad_options,  # still read: whisperX keeps them as the pipeline's VAD parameters
            )
    except Exception as exc:  # noqa: BLE001 - CTranslate2 and faster-whisper raise many kinds
        raise ModelError(f"cannot load whisper model {settings.whisper_model!r} from {model_path}: {exc}") from exc
    load_s["whisper model"] = time.perf_counter() - started
    log.info(
        "whisper model loaded", model=settings.whisper_model, path=model_path, device=device, compute_type=kind,
        threads=threads, load_s=round(load_s["whisper model"], 2),
    )  # fmt: skip
    return asr
