"""Decoding by windows on the real base model: one encoder pass per window, the language from speech."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.settings import FleetSettings
from tests.support import speech
from worker.decode import decode_audio
from worker.pipeline import Pipeline

pytestmark = pytest.mark.integration
REAL_SPEECH = Path(__file__).resolve().parent.parent / "data" / "real-speech"
GERMAN = "Es war einmal ein kleiner Fuchs, der am Rande eines ruhigen Waldes lebte. Jeden Morgen ging sie zum Fluss hinunter."


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Pipeline:
    models_dir = tmp_path_factory.getbasetemp() / "models"  # the session's models folder (conftest's models_dir)
    settings = FleetSettings(whisper_model="base", models_dir=models_dir, source_dir="/nonexistent", dest_dir="/nonexistent",
                             whisper_align_model="/nonexistent/no-wav2vec2-model")  # fmt: skip
    return Pipeline(settings, threads=2)


class EncoderCalls:
    """Counts the rows that go through whisper's encoder (the real one runs)."""

    def __init__(self, model, monkeypatch) -> None:
        self.rows: list[int] = []
        real_encode = model.encode
        monkeypatch.setattr(model, "encode", lambda features: self.rows.append(features.shape[0]) or real_encode(features))


def test_language_text_and_word_timings_share_one_encoder_pass_per_window(pipeline, monkeypatch):
    # Given a real recording with two speech windows (the MIT licence read in English, then in German)
    audio = decode_audio(REAL_SPEECH / "multilingual.mp3", 600)
    windows = pipeline.decoder.speech_windows(audio)
    calls = EncoderCalls(pipeline.asr.model, monkeypatch)
    # When the pipeline detects the language, transcribes and times the words
    transcript = pipeline.run(audio, pipeline.settings.transcription(), lambda *args: None)
    # Then the encoder saw each window once, in one batch
    assert len(windows) >= 2 and calls.rows == [len(windows)]
    assert transcript.language == "en" and transcript.language_probability > 0.5
    assert transcript.alignment.startswith("whisper cross-attention (no alignment model for 'en'")
    text = " ".join(segment["text"] for segment in transcript.result["segments"]).lower()
    assert "permission is hereby granted" in text
    words = transcript.result["word_segments"]
    assert len(words) > 50 and [w["start"] for w in words] == sorted(w["start"] for w in words)
    assert all(segment["start"] <= word["start"] <= word["end"] <= segment["end"]
               for segment in transcript.result["segments"] for word in segment["words"])  # fmt: skip


def test_a_music_intro_does_not_decide_the_language(pipeline, tmp_path):
    # Given 35 s of music (which the VAD takes for speech) before German speech
    parts = [speech.chords(tmp_path / "intro.wav", 35), speech.speak(GERMAN, tmp_path / "de.wav", voice="de")]
    audio = decode_audio(speech.concatenate(parts, tmp_path / "podcast.wav"), 600)
    # When the language is detected (whisper alone, on the first 30 s, says English)
    transcript = pipeline.run(audio, pipeline.settings.transcription(), lambda *args: None)
    # Then the speech decides, and the runners-up are on record
    assert transcript.language == "de", transcript.language_candidates
    assert transcript.language_candidates[0] == ("de", transcript.language_probability)
    assert "en" in dict(transcript.language_candidates)
    text = " ".join(segment["text"] for segment in transcript.result["segments"]).lower()
    assert "einmal" in text and "fluss" in text  # German words, not an English rendering
