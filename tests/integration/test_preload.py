"""`fleet preload` fetches (here: finds, offline) everything a worker loads, or says what is missing."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.model


def preload(env_extra: dict[str, str], tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "FLEET_MODELS_DIR": str(tmp_path / "models"), **env_extra}
    return subprocess.run([sys.executable, "-m", "app.cli", "preload"], env=env, capture_output=True, text=True, timeout=300)


def test_preload_reports_each_model_ready(tiny_align_model, tmp_path):
    model_dir, nltk_data = tiny_align_model
    result = preload({"WHISPER_MODEL": "tiny.en", "WHISPER_ALIGN_MODEL": str(model_dir), "NLTK_DATA": str(nltk_data),
                      "FLEET_PRELOAD_LANGUAGES": "en,de"}, tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "preload: whisper model tiny.en: " in result.stdout
    assert "preload: alignment model for en: ready" in result.stdout
    assert "preload: alignment model for de: ready" in result.stdout
    assert "preload: NLTK punkt_tab: ready" in result.stdout


def test_preload_offline_without_a_speech_model_exits_2(tmp_path):
    result = preload({"WHISPER_MODEL": "large-v3", "WHISPER_ALIGN": "false"}, tmp_path)
    assert result.returncode == 2
    assert "preload: FAILED: whisper model 'large-v3'" in result.stderr


def test_preload_that_cannot_fetch_alignment_models_warns_and_never_blocks_the_workers(tmp_path):
    # Given a hub that refuses connections (not forbidden by HF_HUB_OFFLINE: the probe must find out)
    env = {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9", "WHISPER_MODEL": "tiny.en",
           "NLTK_DATA": str(tmp_path / "nltk"), "FLEET_PRELOAD_LANGUAGES": "de,fr", "FLEET_LOG_FORMAT": "json"}  # fmt: skip
    # When preload runs
    result = preload(env, tmp_path)
    # Then it succeeds (compose starts the workers), names each fallback, and asked the hub once
    assert result.returncode == 0, result.stderr
    assert "preload: whisper model tiny.en: " in result.stdout
    for language in ("de", "fr"):
        assert f"preload: WARNING: no alignment model for '{language}'" in result.stderr
    assert "preload: WARNING: NLTK punkt_tab could not be downloaded" in result.stderr
    hub_probes = [line for line in result.stderr.splitlines() if "model host unreachable" in line and "127.0.0.1:9" in line]
    assert len(hub_probes) == 1, result.stderr
