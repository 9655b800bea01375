"""Choosing a video's audio track by language, with real ffprobe and ffmpeg."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.language import same_language
from fleet.media.streams import AudioStream, choose_stream, probe_audio_streams
from tests.support import speech
from worker.audio.samples import SAMPLE_RATE, decode_audio

JFK = Path(__file__).resolve().parent.parent / "data" / "real-speech" / "jfk.flac"  # 11.0 s


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tracks")
    german = speech.speak("Guten Morgen. Heute sprechen wir über das Wetter.", folder / "de.wav", voice="de")
    return speech.two_language_video(JFK, german, folder / "talk.mkv")


def test_the_track_in_the_wanted_language_is_decoded(video):
    streams = probe_audio_streams(video, 30)
    assert [(s.index, s.language, s.default) for s in streams] == [(1, "eng", True), (2, "ger", False)]
    german = choose_stream(streams, "de")
    assert german.record() == {"index": 2, "language": "ger", "why": "language de"}
    english = choose_stream(streams, None)
    assert english.record() == {"index": 1, "language": "eng", "why": "default stream"}
    german_s = len(decode_audio(video, 30, german.stream.index)) / SAMPLE_RATE
    english_s = len(decode_audio(video, 30, english.stream.index)) / SAMPLE_RATE
    assert abs(english_s - 11.0) < 0.2 and german_s < 6  # the tracks really are the two recordings


def test_a_language_no_track_has_falls_back_to_the_default_and_says_so():
    streams = [AudioStream(1, "eng", False), AudioStream(2, None, True)]
    assert choose_stream(streams, "fr").record() == {"index": 2, "language": None, "why": "no fr stream; default stream"}
    assert choose_stream([AudioStream(1, None, False)], None).stream is None  # one stream: nothing to choose, nothing recorded
    assert same_language("deu", "de") and same_language("fre", "fr") and not same_language("und", "en")
