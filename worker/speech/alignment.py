"""Word timings for a decoded file: wav2vec2 in pieces where a model exists, else whisper's cross-attention; says which."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from fleet.job.identity import TranscriptionSettings
from fleet.process.errors import first_line
from fleet.settings import FleetSettings
from worker.audio.samples import Audio
from worker.speech.device import on_cpu_after_oom
from worker.speech.models import (
    HUB_RECHECK_S,
    TORCHAUDIO_MODELS_URL,
    ModelError,
    host_reachable,
    hub_download_mb,
    hub_offline,
    hub_reachable,
    torchaudio_align_file,
    weights_mb,
)
from worker.speech.results import Aligner, NoAligner, words_of
from worker.speech.word_timing import add_whisper_word_timings

log = structlog.get_logger()
# wav2vec2 aligns the segments of this many seconds of audio per call, so only that much of a file's samples is
# in memory at a time (whisperX's align wants the whole file's samples otherwise).
ALIGN_PIECE_S = 600.0


@dataclass
class AlignModels:
    """wav2vec2 alignment models by (language, model name), the least recently used evicted.

    A language with no model is remembered for HUB_RECHECK_S only: the download is tried again later.
    """

    device: str
    models_dir: Path
    capacity: int
    budget_mb: float = 0.0  # the loaded models' weights together stay below this (0: no bound but `capacity`)
    _cache: OrderedDict[tuple[str, str | None], Aligner | NoAligner] = field(default_factory=OrderedDict)
    _missing_since: dict[tuple[str, str | None], float] = field(default_factory=dict)

    def get(self, language: str, model_name: str | None) -> Aligner | NoAligner:
        """The model for this language, or why it cannot be aligned."""
        key = (language, model_name)
        missing_since = self._missing_since.get(key)
        if key in self._cache and (missing_since is None or time.monotonic() - missing_since < HUB_RECHECK_S):
            self._cache.move_to_end(key)
            return self._cache[key]
        import whisperx

        try:
            cache_only = not hub_reachable()
            self._refuse_unreachable_torchaudio(language, model_name)
            if not cache_only:
                self._refuse_download_over_budget(language, model_name)
            loaded: Aligner | NoAligner = Aligner(*whisperx.load_align_model(
                language, self.device, model_name=model_name, model_dir=str(self.models_dir), model_cache_only=cache_only
            ))
            self._missing_since.pop(key, None)
            log.info("alignment model loaded", language=language, model=model_name or "whisperX default")
        except Exception as exc:  # noqa: BLE001 - whisperX raises ValueError, OSError, URLError ...
            loaded = NoAligner(f"no alignment model for {language!r}: {first_line(exc)}")
            log.warning("no wav2vec2 alignment model: word timings come from whisper itself", language=language,
                        reason=loaded.reason)  # fmt: skip
            self._missing_since[key] = time.monotonic()
        self._cache[key] = loaded
        self._evict()
        return loaded

    def _evict(self) -> None:
        """Least recently used first, until both the count and the memory budget hold; the newest always stays."""
        while len(self._cache) > 1 and (len(self._cache) > self.capacity or self._over_budget()):
            evicted, _ = self._cache.popitem(last=False)
            log.info("alignment model unloaded to stay within its budget", language=evicted[0], budget_mb=self.budget_mb)

    def _over_budget(self) -> bool:
        return bool(self.budget_mb) and self.loaded_mb() > self.budget_mb

    def loaded_mb(self) -> float:
        """Memory held by the cached models' weights."""
        return sum(weights_mb(entry.model) for entry in self._cache.values() if isinstance(entry, Aligner))

    def _refuse_download_over_budget(self, language: str, model_name: str | None) -> None:
        """A hub model bigger than the whole alignment budget is not fetched (a misdetected "nn" pulls 4 GB).

        Asked from the hub's file list before downloading; a model already in the cache, or whose size the
        hub does not tell, is left to whisperX. The reason ends up in the JSON's `alignment`.
        """
        from whisperx.alignment import DEFAULT_ALIGN_MODELS_HF

        repo = model_name or DEFAULT_ALIGN_MODELS_HF.get(language)
        if not self.budget_mb or repo is None or torchaudio_align_file(language, model_name) is not None:
            return
        size_mb = hub_download_mb(repo, self.models_dir)
        if size_mb is not None and size_mb > self.budget_mb:
            raise OSError(f"{repo} is {size_mb:.0f} MB, more than this worker's alignment budget "
                          f"(FLEET_ALIGN_CACHE_MB={self.budget_mb:.0f}): not downloaded")  # fmt: skip

    def _refuse_unreachable_torchaudio(self, language: str, model_name: str | None) -> None:
        """whisperX downloads torchaudio models with no timeout and no cache-only mode: ask first, quickly."""
        file_name = torchaudio_align_file(language, model_name)
        if file_name is None or (self.models_dir / file_name).exists():
            return
        if hub_offline() or not host_reachable(TORCHAUDIO_MODELS_URL):
            raise OSError(f"{file_name} is not in {self.models_dir} and {TORCHAUDIO_MODELS_URL} cannot be reached")


