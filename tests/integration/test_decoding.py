"""Decoding by windows on the real base model: one encoder pass per window, the language from speech."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.job.identity import DecodingOptions
from fleet.settings import FleetSettings
from tests.support import speech
from worker.audio.samples import decode_audio
from worker.speech.pipeline import Pipeline
from worker.speech.repetition import find_loop
from worker.speech.results import SourceKind

pytestmark = pytest.mark.model
REAL_SPEECH = Path(__file__).resolve().parent.parent / "data" / "real-speech"
PORTUGUESE = ("Era uma vez uma pequena raposa que vivia na beira de uma floresta tranquila. "
              "Todas as manhãs ela descia ao rio para ver os barcos passarem.")  # fmt: skip
# bench/corpus.py's "de long": German sentences, twice, at 150 words a minute.
GERMAN_STORY = (
    "Am Abend leuchteten die Lichter des Hafens über dem ruhigen Wasser. Jeden Morgen ging sie zum Fluss hinunter, "
    "um die Boote vorbeifahren zu sehen. Der alte Müller erzählte Geschichten über Stürme, die aus den Bergen kamen. "
    "Es war einmal ein kleiner Fuchs, der am Rande eines ruhigen Waldes lebte. Der Bäcker öffnete seinen Laden vor "
    "Sonnenaufgang, und die ganze Straße roch nach Brot. Am Abend leuchteten die Lichter des Hafens über dem ruhigen "
    "Wasser. Der alte Müller erzählte Geschichten über Stürme, die aus den Bergen kamen. Es war einmal ein kleiner "
    "Fuchs, der am Rande eines ruhigen Waldes lebte. Jeden Morgen ging sie zum Fluss hinunter, um die Boote "
    "vorbeifahren zu sehen. Der Bäcker öffnete seinen Laden vor Sonnenaufgang, und die ganze Straße roch nach Brot."
)
GERMAN = "Es war einmal ein kleiner Fuchs, der am Rande eines ruhigen Waldes lebte. Jeden Morgen ging sie zum Fluss hinunter."


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Pipeline:
    models_dir = tmp_path_factory.getbasetemp() / "models"  # the session's models folder (conftest's models_dir)
    settings = FleetSettings(whisper_model="base", models_dir=models_dir, source_dir="/nonexistent/source",
                             dest_dir="/nonexistent/dest",
                             whisper_align_model="/nonexistent/no-wav2vec2-model")  # fmt: skip
    return Pipeline(settings, threads=2)


def job(pipeline: Pipeline, language: str | None = None, **decoding):
    """The pipeline's own job settings with a language and some decoding options, as a job message would carry them."""
    own = pipeline.settings.transcription()
    options = DecodingOptions(**{**own.decoding.model_dump(), **decoding})
    return own.model_copy(update={"language": language or own.language, "decoding": options})


def text_of(transcript) -> str:
    return " ".join(segment["text"] for segment in transcript.result["segments"])


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


def test_hotwords_and_an_initial_prompt_spell_a_product_name(pipeline):
    # faster-whisper's own test: "ComfyUI" is heard as "confu i" unless the model is told the word
    audio = decode_audio(REAL_SPEECH / "hotwords.mp3", 600)
    plain = pipeline.run(audio, job(pipeline), lambda *args: None)
    assert "ComfyUI" not in text_of(plain)
    for option in ({"hotwords": "ComfyUI"}, {"initial_prompt": "ComfyUI"}):
        steered = pipeline.run(audio, job(pipeline, **option), lambda *args: None)
        assert "ComfyUI" in text_of(steered), option
    assert job(pipeline, hotwords="ComfyUI").key() != job(pipeline).key()  # the director re-queues


def test_a_window_that_loops_is_decoded_again_hotter_and_the_json_says_why(pipeline, tmp_path):
    # German decoded as Finnish (what a wrong detection does): at temperature 0 a window loops ("–" x15)
    audio = decode_audio(speech.speak(GERMAN_STORY, tmp_path / "de.wav", voice="de", words_per_minute=150), 600)
    transcript = pipeline.run(audio, job(pipeline, language="fi"), lambda *args: None)
    notes = [segment["decoding"] for segment in transcript.result["segments"] if "decoding" in segment]
    assert notes and all(note["loop"].startswith(("repeats", "compression ratio")) for note in notes), notes
    assert transcript.loops.get("re-decoded", 0) + transcript.loops.get("cut", 0) == len(notes)
    assert all(find_loop(segment["text"]) is None for segment in transcript.result["segments"])
    # Without the temperature fallback the repeats are cut, and the JSON lists what was cut
    cut = pipeline.run(audio, job(pipeline, language="fi", temperature_increment_on_fallback=None),
                       lambda *args: None)  # fmt: skip
    cut_notes = [segment["decoding"] for segment in cut.result["segments"] if "decoding" in segment]
    assert cut_notes and all(note["temperatures_tried"] == [] for note in cut_notes)
    assert any(note["cut"] for note in cut_notes) and cut.loops["cut"] == len(cut_notes)
    assert all(find_loop(segment["text"]) is None for segment in cut.result["segments"])


