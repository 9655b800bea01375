"""Model lookups that must not wait on a network that is not there."""

from __future__ import annotations

import socket
import time

import pytest
import whisperx

from worker.speech import alignment, models
from worker.speech.alignment import AlignModels
from worker.speech.models import HUB_RECHECK_S, host_reachable
from worker.speech.results import NoAligner


@pytest.fixture
def closed_port_url():
    """A local URL whose port refuses connections at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    models._answers.clear()
    yield f"http://127.0.0.1:{port}/models/"
    models._answers.clear()


def test_an_unreachable_host_is_asked_once_then_again_after_the_recheck_time(closed_port_url, monkeypatch):
    calls = []
    real_connect = socket.create_connection
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: calls.append(a) or real_connect(*a, **k))
    assert host_reachable(closed_port_url, now=100.0) is False
    assert host_reachable(closed_port_url, now=100.0 + HUB_RECHECK_S - 1) is False
    assert len(calls) == 1  # the answer was kept
    host_reachable(closed_port_url, now=100.0 + HUB_RECHECK_S + 1)
    assert len(calls) == 2  # a blip does not pin the process to its fallbacks for good


def test_a_torchaudio_alignment_model_that_cannot_be_fetched_is_refused_in_seconds(closed_port_url, monkeypatch, tmp_path):
    # Given no cached wav2vec2 model for English and a download host that does not answer
    monkeypatch.setattr(alignment, "TORCHAUDIO_MODELS_URL", closed_port_url)
    monkeypatch.setattr(alignment, "hub_offline", lambda: False)  # not forbidden: the probe must find out
    monkeypatch.setattr(alignment, "hub_reachable", lambda: False)
    import whisperx.alignment  # noqa: F401 - torchaudio and transformers load before the clock starts: the refusal is timed
    started = time.monotonic()
    # When the worker asks for English word timings
    loaded = AlignModels("cpu", tmp_path, capacity=2).get("en", None)
    # Then it hears why not at once, and whisperX never started its timeout-less download
    assert isinstance(loaded, NoAligner) and loaded.reason.startswith("no alignment model for 'en': wav2vec2_fairseq_base_ls960")
    assert "cannot be reached" in loaded.reason and time.monotonic() - started < 10
    assert not list(tmp_path.iterdir())


def test_the_alignment_cache_is_bounded_by_memory_not_only_by_count(monkeypatch, tmp_path):
    import types

    import torch

    # Given models of 40 MB (en, fr) and 120 MB (nn: a misdetected language that pulls a big model), a 100 MB budget
    sizes = {"en": 40, "fr": 40, "nn": 120}
    fake = types.SimpleNamespace(load_align_model=lambda language, *a, **k: (torch.nn.Linear(sizes[language] * 2**18, 1,
                                                                                             bias=False), {}))  # fmt: skip
    monkeypatch.setattr(whisperx, "load_align_model", fake.load_align_model)  # the rest of whisperX stays real
    monkeypatch.setattr(alignment, "hub_reachable", lambda: False)
    monkeypatch.setattr(AlignModels, "_refuse_unreachable_torchaudio", lambda *args: None)
    cache = AlignModels("cpu", tmp_path, capacity=3, budget_mb=100)
    cache.get("en", None)
    cache.get("fr", None)
    assert round(cache.loaded_mb()) == 80
    # When the big one is needed, the others are unloaded; it alone stays, over the budget, as the newest
    cache.get("nn", None)
    assert round(cache.loaded_mb()) == 120 and list(cache._cache) == [("nn", None)]
    # And the small ones come back in its place
    cache.get("en", None)
    assert list(cache._cache) == [("en", None)] and round(cache.loaded_mb()) == 40


def test_an_alignment_model_bigger_than_the_budget_is_not_downloaded(monkeypatch, tmp_path):
    import types

    from huggingface_hub import HfApi

    # Given the hub reachable, and a language whose default model weighs 1,200 MB on the hub (a 1,000 MB budget)
    loads = []
    fake = types.SimpleNamespace(load_align_model=lambda *args, **kwargs: loads.append(args) or ("model", {}))
    monkeypatch.setattr(whisperx, "load_align_model", fake.load_align_model)  # the rest of whisperX stays real
    monkeypatch.setattr(alignment, "hub_reachable", lambda: True)
    monkeypatch.setattr(AlignModels, "_refuse_unreachable_torchaudio", lambda *args: None)
    files = [types.SimpleNamespace(rfilename="pytorch_model.bin", size=1200 * 2**20),
             types.SimpleNamespace(rfilename="config.json", size=2000)]  # fmt: skip
    monkeypatch.setattr(HfApi, "model_info", lambda self, repo, **kwargs: types.SimpleNamespace(siblings=files))
    # When it is needed
    loaded = AlignModels("cpu", tmp_path, capacity=3, budget_mb=1000).get("nn", None)
    # Then it is not fetched, and the reason says why (the JSON's alignment carries it)
    assert loads == [] and "1200 MB, more than this worker's alignment budget (FLEET_ALIGN_CACHE_MB=1000)" in loaded.reason
    # And a model within the budget is loaded as before
    files[0].size = 300 * 2**20
    assert AlignModels("cpu", tmp_path, capacity=3, budget_mb=1000).get("nn", None).model == "model" and len(loads) == 1


def test_the_whisper_model_is_loaded_for_no_language_so_each_job_decodes_in_its_own(monkeypatch):

    from fleet.settings import FleetSettings
    from worker.speech import asr

    # Given a worker whose default language is German, translating
    calls: list[dict] = []
    monkeypatch.setattr(whisperx, "load_model", lambda *a, **k: calls.append(k) or "asr")
    monkeypatch.setattr(asr, "load_vad", lambda *args: "vad")
    settings = FleetSettings(whisper_language="de", whisper_task="translate")
    # When its model is loaded
    assert asr.load_asr(settings, "/models/base", "cpu", 0, 1, {}) == "asr"
    # Then neither is fixed in the model: a folder in French, transcribed, gets a tokenizer of its own per job
    assert "language" not in calls[0] and "task" not in calls[0] and calls[0]["vad_model"] == "vad"
