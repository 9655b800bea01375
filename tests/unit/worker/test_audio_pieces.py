"""Audio read a piece at a time: the spool, the VAD in pieces, alignment in pieces give what one pass gives."""

from __future__ import annotations

import subprocess
from types import SimpleNamespace

import numpy as np
import pytest

from worker.audio.samples import SAMPLE_RATE, ArrayAudio, DecodeError, spool_audio
from worker.speech import vad as vad_stage
from worker.speech.alignment import align_pieces, shift_times


def tone(path, seconds: float) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
                    "-ar", "44100", str(path)], check=True)  # fmt: skip


def test_a_spooled_file_reads_back_any_stretch_as_float32(tmp_path):
    tone(tmp_path / "tone.wav", 7.5)
    with spool_audio(tmp_path / "tone.wav", 60) as audio:
        assert audio.samples == 7.5 * SAMPLE_RATE and audio.duration_s == 7.5
        whole = audio.read()
        stretch = audio.read(2.0, 3.0)
        assert whole.dtype == np.float32 and 0.1 < np.abs(whole).max() <= 1.0
        assert np.array_equal(stretch, whole[2 * SAMPLE_RATE : 3 * SAMPLE_RATE])
        assert audio.read(7.0, 99.0).shape[0] == SAMPLE_RATE / 2 and audio.read(9.0, 10.0).shape[0] == 0


def test_a_file_without_audio_fails_with_a_reason_and_leaves_no_spool(tmp_path):
    (tmp_path / "notes.mp3").write_bytes(b"not audio at all" * 100)
    with pytest.raises(DecodeError, match="not decodable"):
        spool_audio(tmp_path / "notes.mp3", 60)


class LoudnessVad:
    """A stand-in VAD in silero's shape: every run of non-zero samples is a speech region."""

    def __call__(self, audio, **kwargs):
        from whisperx.diarize import Segment

        loud = np.concatenate([[False], audio["waveform"] != 0, [False]])
        edges = np.flatnonzero(np.diff(loud.astype(np.int8)))
        runs = zip(edges[::2], edges[1::2], strict=True)
        return [Segment(first / SAMPLE_RATE, last / SAMPLE_RATE, "UNKNOWN") for first, last in runs]

    @staticmethod
    def preprocess_audio(audio):
        return audio


def pipeline_with(vad) -> SimpleNamespace:
    """The parts of whisperX's pipeline the VAD stage reads: its VAD model and parameters."""
    return SimpleNamespace(vad_model=vad, _vad_params={"vad_onset": 0.5, "vad_offset": 0.363, "chunk_size": 30})


def test_the_vad_in_pieces_finds_the_windows_one_pass_finds(monkeypatch):
    from whisperx.vads.vad import Vad

    vad = type("Loudness", (LoudnessVad, Vad), {})(0.5)
    # Given 200 s with speech regions everywhere, some across or near the 60 s piece boundaries
    samples = np.zeros(200 * SAMPLE_RATE, dtype=np.float32)
    regions = [(1, 9), (25, 33), (60, 75), (76, 95), (118, 125), (130, 158), (170, 179.5), (199, 200)]
    for first, last in regions:
        samples[int(first * SAMPLE_RATE) : int(last * SAMPLE_RATE)] = 0.5
    audio = ArrayAudio(samples)
    asr = pipeline_with(vad)
    whole = vad_stage.speech_spans(asr, audio)
    # When the VAD hears it 80 s at a time
    monkeypatch.setattr(vad_stage, "VAD_PIECE_S", 80.0)
    monkeypatch.setattr(vad_stage, "VAD_PIECE_MARGIN_S", 40.0)
    pieces = vad_stage.speech_spans(asr, audio)
    # Then the windows are the same, none cut at a piece boundary
    assert len(pieces) == len(whole) >= 4 and np.allclose(pieces, whole)
    assert all(last - first <= 30 for first, last in pieces)
    # And with a margin too short for the longest region, it still ends, and no speech is left out
    monkeypatch.setattr(vad_stage, "VAD_PIECE_S", 45.0)
    monkeypatch.setattr(vad_stage, "VAD_PIECE_MARGIN_S", 35.0)
    tight = vad_stage.speech_spans(asr, audio)
    heard = np.zeros(samples.shape[0], dtype=bool)
    for first, last in tight:
        heard[int(first * SAMPLE_RATE) : int(last * SAMPLE_RATE)] = True
    assert heard[samples != 0].all()


def test_alignment_pieces_span_bounded_time_and_shift_back_to_file_time():
    segments = [{"start": float(s), "end": float(s + 20), "text": "x"} for s in range(0, 2000, 25)]
    pieces = align_pieces(segments)
    assert [s for piece in pieces for s in piece] == segments
    assert all(piece[-1]["end"] - piece[0]["start"] <= 600 for piece in pieces) and len(pieces) == 4
    aligned = {"start": 1.5, "end": 3.25, "text": "hi you", "words": [{"word": "hi", "start": 1.5, "end": 2.0, "score": 0.9},
                                                                       {"word": "you"}]}  # fmt: skip
    moved = shift_times(aligned, 600.0)
    assert (moved["start"], moved["end"]) == (601.5, 603.25)
    assert moved["words"] == [{"word": "hi", "start": 601.5, "end": 602.0, "score": 0.9}, {"word": "you"}]
    assert aligned["start"] == 1.5  # the piece's own result is left as it was
