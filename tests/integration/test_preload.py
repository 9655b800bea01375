"""`fleet preload` fetches (here: finds, offline) everything a worker loads, or says what is missing."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def preload(env_extra: dict[str, str], tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "FLEET_MODELS_DIR": str(tmp_path / "models"), **env_extra}
    return subprocess.run([sys.executable, "-m", "fleet.cli", "preload"], env=env, capture_output=True, text=True, timeout=300)


def test_preload_reports_each_model_ready(tiny_align_model, tmp_path):
    model_dir, nltk_data = tiny_align_model
    result = preload({"WHISPER_MODEL": "tiny.en", "WHISPER_ALIGN_MODEL": str(model_dir), "NLTK_DATA": str(nltk_data),
                      "FLEET_PRELOAD_LANGUAGES": "en,de"}, tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "preload: whisper model tiny.en: " in result.stdout
    assert "preload: alignment model for en: ready" in result.stdout
    assert "preload: alignment model for de: ready" in result.stdout
    assert "preload: NLTK punkt_tab: ready" in result.stdout


def test_preload_offline_names_what_is_missing_and_exits_2(tmp_path):
    result = preload({"WHISPER_MODEL": "large-v3", "WHISPER_ALIGN": "false"}, tmp_path)
    assert result.returncode == 2
    assert "preload: MISSING: whisper model 'large-v3'" in result.stderr
