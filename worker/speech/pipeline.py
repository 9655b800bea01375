"""The stages for one decoded file: decode by windows (language, text, whisper word timings), wav2vec2 align, diarize."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import structlog

from fleet.job_identity import TranscriptionSettings
from fleet.settings import FleetSettings
from worker.audio.samples import Audio, as_audio
from worker.speech.models import AlignModels, ModelError, resolve_asr_model
from worker.speech.results import WORDS_DONE, Decoded, NoAligner
from worker.speech.window_decoder import WindowDecoder
from worker.speech.word_timing import add_whisper_word_timings

log = structlog.get_logger()
# wav2vec2 aligns the segments of this many seconds of audio per call, so only that much of a file's samples is
# in memory at a time (whisperX's align wants the whole file's samples otherwise).
ALIGN_PIECE_S = 600.0


@dataclass
class Transcript:
    """What the stages produced, plus how (for the commit record)."""

    result: dict[str, Any]
    language: str
    language_probability: float | None
    alignment: str
    diarization: str
    stage_s: dict[str, float] = field(default_factory=dict)
    language_candidates: list[tuple[str, float]] = field(default_factory=list)
    language_source: str = "given"
    loops: dict[str, int] = field(default_factory=dict)


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
        self.decoder = WindowDecoder(self.asr)
        self.aligners = self._aligners(self.device)
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
                vad_method=self.settings.decoding.vad_method,
                vad_options={key: value for key, value in self.settings.decoding.vad().items() if key != "vad_method"},
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

    def run(self, audio: np.ndarray | Audio, transcription: TranscriptionSettings, on_stage: Callable[..., None]) -> Transcript:
        """All stages on one decoded file."""
        audio = as_audio(audio)
        if transcription.model != self.model_name:
            raise ModelError(f"job wants model {transcription.model!r} but this worker runs {self.model_name!r}")
        if transcription.decoding.vad() != self.settings.decoding.vad():
            raise ModelError(f"job wants VAD {transcription.decoding.vad()} but this worker runs "
                             f"{self.settings.decoding.vad()}")  # fmt: skip
        no_wav2vec2: dict[str, str] = {}  # language -> why it has no wav2vec2 model, asked once the language is known

        def whisper_words_wanted(language: str) -> bool:
            if not transcription.align:
                return False
            loaded = self.aligners.get(language, transcription.align_model)
            if isinstance(loaded, NoAligner):
                no_wav2vec2[language] = loaded.reason
            return isinstance(loaded, NoAligner)

        on_stage("transcribe")
        decoded = self._transcribe(audio, transcription, whisper_words_wanted, lambda p: on_stage("transcribe", p))
        timings = {stage: value for stage, value in decoded.stage_s.items() if value}
        result: dict[str, Any] = {"segments": decoded.segments, "language": decoded.language}
        language = decoded.language
        alignment = "off"
        if transcription.align and not decoded.segments:
            alignment = "nothing to align"
        elif decoded.word_timings == WORDS_DONE:
            alignment = self._whisper_words_done(result, language, no_wav2vec2[language])
        elif language in no_wav2vec2:
            alignment = self._whisper_words_failed(result, language, no_wav2vec2[language], decoded.word_timings.failure)
        elif transcription.align:
            on_stage("align")
            started = time.perf_counter()
            alignment = self._align(result, audio, language, transcription, lambda p: on_stage("align", p))
            timings["align"] = round(time.perf_counter() - started, 3)
        diarization = "off"
        if transcription.diarize:
            on_stage("diarize")
            started = time.perf_counter()
            diarization = self._diarize(result, audio, transcription)
            timings["diarize"] = round(time.perf_counter() - started, 3)
        guess = decoded.guess
        return Transcript(result, language, guess.probability if guess else None, alignment, diarization, timings,
                          guess.candidates if guess else [], decoded.language_source, decoded.loops)  # fmt: skip

    def _transcribe(
        self, audio: Audio, transcription: TranscriptionSettings, whisper_words_wanted: Callable[[str], bool],
        progress: Callable[[float], None] | None = None,
    ) -> Decoded:  # fmt: skip
        """VAD + batched decoding; on CUDA OOM halve the batch, then move to the CPU for good."""
        while True:
            try:
                return self.decoder.decode(
                    audio, language=transcription.language, task=transcription.task, options=transcription.decoding,
                    batch_size=self.batch_size, want_word_timings=whisper_words_wanted, progress=progress,
                )  # fmt: skip
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
                self.decoder = WindowDecoder(self.asr)
                self.aligners = self._aligners("cpu")

    def _aligners(self, device: str) -> AlignModels:
        """An empty alignment cache for `device`, bounded as the settings say."""
        return AlignModels(device, self.settings.models_dir, self.settings.align_cache_size, self.settings.align_cache_mb)

    def _align(
        self, result: dict[str, Any], audio: Audio, language: str, transcription: TranscriptionSettings,
        progress: Callable[[float], None] | None = None,
    ) -> str:  # fmt: skip
        """Word timings with wav2vec2; without a model for the language, from whisper itself, and say which."""
        if not result["segments"]:
            return "nothing to align"
        loaded = self.aligners.get(language, transcription.align_model)
        if isinstance(loaded, NoAligner):
            return self._whisper_word_timings(result, audio, language, transcription.task, loaded.reason)
        pieces = align_pieces(result["segments"])
        aligned_segments: list[dict[str, Any]] = []
        for done, piece in enumerate(pieces):
            offset = piece[0]["start"]
            samples = audio.read(offset, piece[-1]["end"])
            shifted = [{**segment, "start": segment["start"] - offset, "end": segment["end"] - offset} for segment in piece]

            def piece_progress(percent: float, done: int = done) -> None:
                if progress is not None:
                    progress((done + percent / 100) * 100 / len(pieces))

            try:
                aligned = self._whisperx.align(shifted, loaded.model, loaded.metadata, samples, self.device,
                                               progress_callback=piece_progress)  # fmt: skip
            except LookupError as exc:  # NLTK sentence data missing
                return self._whisper_word_timings(result, audio, language, transcription.task,
                                                  str(exc).strip().splitlines()[0][:200])  # fmt: skip
            aligned_segments.extend(shift_times(segment, offset) for segment in aligned["segments"])
        result["segments"] = aligned_segments
        result["word_segments"] = [word for segment in aligned_segments for word in segment.get("words", [])]
        return f"aligned ({transcription.align_model or 'whisperX default for ' + language})"

    def _whisper_word_timings(self, result: dict[str, Any], audio: Audio, language: str, task: str, reason: str) -> str:
        """Word timings from whisper after the fact (wav2vec2 was there but could not run): one more encoder pass."""
        try:
            result["word_segments"] = add_whisper_word_timings(self.asr.model, result["segments"], audio, language, task)
        except Exception as exc:  # noqa: BLE001 - timing words must never cost the transcript itself
            failure = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            return self._whisper_words_failed(result, language, reason, failure)
        return self._whisper_words_done(result, language, reason)

    def _whisper_words_done(self, result: dict[str, Any], language: str, reason: str) -> str:
        """Word timings came from whisper's cross-attention: say so in the JSON and the worker record."""
        result["word_segments"] = [word for segment in result["segments"] for word in segment.get("words", [])]
        return self._fallback(language, f"whisper cross-attention ({reason})")

    def _whisper_words_failed(self, result: dict[str, Any], language: str, reason: str, failure: str) -> str:
        for segment in result["segments"]:
            segment.pop("words", None)
        log.warning("whisper word timings failed, timestamps stay per segment", error=failure)
        return self._fallback(language, f"unaligned: {reason}; whisper word timings failed: {failure}")

    def _fallback(self, language: str, outcome: str) -> str:
        self.fallbacks = {**self.fallbacks, f"word timings ({language})": outcome}
        return outcome

    def _diarize(self, result: dict[str, Any], audio: Audio, transcription: TranscriptionSettings) -> str:
        if self.diarizer is None:
            raise ModelError("job asks for speakers but this worker has no diarization pipeline (WHISPER_DIARIZE)")
        # pyannote clusters speakers over the whole file: the one stage that holds all of its samples at once.
        segments = self.diarizer(audio.read(), min_speakers=transcription.min_speakers, max_speakers=transcription.max_speakers)
        result.update(self._whisperx.assign_word_speakers(segments, result))
        return "pyannote"


def align_pieces(segments: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Consecutive segments grouped so that each group spans at most ALIGN_PIECE_S (a longer segment alone)."""
    pieces: list[list[dict[str, Any]]] = []
    for segment in segments:
        if pieces and segment["end"] - pieces[-1][0]["start"] <= ALIGN_PIECE_S:
            pieces[-1].append(segment)
        else:
            pieces.append([segment])
    return pieces


def shift_times(segment: dict[str, Any], offset: float) -> dict[str, Any]:
    """An aligned segment (and its words and characters) moved from its piece's time to the file's."""

    def moved(item: dict[str, Any]) -> dict[str, Any]:
        return {key: round(value + offset, 3) if key in ("start", "end") and value is not None else value
                for key, value in item.items()}  # fmt: skip

    shifted = moved(segment)
    for key in ("words", "chars"):
        if segment.get(key):
            shifted[key] = [moved(item) for item in segment[key]]
    return shifted
