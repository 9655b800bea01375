"""The speech stages' fallbacks: CUDA out of memory (smaller batch, the CPU), word timings that fail."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from fleet.job.identity import TranscriptionSettings
from fleet.settings import FleetSettings
from worker.speech.alignment import Alignment
from worker.speech.device import is_out_of_memory
from worker.speech.diarization import Diarization
from worker.speech.pipeline import Pipeline


class OomDecoder:
    """Raises CUDA OOM until the batch size is below `fail_below`."""

    def __init__(self, fail_below: int) -> None:
        self.fail_below = fail_below
        self.batches: list[int] = []

    def decode(self, audio, *, language, task, options, batch_size, want_word_timings, progress=None):
        self.batches.append(batch_size)
        if batch_size >= self.fail_below:
            raise RuntimeError("CUDA failed with error out of memory")
        return "decoded"


def bare_pipeline(asr=None, decoder=None) -> Pipeline:
    pipeline = Pipeline.__new__(Pipeline)  # no model load: this tests the retry policy alone
    pipeline.settings, pipeline.device, pipeline.batch_size, pipeline.asr = FleetSettings(), "cuda", 8, asr
    pipeline.decoder = decoder
    pipeline.fallbacks = {}
    pipeline.device_index = 0
    pipeline.alignment = Alignment(pipeline.settings, "cuda", pipeline.torch_device, pipeline._record_fallback)
    pipeline.diarization = Diarization(pipeline.settings, 1, pipeline.torch_device, pipeline._record_fallback,
                                       pipeline.alignment.drop_gpu_models)  # fmt: skip
    return pipeline


class Aligners:
    """A stand-in alignment cache for one device: hands out a model named after it."""

    def __init__(self, device: str) -> None:
        self.device = device

    def get(self, language, model_name):
        return SimpleNamespace(model=f"wav2vec2 on {self.device}", metadata={})


def test_alignment_out_of_gpu_memory_runs_on_the_cpu_for_that_file_and_frees_the_gpu_cache(monkeypatch):
    from worker.audio.samples import ArrayAudio

    pipeline = bare_pipeline()
    pipeline.alignment.aligners = gpu_cache = Aligners("cuda:0")
    pipeline.alignment._cache = lambda device: Aligners(pipeline.torch_device(device))
    freed = []
    monkeypatch.setattr("worker.speech.device.free_cuda_cache", lambda: freed.append(True))

    def align(segments, model, metadata, audio, device, progress_callback=None):
        if device != "cpu":
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return {"segments": [{**s, "words": [{"word": "hi", "start": s["start"], "end": s["end"]}]} for s in segments]}

    pipeline.alignment.align_fn = align
    result = {"segments": [{"start": 700.0, "end": 701.0, "text": " hi"}], "language": "en"}
    audio = ArrayAudio(np.zeros(16000 * 702, dtype=np.float32))
    alignment = pipeline.alignment.align(result, audio, "en", TranscriptionSettings(), whisper_model=None)
    # The file is aligned on the CPU and says so; the GPU's alignment models were dropped with their memory
    assert alignment.endswith("on the CPU after CUDA out of memory") and freed == [True]
    assert pipeline.alignment.aligners is not gpu_cache and pipeline.device == "cuda"  # the next file tries the GPU again
    assert result["word_segments"] == [{"word": "hi", "start": 700.0, "end": 701.0}]  # in file time
    assert pipeline.fallbacks == {"align device": "CPU after CUDA out of memory (last file)"}
    assert pipeline.device_in_use() == "cuda:0"


def test_diarization_out_of_gpu_memory_runs_on_the_cpu(monkeypatch):
    from worker.audio.samples import ArrayAudio
    from worker.speech.speakers import SpeakerTurns

    pipeline = bare_pipeline()
    pipeline.alignment.aligners = gpu_cache = Aligners("cuda:0")
    pipeline.alignment._cache = lambda device: Aligners(device)
    monkeypatch.setattr("worker.speech.device.free_cuda_cache", lambda: None)

    def gpu_label(samples, low, high):
        raise RuntimeError("CUDA error: out of memory")

    pipeline.diarization.diarizer = SimpleNamespace(name="gpu", label=gpu_label)
    turns = SpeakerTurns([(0.0, 1.0, "SPEAKER_00")], "stand-in 1.0")
    pipeline.diarization._on_cpu = SimpleNamespace(name="cpu", label=lambda samples, low, high: turns)
    result: dict = {"segments": [{"start": 0.2, "end": 0.8, "text": " hi", "words": [{"word": "hi", "start": 0.2, "end": 0.8}]}],
                    "language": "en"}
    speakers = pipeline.diarization.label(result, ArrayAudio(np.zeros(160, dtype=np.float32)), TranscriptionSettings(), "cuda")
    assert speakers == {"backend": "stand-in 1.0", "count": 1, "speakers": ["SPEAKER_00"],
                        "device": "on the CPU after CUDA out of memory"}
    assert result["segments"][0]["speaker"] == "SPEAKER_00" and result["word_segments"][0]["speaker"] == "SPEAKER_00"
    # The GPU's alignment models were dropped to make room, and the worker record says what happened
    assert pipeline.alignment.aligners is not gpu_cache
    assert pipeline.fallbacks == {"diarize device": "CPU after CUDA out of memory (last file)"}


def transcribe(pipeline: Pipeline):
    return pipeline._transcribe(None, TranscriptionSettings(language="en"), lambda language: False)


def test_cuda_oom_halves_the_batch_then_succeeds():
    decoder = OomDecoder(fail_below=3)
    pipeline = bare_pipeline(decoder=decoder)
    assert transcribe(pipeline) == "decoded"
    assert decoder.batches == [8, 4, 2] and pipeline.device == "cuda"


def test_cuda_oom_at_batch_one_moves_to_the_cpu_for_good(monkeypatch):
    gpu, cpu = OomDecoder(fail_below=1), OomDecoder(fail_below=99)
    pipeline = bare_pipeline(decoder=gpu)
    pipeline._load_asr = lambda device: f"whisperX on the {device}"
    monkeypatch.setattr("worker.speech.pipeline.WindowDecoder", lambda asr: cpu if asr == "whisperX on the cpu" else None)
    transcribe(pipeline)
    assert gpu.batches == [8, 4, 2, 1] and cpu.batches == [1] and pipeline.device == "cpu"
    assert pipeline.asr == "whisperX on the cpu" and pipeline.decoder is cpu
    assert is_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate"))


def test_a_failing_word_timing_fallback_keeps_the_transcript_and_says_why(monkeypatch):
    def broken_timings(*args):
        raise RuntimeError("ctranslate2 align failed")

    monkeypatch.setattr("worker.speech.alignment.add_whisper_word_timings", broken_timings)
    pipeline = bare_pipeline(asr=SimpleNamespace(model="the faster-whisper model"))
    result = {"segments": [{"start": 0.0, "end": 1.0, "text": " hello", "words": [{"word": "half"}]}], "language": "en"}
    alignment = pipeline.alignment.whisper_word_timings(result, None, "en", "transcribe", "no alignment model for 'en'",
                                                        whisper_model="the faster-whisper model")
    assert alignment == "unaligned: no alignment model for 'en'; whisper word timings failed: ctranslate2 align failed"
    assert result["segments"] == [{"start": 0.0, "end": 1.0, "text": " hello"}]  # no half-timed words left behind
    assert pipeline.fallbacks == {"word timings (en)": alignment}  # what the worker record shows
