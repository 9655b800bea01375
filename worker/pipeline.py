"""The whisperX stages for one decoded file: transcribe (VAD + batches), align, diarize."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import structlog

from fleet.settings import FleetSettings, TranscriptionSettings
from worker.encoder import encode_window
from worker.models import AlignModels, ModelError, resolve_asr_model
from worker.word_timing import add_whisper_word_timings

log = structlog.get_logger()


@dataclass
class Transcript:
    """What the stages produced, plus how (for the commit record)."""

    result: dict[str, Any]
    language: str
    language_probability: float | None
    alignment: str
    diarization: str
    stage_s: dict[str, float] = field(default_factory=dict)


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA OOM from torch or from CTranslate2 (a RuntimeError with that text)."""
    return "out of memory" in str(exc).lower()


class Pipeline:
    """Resident models and the stages that use them; one instance per worker process."""

    def __init__(self, settings: FleetSettings, threads: int) -> None:
        import torch
        import whisperx

        self.settings = settings
        self.threads = threads
        self.device = settings.whisper_device
        if self.device == "auto":
            self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.batch_size = settings.whisper_batch_size
        self.model_name = settings.whisper_model
        self.model_path = resolve_asr_model(settings.whisper_model, settings.models_dir)
        self._whisperx = whisperx
        self.asr = self._load_asr(self.device)
        self.multilingual = bool(self.asr.model.model.is_multilingual)
        self.aligners = AlignModels(self.device, settings.models_dir, settings.align_cache_size)
        self.diarizer = self._load_diarizer() if settings.whisper_diarize else None
        # What this process had to do without (shown in its worker record); replaced, never mutated,
        # so the loop thread can read it while the job thread works.
        self.fallbacks: dict[str, str] = {}

    def _compute_type(self, device: str) -> str:
        configured = self.settings.whisper_compute_type
        if configured != "auto":
            return configured
        return "float16" if device == "cuda" else "int8"

    def _load_asr(self, device: str) -> Any:
        started = time.perf_counter()
        try:
            asr = self._whisperx.load_model(
                self.model_path,
                device,
                compute_type=self._compute_type(device),
                language=self.settings.whisper_language,
                task=self.settings.whisper_task,
                local_files_only=True,
                threads=self.threads,
                download_root=str(self.settings.models_dir),
            )
        except Exception as exc:  # noqa: BLE001 - CTranslate2 and faster-whisper raise many kinds
            raise ModelError(f"cannot load whisper model {self.model_name!r} from {self.model_path}: {exc}") from exc
        log.info(
            "whisper model loaded", model=self.model_name, path=self.model_path, device=device,
            compute_type=self._compute_type(device), threads=self.threads, load_s=round(time.perf_counter() - started, 2),
        )  # fmt: skip
        return asr

    def _load_diarizer(self) -> Any:
        from whisperx.diarize import DiarizationPipeline

        if not self.settings.hf_token:
            raise ModelError("WHISPER_DIARIZE=true needs HF_TOKEN (a Hugging Face token with access to pyannote)")
        try:
            return DiarizationPipeline(token=self.settings.hf_token, device=self.device, cache_dir=str(self.settings.models_dir))
        except Exception as exc:  # noqa: BLE001 - hub, auth and pyannote errors
            raise ModelError(f"cannot load the diarization pipeline: {str(exc).splitlines()[0][:300]}") from exc

    def run(self, audio: np.ndarray, job: TranscriptionSettings, on_stage: Callable[..., None]) -> Transcript:
        """All stages on one decoded file."""
        if job.model != self.model_name:
            raise ModelError(f"job wants model {job.model!r} but this worker runs {self.model_name!r}")
        timings: dict[str, float] = {}

        def timed(stage: str, fn: Callable[[], Any]) -> Any:
            on_stage(stage)
            started = time.perf_counter()
            value = fn()
            timings[stage] = round(time.perf_counter() - started, 3)
            return value

        language, probability = timed("language", lambda: self._language(audio, job))
        result = timed("transcribe", lambda: self._transcribe(audio, language, job.task, lambda p: on_stage("transcribe", p)))
        alignment = "off"
        if job.align:
            alignment = timed(
                "align", lambda: self._align(result, audio, language, job, lambda p: on_stage("align", p))
            )
        diarization = "off"
        if job.diarize:
            diarization = timed("diarize", lambda: self._diarize(result, audio, job))
        return Transcript(result, language, probability, alignment, diarization, timings)

    def _language(self, audio: np.ndarray, job: TranscriptionSettings) -> tuple[str, float | None]:
        """The job's language, or the detected one with its probability (whisperX logs but drops it)."""
        if job.language:
            return job.language, None
        if not self.multilingual:
            return "en", None
        model = self.asr.model
        token, probability = model.model.detect_language(encode_window(model, audio))[0][0]
        return token[2:-2], round(float(probability), 4)

    def _transcribe(
        self, audio: np.ndarray, language: str, task: str, progress: Callable[[float], None] | None = None
    ) -> dict[str, Any]:
        """VAD + batched decoding; on CUDA OOM halve the batch, then move to the CPU for good."""
        while True:
            try:
                return self.asr.transcribe(
                    audio, batch_size=self.batch_size, language=language, task=task, progress_callback=progress
                )
            except RuntimeError as exc:
                if not is_out_of_memory(exc) or self.device != "cuda":
                    raise
                if self.batch_size > 1:
                    self.batch_size = max(1, self.batch_size // 2)
                    log.warning("CUDA out of memory, retrying with a smaller batch", batch_size=self.batch_size)
                    continue
                log.error("CUDA out of memory at batch size 1: continuing on the CPU for the rest of this process")
                self.device = "cpu"
                self.asr = self._load_asr("cpu")
                self.aligners = AlignModels("cpu", self.settings.models_dir, self.settings.align_cache_size)

    def _align(
        self, result: dict[str, Any], audio: np.ndarray, language: str, job: TranscriptionSettings,
        progress: Callable[[float], None] | None = None,
    ) -> str:  # fmt: skip
        """Word timings with wav2vec2; without a model for the language, from whisper itself, and say which."""
        if not result["segments"]:
            return "nothing to align"
        loaded = self.aligners.get(language, job.align_model)
        if isinstance(loaded, str):
            return self._whisper_word_timings(result, audio, language, job.task, loaded)
        model, metadata = loaded
        try:
            aligned = self._whisperx.align(
                result["segments"], model, metadata, audio, self.device, progress_callback=progress
            )
        except LookupError as exc:  # NLTK sentence data missing
            return self._whisper_word_timings(result, audio, language, job.task, str(exc).strip().splitlines()[0][:200])
        result["segments"] = aligned["segments"]
        result["word_segments"] = aligned.get("word_segments", [])
        return f"aligned ({job.align_model or 'whisperX default for ' + language})"

    def _whisper_word_timings(self, result: dict[str, Any], audio: np.ndarray, language: str, task: str, reason: str) -> str:
        """The fallback alignment: whisper's cross-attention, coarser than wav2vec2 but words still get times."""
        try:
            result["word_segments"] = add_whisper_word_timings(self.asr.model, result["segments"], audio, language, task)
        except Exception as exc:  # noqa: BLE001 - timing words must never cost the transcript itself
            for segment in result["segments"]:
                segment.pop("words", None)
            failure = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            log.warning("whisper word timings failed, timestamps stay per segment", error=failure)
            outcome = f"unaligned: {reason}; whisper word timings failed: {failure}"
        else:
            outcome = f"whisper cross-attention ({reason})"
        self.fallbacks = {**self.fallbacks, f"word timings ({language})": outcome}
        return outcome

    def _diarize(self, result: dict[str, Any], audio: np.ndarray, job: TranscriptionSettings) -> str:
        if self.diarizer is None:
            raise ModelError("job asks for speakers but this worker has no diarization pipeline (WHISPER_DIARIZE)")
        segments = self.diarizer(audio, min_speakers=job.min_speakers, max_speakers=job.max_speakers)
        result.update(self._whisperx.assign_word_speakers(segments, result))
        return "pyannote"
