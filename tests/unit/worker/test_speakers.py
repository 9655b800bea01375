"""Speaker labels: turns onto words, splits at changes, counts within bounds, every format, keys and backends."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest
from whisperx.utils import WriteSRT, WriteTSV, WriteVTT

from director.folder_settings import FolderSettingsError, apply_folder_file
from fleet.job.identity import TranscriptionSettings
from fleet.job.messages import Fingerprint
from fleet.state.done import OutputState, renders_only
from fleet.state.records import RecordSummary
from worker.job.writers import render
from worker.speech.models import ModelError
from worker.speech.speaker_labels import label_speakers, split_at_changes, strip_speakers
from worker.speech.speakers import (
    BoundedClustering,
    BundledDiarizer,
    SpeakerBounds,
    SpeakerTurns,
    choose_backend,
    merge_closest,
    relabel,
)

OPTIONS = {"max_line_width": None, "max_line_count": None, "highlight_words": False}


def words(*spec: tuple[str, float, float]) -> list[dict]:
    return [{"word": word, "start": start, "end": end} for word, start, end in spec]


def conversation() -> dict:
    """Two segments; the first holds a speaker change after "there?"."""
    first = words(("Hello", 0.0, 0.4), ("there?", 0.5, 0.9), ("Hi,", 1.2, 1.4), ("Anna.", 1.5, 1.9))
    second = words(("How", 2.5, 2.7), ("are", 2.8, 2.9), ("you?", 3.0, 3.3))
    return {"language": "en", "segments": [
        {"start": 0.0, "end": 1.9, "text": " Hello there? Hi, Anna.", "words": first},
        {"start": 2.5, "end": 3.3, "text": " How are you?", "words": second},
    ]}  # fmt: skip


TURNS = SpeakerTurns([(0.0, 1.0, "SPEAKER_00"), (1.1, 2.0, "SPEAKER_01"), (2.4, 3.4, "SPEAKER_00")], "stand-in")


def test_a_segment_that_spans_a_speaker_change_is_split_there_and_every_word_has_its_speaker():
    result = conversation()
    label_speakers(result, TURNS)
    assert [(s["speaker"], s["text"], s["start"], s["end"]) for s in result["segments"]] == [
        ("SPEAKER_00", "Hello there?", 0.0, 0.9), ("SPEAKER_01", "Hi, Anna.", 1.2, 1.9),
        ("SPEAKER_00", " How are you?", 2.5, 3.3),
    ]  # fmt: skip
    assert [w["speaker"] for w in result["word_segments"]] == ["SPEAKER_00"] * 2 + ["SPEAKER_01"] * 2 + ["SPEAKER_00"] * 3


def test_a_word_without_timing_takes_its_neighbours_speaker_and_labels_can_be_removed():
    segment = {"start": 0.0, "end": 2.0, "text": " It costs 40 dollars.", "words": [
        {"word": "It", "start": 0.0, "end": 0.2, "speaker": "SPEAKER_01"}, {"word": "costs", "start": 0.3, "end": 0.6},
        {"word": "40"}, {"word": "dollars.", "start": 1.2, "end": 1.8, "speaker": "SPEAKER_01"}]}  # fmt: skip
    assert split_at_changes(segment, "en") == [segment] and segment["speaker"] == "SPEAKER_01"
    assert {w["speaker"] for w in segment["words"]} == {"SPEAKER_01"}
    result = {"segments": [segment]}
    strip_speakers(result)
    assert "speaker" not in str(result)


def test_no_speech_means_no_labels():
    result = conversation()
    label_speakers(result, SpeakerTurns([], "stand-in"))
    assert "speaker" not in str(result["segments"])


def test_a_subtitle_cue_never_joins_two_speakers_even_when_lines_may_span_segments():
    result = conversation()
    label_speakers(result, TURNS)
    srt = render(result, "srt", {"max_line_width": 40, "max_line_count": 2, "highlight_words": False})
    cues = [block.splitlines()[2:] for block in srt.strip().split("\n\n")]
    assert cues == [["[SPEAKER_00]: Hello there?"], ["[SPEAKER_01]: Hi, Anna."], ["[SPEAKER_00]: How are you?"]]
    assert [block.splitlines()[0] for block in srt.strip().split("\n\n")] == ["1", "2", "3"]


def test_vtt_has_voice_tags_tsv_a_speaker_column_txt_whisperxs_prefix():
    result = conversation()
    label_speakers(result, TURNS)
    vtt = render(result, "vtt", OPTIONS)
    assert vtt.startswith("WEBVTT\n\n") and "<v SPEAKER_01>Hi, Anna.\n" in vtt and "[SPEAKER" not in vtt
    assert render(result, "tsv", OPTIONS).splitlines()[:2] == ["start\tend\tspeaker\ttext", "0\t900\tSPEAKER_00\tHello there?"]
    assert render(result, "txt", OPTIONS).splitlines()[1] == "[SPEAKER_01]: Hi, Anna."


@pytest.mark.parametrize(("fmt", "writer"), [("srt", WriteSRT), ("vtt", WriteVTT), ("tsv", WriteTSV)])
def test_without_speakers_the_outputs_are_whisperxs_own(fmt, writer):
    for options in (OPTIONS, {"max_line_width": 12, "max_line_count": 2, "highlight_words": True}):
        theirs = io.StringIO()
        writer("").write_result(conversation(), theirs, options)
        assert render(conversation(), fmt, options) == theirs.getvalue()


def clusters(*sizes: int, dims: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Well separated groups of embeddings around orthogonal directions, and their labels."""
    rng = np.random.default_rng(1)
    points, labels = [], []
    for index, size in enumerate(sizes):
        centre = np.eye(dims)[index] * 10
        points.append(centre + rng.standard_normal((size, dims)) * 0.3)
        labels += [index] * size
    return np.concatenate(points).astype(np.float32), np.array(labels)


