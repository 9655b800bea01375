"""`fleet preload`: download everything the workers load, once, so later runs work offline."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import structlog

from fleet.process import exits
from fleet.settings import FleetSettings
from worker.speech.alignment import AlignModels
from worker.speech.models import ModelError, hub_reachable, resolve_asr_model
from worker.speech.results import NoAligner

log = structlog.get_logger()


def nltk_data_dir(settings: FleetSettings) -> Path:
    """Where NLTK data goes: NLTK_DATA if set (the images set it), else under the models folder."""
    return Path(os.environ.get("NLTK_DATA") or settings.models_dir / "nltk_data")


def preload(settings: FleetSettings) -> int:
    """ASR model, alignment models for FLEET_PRELOAD_LANGUAGES, NLTK punkt_tab.

    Only a missing speech model fails it (exit 2): without alignment models or NLTK data the workers
    still transcribe (word timings from whisper itself, which the JSON records), so those are
    warnings and must never keep the fleet from starting.
    """
    try:
        path = resolve_asr_model(settings.whisper_model, settings.models_dir)
        print(f"preload: whisper model {settings.whisper_model}: {path}")
    except ModelError as exc:
        print(f"preload: FAILED: {exc}", file=sys.stderr)
        return exits.BAD_INPUT
    missing = []
    if settings.whisper_align:
        aligners = AlignModels("cpu", settings.models_dir, capacity=len(settings.preload_languages))
        for language in settings.preload_languages:
            loaded = aligners.get(language, settings.whisper_align_model)
            if isinstance(loaded, NoAligner):
                missing.append(loaded.reason)
            else:
                print(f"preload: alignment model for {language}: ready")
        missing.extend(_punkt_tab(nltk_data_dir(settings)))
    for problem in missing:
        print(f"preload: WARNING: {problem} (workers fall back to whisper's own word timings)", file=sys.stderr)
    return exits.OK


def _punkt_tab(folder: Path) -> list[str]:
    """whisperX splits sentences with NLTK's punkt_tab before aligning."""
    import nltk

    if str(folder) not in nltk.data.path:
        nltk.data.path.insert(0, str(folder))
    try:
        nltk.data.find("tokenizers/punkt_tab/english")
        print(f"preload: NLTK punkt_tab: ready ({folder})")
        return []
    except LookupError:
        pass
    if hub_reachable() and nltk.download("punkt_tab", download_dir=str(folder), quiet=True, raise_on_error=False):
        print(f"preload: NLTK punkt_tab: downloaded to {folder}")
        return []
    return [f"NLTK punkt_tab could not be downloaded to {folder}"]