class Alignment:
    """The alignment stage of one worker: wav2vec2 models per language on its device, and the fallbacks it takes."""

    def __init__(self, settings: FleetSettings, device: str, torch_device: Callable[[str], str],
                 on_fallback: Callable[[str, str], None]) -> None:  # fmt: skip
        self.settings = settings
        self.torch_device = torch_device  # "cuda" -> "cuda:1": this worker's GPU
        self.on_fallback = on_fallback  # (what, how): what this process had to do without, for its worker record
        self.move_to(device)
        self._cpu_cache: AlignModels | None = None
        self.align_fn: Callable[..., dict[str, Any]] | None = None  # whisperx.align, imported on first use

    def move_to(self, device: str) -> None:
        """Align on `device` from now on, with an empty model cache there."""
        self.device = device
        self.aligners = self._cache(device)

    def _cache(self, device: str) -> AlignModels:
        """An empty alignment cache for `device`, bounded as the settings say."""
        return AlignModels(self.torch_device(device), self.settings.models_dir, self.settings.align_cache_size,
                           self.settings.align_cache_mb)  # fmt: skip

    def align(self, result: dict[str, Any], audio: Audio, language: str, transcription: TranscriptionSettings,
              whisper_model: Any, progress: Callable[[float], None] | None = None) -> str:  # fmt: skip
        """Word timings with wav2vec2; without a model for the language, from whisper itself, and say which."""
        if not result["segments"]:
            return "nothing to align"
        loaded = self.aligners.get(language, transcription.align_model)
        if isinstance(loaded, NoAligner):
            return self.whisper_word_timings(result, audio, language, transcription.task, loaded.reason, whisper_model)

        def align_on(device: str) -> list[dict[str, Any]]:
            return self._align_on(device, result["segments"], audio, language, transcription, progress)

        try:
            aligned_segments, note = on_cpu_after_oom(self.device, "align", align_on, self.drop_gpu_models)
        except LookupError as exc:  # NLTK sentence data missing
            return self.whisper_word_timings(result, audio, language, transcription.task, first_line(exc), whisper_model)
        if note:
            self.on_fallback("align device", "CPU after CUDA out of memory (last file)")
        result["segments"] = aligned_segments
        result["word_segments"] = words_of(aligned_segments)
        outcome = f"aligned ({transcription.align_model or 'whisperX default for ' + language})"
        return f"{outcome}, {note}" if note else outcome

    def drop_gpu_models(self) -> None:
        self.aligners = self._cache(self.device)  # the cached GPU models go with the memory they hold

    def drop_models(self) -> None:
        """Every cached model, on the device and on the CPU: loaded again as languages ask for them."""
        self.drop_gpu_models()
        self._cpu_cache = None

    def _align_on(
        self, device: str, segments: list[dict[str, Any]], audio: Audio, language: str, transcription: TranscriptionSettings,
        progress: Callable[[float], None] | None,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """wav2vec2 alignment on `device`, ALIGN_PIECE_S of audio per call."""
        aligners = self.aligners if device == self.device else self._cpu_aligners()
        loaded = aligners.get(language, transcription.align_model)
        if isinstance(loaded, NoAligner):
            raise ModelError(f"alignment model for {language!r} not loadable on {device}: {loaded.reason}")
        if self.align_fn is None:
            import whisperx

            self.align_fn = whisperx.align
        pieces = align_pieces(segments)
        aligned_segments: list[dict[str, Any]] = []
        for done, piece in enumerate(pieces):
            offset = piece[0]["start"]
            samples = audio.read(offset, piece[-1]["end"])
            shifted = [{**segment, "start": segment["start"] - offset, "end": segment["end"] - offset} for segment in piece]

            def piece_progress(percent: float, done: int = done) -> None:
                if progress is not None:
                    progress((done + percent / 100) * 100 / len(pieces))

            aligned = self.align_fn(shifted, loaded.model, loaded.metadata, samples, self.torch_device(device),
                                    progress_callback=piece_progress)  # fmt: skip
            aligned_segments.extend(shift_times(segment, offset) for segment in aligned["segments"])
        return aligned_segments

    def _cpu_aligners(self) -> AlignModels:
        """A CPU alignment cache for stages moved off the GPU (kept: the next out-of-memory file needs it again)."""
        if self._cpu_cache is None:
            self._cpu_cache = self._cache("cpu")
        return self._cpu_cache

    def whisper_word_timings(self, result: dict[str, Any], audio: Audio, language: str, task: str, reason: str,
                             whisper_model: Any) -> str:  # fmt: skip
        """Word timings from whisper after the fact (wav2vec2 was there but could not run): one more encoder pass."""
        try:
            result["word_segments"] = add_whisper_word_timings(whisper_model, result["segments"], audio, language, task)
        except Exception as exc:  # noqa: BLE001 - timing words must never cost the transcript itself
            return self.whisper_words_failed(result, language, reason, first_line(exc))
        return self.whisper_words_done(result, language, reason)

    def whisper_words_done(self, result: dict[str, Any], language: str, reason: str) -> str:
        """Word timings came from whisper's cross-attention: say so in the JSON and the worker record."""
        result["word_segments"] = words_of(result["segments"])
        return self._fallback(language, f"whisper cross-attention ({reason})")

    def whisper_words_failed(self, result: dict[str, Any], language: str, reason: str, failure: str) -> str:
        for segment in result["segments"]:
            segment.pop("words", None)
        log.warning("whisper word timings failed, timestamps stay per segment", error=failure)
        return self._fallback(language, f"unaligned: {reason}; whisper word timings failed: {failure}")

    def _fallback(self, language: str, outcome: str) -> str:
        self.on_fallback(f"word timings ({language})", outcome)
        return outcome


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