def test_too_many_clusters_merge_the_most_similar_until_the_maximum_holds():
    embeddings, labels = clusters(10, 10, 10)
    embeddings[20:] = embeddings[:10] * 0.9 + embeddings[20:] * 0.1  # the third group sounds like the first
    merged = merge_closest(embeddings, labels, 2)
    assert len(set(merged)) == 2 and set(merged[20:]) == set(merged[:10]) != set(merged[10:20])


def test_bounded_clustering_splits_below_the_minimum_and_says_what_it_did():
    embeddings, truth = clusters(12, 12, 12)
    bounds = SpeakerBounds(3, None)
    labels = BoundedClustering(lambda x: np.zeros(len(x), dtype=int), bounds)(embeddings)
    assert len(set(labels)) == 3 and bounds.note() == "1 clusters split to 3 (min_speakers=3)"
    # the split follows the embeddings: each true group lands in one cluster
    assert all(len(set(labels[truth == group])) == 1 for group in range(3))
    exact = SpeakerBounds(2, 2)
    BoundedClustering(lambda x: truth, exact)(embeddings)
    assert exact.note() == "3 clusters merged to 2 (exactly 2 speakers asked)"
    within = SpeakerBounds(None, 5)
    BoundedClustering(lambda x: truth, within)(embeddings)
    assert within.note() == ""


def test_senko_labels_count_from_zero_like_pyannote():
    assert [relabel(label) for label in ("SPEAKER_01", "SPEAKER_02", "SPEAKER_10")] == ["SPEAKER_00", "SPEAKER_01", "SPEAKER_09"]


def test_the_bundled_diarizer_without_a_token_pyannote_with_one_or_a_named_pipeline():
    assert choose_backend(None, None) == "senko" and choose_backend("", "hf_x") == "pyannote/speaker-diarization-community-1"
    assert choose_backend("senko", "hf_x") == "senko" and choose_backend("/models/community-1", None) == "/models/community-1"


def test_a_worker_without_the_diarizer_installed_says_so_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "senko", None)  # what an import of a missing package does
    with pytest.raises(ModelError, match=r"^speaker labels need the bundled diarizer, which is not installed here"):
        BundledDiarizer("cpu", 1, tmp_path)


def test_speakers_in_a_folder_file_change_only_that_folders_key_and_keep_its_words_key():
    base = TranscriptionSettings()
    speakers = apply_folder_file(base, "diarize = true\nmin_speakers = 2\nmax_speakers = 4\n", "calls/.whisper-fleet.toml")
    assert (speakers.diarize, speakers.min_speakers, speakers.max_speakers) == (True, 2, 4)
    assert speakers.key() != base.key() and speakers.transcript_key() != base.transcript_key()
    assert speakers.words_key() == base.words_key()
    # bounds without speakers are dropped: they cannot change a key
    assert apply_folder_file(base, "max_speakers = 3\n", "x").key() == base.key()
    # a folder that turns speakers on takes the environment's bounds where it names none
    inherited = apply_folder_file(base, "diarize = true\nmin_speakers = 1\n", "x", speaker_bounds=(2, 3))
    assert (inherited.min_speakers, inherited.max_speakers) == (1, 3)


@pytest.mark.parametrize(("text", "message"), [
    ('diarize = "yes"', "x/.whisper-fleet.toml: line 1: diarize must be true or false"),
    ("diarize = true\nmin_speakers = true", "x/.whisper-fleet.toml: line 2: min_speakers must be a whole number"),
    ("diarize = true\nmin_speakers = 3\nmax_speakers = 2",
     "x/.whisper-fleet.toml: min_speakers=3 is above max_speakers=2"),
    ("diarize = true\nmax_speakers = 0",
     "x/.whisper-fleet.toml: line 2: max_speakers: Input should be greater than or equal to 1"),
])  # fmt: skip
def test_a_bad_speaker_setting_in_a_folder_file_is_one_line(text, message):
    with pytest.raises(FolderSettingsError) as caught:
        apply_folder_file(TranscriptionSettings(), text, "x/.whisper-fleet.toml")
    assert str(caught.value) == message


def test_a_speaker_only_change_is_rendered_from_the_json_a_words_change_is_not():
    old = TranscriptionSettings()
    record = RecordSummary("a.wav", Fingerprint(10, 20), old.key(), old.transcript_key(), old.words_key())
    state = OutputState(frozenset({"json", "txt"}), record)
    assert renders_only("a.wav", Fingerprint(10, 20), old.model_copy(update={"diarize": True}), state)
    assert not renders_only("a.wav", Fingerprint(10, 20), TranscriptionSettings(language="de", diarize=True), state)
    assert not renders_only("a.wav", Fingerprint(10, 21), old.model_copy(update={"diarize": True}), state)
    legacy = OutputState(frozenset({"json"}), RecordSummary("a.wav", Fingerprint(10, 20), old.key(), old.transcript_key()))
    assert not renders_only("a.wav", Fingerprint(10, 20), old.model_copy(update={"diarize": True}), legacy)
