"""The stages for one decoded file, in order: decode by windows (language, text, word timings), align, diarize."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import structlog

from fleet.job.identity import TranscriptionSettings
from fleet.settings import FleetSettings
from worker.audio.samples import Audio, as_audio
from worker.speech.alignment import Alignment
from worker.speech.asr import load_asr
from worker.speech.device import (
    emptiest_gpu,
    free_cuda_cache,
    is_out_of_memory,
    resolve_device,
    smaller_batch_after_oom,
    torch_device,
)
from worker.speech.diarization import Diarization, describe
from worker.speech.models import ModelError, resolve_asr_model
from worker.speech.results import GIVEN, WORDS_DONE, Decoded, LanguageSource, NoAligner
from worker.speech.speaker_labels import strip_speakers
from worker.speech.window_decoder import WindowDecoder

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
    language_candidates: list[tuple[str, float]] = field(default_factory=list)
    language_source: LanguageSource = GIVEN
    loops: dict[str, int] = field(default_factory=dict)
    speakers: dict[str, Any] | None = None  # backend, count and labels when speakers were asked for


class Pipeline:
    """Resident models and the stages that use them; one instance per worker process."""

    def __init__(self, settings: FleetSettings, threads: int) -> None:
        self.load_s: dict[str, float] = {}  # seconds per part of the start-up, for the `worker ready` line
        self.settings = settings
        self.threads = threads
        self.device = resolve_device(settings.whisper_device)
        # Every replica sees every GPU: each takes the one with the most free memory when it starts.
        self.device_index = emptiest_gpu() if self.device == "cuda" else 0
        self.batch_size = settings.whisper_batch_size
        self.model_name = settings.whisper_model
        self.model_path = resolve_asr_model(settings.whisper_model, settings.models_dir)
        # What this process had to do without (shown in its worker record); replaced, never mutated,
        # so the loop thread can read it while the job thread works.
        self.fallbacks: dict[str, str] = {}
        self.alignment = Alignment(settings, self.device, self.torch_device, self._record_fallback)
        self.diarization = Diarization(settings, threads, self.torch_device, self._record_fallback,
                                       self.alignment.drop_gpu_models)  # fmt: skip
        self.asr = self._load_asr(self.device)
        self.decoder = WindowDecoder(self.asr)
        # Loaded and warmed at start when every job asks for speakers; else on the first job that does (a folder's).
        if settings.whisper_diarize:
            started = time.perf_counter()
            self.diarization.diarizer = self.diarization.load(self.device)
            self.load_s["speakers warm-up"] = time.perf_counter() - started

    @property
    def loaded(self) -> bool:
        """Whether the whisper model is on its device (False after an idle unload)."""
        return bool(self.asr.model.model.model_is_loaded)

    def unload(self) -> None:
        """Free the device's memory for others while idle: whisper's weights, the alignment models, the diarizer.

        CTranslate2's own unload: on a GPU the weights wait in CPU memory (back in about a second), on the CPU they
        are freed and read from disk again. The next run reloads whisper; the others load when a job needs them.
        """
        self.asr.model.model.unload_model(to_cpu=self.device == "cuda")
        self.alignment.drop_models()
        self.diarization.drop_models()
        free_cuda_cache()

    def _load_asr(self, device: str) -> Any:
        return load_asr(self.settings, self.model_path, device, self.device_index, self.threads, self.load_s)

    def _record_fallback(self, what: str, how: str) -> None:
        self.fallbacks = {**self.fallbacks, what: how}

    def torch_device(self, device: str) -> str:
        """torch's name for `device` on this worker's GPU ("cuda:1"), or "cpu"."""
        return torch_device(device, self.device_index)

    def device_in_use(self) -> str:
        """What status shows: the GPU this worker transcribes on, or the CPU it moved to."""
        return self.torch_device(self.device)

    def run(self, audio: np.ndarray | Audio, transcription: TranscriptionSettings, on_stage: Callable[..., None],
            on_language: Callable[[str], None] | None = None) -> Transcript:  # fmt: skip
        """All stages on one decoded file; `on_language` hears the language once it is settled (it may stop the job)."""
        audio = as_audio(audio)
        if transcription.model != self.model_name:
            raise ModelError(f"job wants model {transcription.model!r} but this worker runs {self.model_name!r}")
        if transcription.decoding.vad() != self.settings.decoding.vad():
            raise ModelError(f"job wants VAD {transcription.decoding.vad()} but this worker runs "
                             f"{self.settings.decoding.vad()}")  # fmt: skip
        reload_s: dict[str, float] = {}
        if not self.loaded:  # unloaded while idle (FLEET_UNLOAD_IDLE_S): the job's lease is extended meanwhile
            on_stage("load models")
            started = time.perf_counter()
            self.asr.model.model.load_model()
            reload_s = {"load models": round(time.perf_counter() - started, 3)}
        no_wav2vec2: dict[str, str] = {}  # language -> why it has no wav2vec2 model, asked once the language is known

        def whisper_words_wanted(language: str) -> bool:  # asked once, when the first windows settle the language
            if on_language is not None:
                on_language(language)
            if not transcription.align:
                return False
            loaded = self.alignment.aligners.get(language, transcription.align_model)
            if isinstance(loaded, NoAligner):
                no_wav2vec2[language] = loaded.reason
            return isinstance(loaded, NoAligner)

        on_stage("transcribe")
        decoded = self._transcribe(audio, transcription, whisper_words_wanted, lambda p: on_stage("transcribe", p))
        timings = {**reload_s, **{stage: value for stage, value in decoded.stage_s.items() if value}}
        result: dict[str, Any] = {"segments": decoded.segments, "language": decoded.language}
        language = decoded.language
        alignment = "off"
        if transcription.align and not decoded.segments:
            alignment = "nothing to align"
        elif decoded.word_timings == WORDS_DONE:
            alignment = self.alignment.whisper_words_done(result, language, no_wav2vec2[language])
        elif language in no_wav2vec2:
            alignment = self.alignment.whisper_words_failed(result, language, no_wav2vec2[language],
                                                            decoded.word_timings.failure)  # fmt: skip
        elif transcription.align:
            on_stage("align")
            started = time.perf_counter()
            alignment = self.alignment.align(result, audio, language, transcription, self.asr.model,
                                             lambda p: on_stage("align", p))  # fmt: skip
            timings["align"] = round(time.perf_counter() - started, 3)
        speakers = None
        if transcription.diarize:
            on_stage("diarize")
            started = time.perf_counter()
            speakers = self.diarization.label(result, audio, transcription, self.device)
            timings["diarize"] = round(time.perf_counter() - started, 3)
        guess = decoded.guess
        probability = guess.probability_of(language) if guess else None  # the chosen language's own share of the vote
        return Transcript(result, language, probability, alignment, describe(speakers), timings,
                          guess.candidates if guess else [], decoded.language_source, decoded.loops, speakers)  # fmt: skip

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
                smaller = smaller_batch_after_oom(self.batch_size)
                if smaller is not None:
                    self.batch_size = smaller
                    log.warning("CUDA out of memory, retrying with a smaller batch", batch_size=self.batch_size)
                    continue
                log.error("CUDA out of memory at batch size 1: continuing on the CPU for the rest of this process")
                self.device = "cpu"
                self.asr = self._load_asr("cpu")
                self.decoder = WindowDecoder(self.asr)
                self.alignment.move_to("cpu")

    def relabel(self, result: dict[str, Any], audio: Audio | None, transcription: TranscriptionSettings) -> Transcript:
        """New speaker labels (or none: no audio needed) on the words of a transcript on disk: no speech model runs."""
        started = time.perf_counter()
        speakers = None
        if transcription.diarize and audio is not None:
            speakers = self.diarization.label(result, audio, transcription, self.device)
        if speakers is None:
            strip_speakers(result)
        timings = {"diarize": round(time.perf_counter() - started, 3)} if speakers else {}
        return Transcript(result, result.get("language", ""), None, "", describe(speakers), timings, speakers=speakers)
