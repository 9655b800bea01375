"""An exception that says nothing still makes a one-line reason, in every stage that reports one (never IndexError)."""

from __future__ import annotations

import types

import numpy as np
import pytest
import whisperx

from fleet.job.identity import TranscriptionSettings
from fleet.process.errors import first_line
from fleet.settings import FleetSettings
from worker.audio.samples import ArrayAudio
from worker.speech import alignment
from worker.speech.alignment import Alignment, AlignModels
from worker.speech.encoder import Window
from worker.speech.models import ModelError
from worker.speech.results import NoAligner, WordTiming
from worker.speech.word_timing import time_window_words


def silent_error(*args, **kwargs):
    raise RuntimeError()


def test_first_line_is_the_first_words_or_the_type():
    assert first_line(RuntimeError("")) == "RuntimeError"
    assert first_line(ValueError("\n  \n  no model here  \n details")) == "no model here"
    assert first_line(OSError("x" * 500), limit=10) == "x" * 10


def bare_alignment() -> tuple[Alignment, dict[str, str]]:
    fallbacks: dict[str, str] = {}
    stage = Alignment(FleetSettings(), "cpu", lambda device: device, lambda what, how: fallbacks.update({what: how}))
    return stage, fallbacks


def test_an_alignment_model_that_fails_to_load_without_a_word_is_no_aligner_not_a_crash(monkeypatch, tmp_path):
    # Given whisperX failing to load a wav2vec2 model with an empty message
    monkeypatch.setattr(whisperx, "load_align_model", silent_error)
    monkeypatch.setattr(alignment, "hub_reachable", lambda: False)
    monkeypatch.setattr(AlignModels, "_refuse_unreachable_torchaudio", lambda *args: None)
    # When the cache is asked for it
    loaded = AlignModels("cpu", tmp_path, capacity=1).get("en", None)
    # Then the language has no aligner, and the reason names the error's type
    assert loaded == NoAligner("no alignment model for 'en': RuntimeError")


def test_alignment_without_sentence_data_and_whisper_timings_failing_silently_keeps_the_transcript(monkeypatch):
    # Given NLTK's sentence data missing (LookupError without a message) and whisper's own timings failing the same way
    stage, fallbacks = bare_alignment()
    stage.aligners = types.SimpleNamespace(get=lambda language, model: types.SimpleNamespace(model="m", metadata={}))
    stage.align_fn = lambda *args, **kwargs: (_ for _ in ()).throw(LookupError())
    monkeypatch.setattr(alignment, "add_whisper_word_timings", silent_error)
    result = {"segments": [{"start": 0.0, "end": 1.0, "text": " hi", "words": [{"word": "half"}]}], "language": "en"}
    # When the file is aligned
    outcome = stage.align(result, ArrayAudio(np.zeros(16000, dtype=np.float32)), "en", TranscriptionSettings(), None)
    # Then the transcript stays, unaligned, and says why in one line
    assert outcome == "unaligned: LookupError; whisper word timings failed: RuntimeError"
    assert result["segments"] == [{"start": 0.0, "end": 1.0, "text": " hi"}]
    assert fallbacks == {"word timings (en)": outcome}


def test_window_word_timings_failing_without_a_word_say_failed():
    model = types.SimpleNamespace(find_alignment=silent_error)
    window = Window(0.0, 1.0, np.zeros(16000, dtype=np.float32))
    segments = [{"start": 0.0, "end": 1.0, "text": " hi"}]
    timings = time_window_words(model, None, [window], segments, [[1, 2]], tokenizer=None)
    assert timings.state is WordTiming.FAILED and timings.failure == "RuntimeError"


def test_a_diarizer_that_fails_to_load_without_a_word_is_a_model_error(monkeypatch, tmp_path):
    from worker.speech.speakers import PyannoteDiarizer

    monkeypatch.setattr("whisperx.diarize.DiarizationPipeline", silent_error)
    local_pipeline = tmp_path / "pipeline"
    local_pipeline.mkdir()
    with pytest.raises(ModelError, match=r"cannot load the diarization pipeline .*: RuntimeError$"):
        PyannoteDiarizer(str(local_pipeline), None, "cpu", tmp_path)


def test_a_notification_failing_without_a_word_is_logged_in_one_line():
    from structlog.testing import capture_logs

    from fleet.process.notify import Notifier

    notifier = Notifier((), "http://127.0.0.1:9/hook")
    notifier.backoff_s = 0.0
    notifier._post_webhook = silent_error
    with capture_logs() as events:
        notifier.event({"event": "transcribed"})
        notifier.close()
    (failed,) = [e for e in events if e["event"] == "notification not delivered"]
    assert failed["error"] == "RuntimeError"