def test_an_unsure_detection_gives_way_to_the_fallback_language(pipeline, tmp_path):
    # espeak-ng's Portuguese robot voice: whisper base is unsure what it hears (la 0.26 on the bench corpus)
    audio = decode_audio(speech.speak(PORTUGUESE, tmp_path / "pt.wav", voice="pt", words_per_minute=150), 600)
    # (no temperature fallback: a window that loops would be re-decoded by sampling, different on every run)
    options = {"fallback_language": "pt", "language_min_probability": 0.99,
               "temperature_increment_on_fallback": None}  # fmt: skip
    transcript = pipeline.run(audio, job(pipeline, **options), lambda *args: None)
    assert transcript.language == "pt" and transcript.language_probability < 0.99
    assert transcript.language_source.kind is SourceKind.FALLBACK
    assert str(transcript.language_source).startswith("fallback: detected ")  # the JSON's text
    assert len(transcript.language_candidates) == 5  # what was detected, for the record
    words = set(text_of(transcript).lower().replace(",", " ").split())
    assert len(words & {"uma", "pequena", "tranquila", "manhãs", "rio", "barcos"}) >= 2, words  # Portuguese, not Latin


def test_condition_on_previous_text_decodes_window_after_window_on_the_same_encoder_pass(pipeline, monkeypatch):
    audio = decode_audio(REAL_SPEECH / "multilingual.mp3", 600)
    calls = EncoderCalls(pipeline.asr.model, monkeypatch)
    transcript = pipeline.run(audio, job(pipeline, condition_on_previous_text=True), lambda *args: None)
    assert len(calls.rows) == 1 and len(transcript.result["segments"]) == calls.rows[0] >= 2
    assert "permission is hereby granted" in text_of(transcript).lower()
    assert job(pipeline, condition_on_previous_text=True).key() != job(pipeline).key()


def test_an_unsure_vote_is_settled_by_decoding_the_likeliest_languages(pipeline):
    # Given the real call's first words, "Hello? Hello?", which whisper's detection takes for Korean (0.62)
    call = decode_audio(REAL_SPEECH / "diarization" / "sample.wav", 600)
    hello = call[int(6.3 * 16000) : int(8.3 * 16000)]
    # When the language is detected with the defaults (no fallback language)
    transcript = pipeline.run(hello, job(pipeline), lambda *args: None)
    # Then the vote was unsure, the text decided, and the JSON says how each candidate scored
    assert transcript.language_candidates[0][0] == "ko" and transcript.language_candidates[0][1] < 0.8
    source = transcript.language_source
    assert transcript.language == "en" and source.kind is SourceKind.DECODED and source.detail.startswith("en -"), source
    scores = dict(part.rsplit(" ", 1) for part in source.detail.split(" vs "))
    assert "ko" in scores and float(scores["en"]) > float(scores["ko"])
    assert "hello" in text_of(transcript).lower()
    # A sure vote is taken as it is, with no decoding in other languages
    jfk = pipeline.run(decode_audio(REAL_SPEECH / "jfk.flac", 600), job(pipeline), lambda *args: None)
    assert jfk.language == "en" and str(jfk.language_source) == "detected"


def test_confident_repetition_stays_as_spoken(pipeline, tmp_path):
    # Given someone really saying "No." six times
    audio = decode_audio(speech.speak("No. No. No. No. No. No.", tmp_path / "no.wav", words_per_minute=120), 600)
    transcript = pipeline.run(audio, job(pipeline, language="en"), lambda *args: None)
    # Then it is neither re-decoded nor cut: the decoding was sure of it
    assert not {"re-decoded", "cut"} & set(transcript.loops), transcript.loops
    assert text_of(transcript).lower().count("no") >= 5, text_of(transcript)
    assert all("decoding" not in segment for segment in transcript.result["segments"])


def test_language_neutral_digits_leave_the_vote_standing_and_the_record_pairs_each_language_with_its_own_share(pipeline):
    # Given "two zero two six" read in English: the vote is unsure (en 0.80), and the digits decode likelier
    # per token in Norwegian than in English (the decoded text's average alone said "nn")
    digits = pipeline.run(decode_audio(REAL_SPEECH / "digits-2026.flac", 600), job(pipeline), lambda *args: None)
    # Then the joint score keeps the detector's English: digits read as well in either language
    assert digits.language_source.kind is SourceKind.DECODED, digits.language_source
    assert digits.language == "en" and digits.language_source.detail.startswith("en -"), digits.language_source
    # and the record's probability is English's share of the vote, never another language's
    assert digits.language_probability == dict(digits.language_candidates)["en"] < 0.8
    # A short real French sentence keeps its language too
    french = pipeline.run(decode_audio(REAL_SPEECH / "french.flac", 600), job(pipeline), lambda *args: None)
    assert french.language == "fr" and french.language_probability == dict(french.language_candidates)["fr"]
    assert "consulat" in text_of(french).lower()
