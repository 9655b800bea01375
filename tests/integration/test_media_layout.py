"""The media layout on a small library of real video containers: `./build.sh local` writes exactly the new subtitles."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from director.scan import SourceFile
from director.subtitle_check import SubtitleCheck
from tests.support import speech
from tests.support.paths import REPO_ROOT
from tests.support.ports import free_port
from tests.support.receiver import receiver

pytestmark = [pytest.mark.queue, pytest.mark.model]
JFK = REPO_ROOT / "tests" / "data" / "real-speech" / "jfk.flac"  # "... ask not what your country can do for you ..."
FOREIGN_SRT = "1\n00:00:00,000 --> 00:00:02,000\nWritten by someone else.\n"


@pytest.fixture(scope="module")
def library(speech_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Films with an embedded English subtitle, a sidecar .eng.srt, two audio tracks, a forced-only subtitle; music."""
    root = tmp_path_factory.mktemp("library") / "media"
    films, stories = root / "Films", speech_corpus / "english" / "stories"
    speech.video(JFK, films / "Speech (1961).mkv", subtitle=("eng", False))
    speech.video(stories / "fox.mp3", films / "Fox.mp4")
    (films / "Fox.eng.srt").write_text(FOREIGN_SRT)
    german = speech.speak("Guten Morgen. Heute sprechen wir über das Wetter.", root / "de.wav", voice="de")
    speech.two_language_video(JFK, german, films / "Talk.mkv")
    german.unlink()
    (films / "Talk.de.srt").write_text(FOREIGN_SRT)  # another language: no reason to skip, never replaced
    speech.video(stories / "river.m4a", films / "Forced.mkv", subtitle=("eng", True))
    (root / "Music").mkdir()
    shutil.copy(stories / "fox.mp3", root / "Music" / "fox.mp3")
    return root


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def local_run(source: Path, dest: Path, tmp_path: Path, **extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT", "FLEET_", "WHISPER_"))}
    env.update({"LOCALSTACK_PORT": str(free_port()), "LOCALSTACK_STATE_DIR": str(tmp_path / "ls"), "WHISPER_MODEL": "tiny.en",
                "WHISPER_ALIGN": "false", "HF_HUB_OFFLINE": "1", "FLEET_LAYOUT": "media", **extra})  # fmt: skip
    return subprocess.run([str(REPO_ROOT / "build.sh"), "local", str(source), str(dest), "--workers", "2"], env=env,
                          capture_output=True, text=True, timeout=900)  # fmt: skip


def test_a_library_gets_exactly_its_new_subtitles_once_and_says_so_once(library, tmp_path):
    source, dest = tmp_path / "media", tmp_path / "fleet"
    shutil.copytree(library, source)
    before = snapshot(source)
    with receiver() as got:
        hooks = {"FLEET_WEBHOOK_URL": got.url("/hook"), "FLEET_NOTIFY_URLS": got.url("/apprise", "json")}
        run = local_run(source, dest, tmp_path, **hooks)
        assert run.returncode == 0, run.stdout + run.stderr
        summary = got.wait_for("/apprise", 1)
        # The library: every file as it was, plus the two subtitles it lacked, named for the media servers
        after = snapshot(source)
        assert {rel: after[rel] for rel in before} == before
        assert set(after) - set(before) == {"Films/Talk.en.srt", "Films/Forced.en.srt"}
        assert "country" in (source / "Films" / "Talk.en.srt").read_text()  # the default (English) track
        assert "river" in (source / "Films" / "Forced.en.srt").read_text().lower()  # a forced subtitle does not count
        # The JSON and the other formats in DEST_DIR's mirror; audio-only files keep everything there
        talk = json.loads((dest / "Films" / "Talk.json").read_text())["fleet"]
        assert talk["media"] == {"srt": "Films/Talk.en.srt"} and talk["language"] == "en"
        assert not (dest / "Films" / "Talk.srt").exists() and (dest / "Films" / "Talk.vtt").exists()
        assert (dest / "Music" / "fox.srt").exists() and not (source / "Music" / "fox.en.srt").exists()
        # The two subtitled films were not transcribed, and the records say why
        reasons = {json.loads(p.read_text())["source"]: json.loads(p.read_text())["reason"]
                   for p in (dest / ".fleet" / "subtitled").glob("*.json")}  # fmt: skip
        assert reasons == {"Films/Speech (1961).mkv": "has an embedded subtitle stream in en (eng)",
                           "Films/Fox.mp4": "has a subtitle in en: Fox.eng.srt"}  # fmt: skip
        assert not (dest / "Films" / "Fox.json").exists()
        assert "local run: 3 transcribed, 2 subtitled already, 0 failed" in run.stdout
        # One webhook per transcribed file, one message for the round
        events = {event["file"]: event for event in got.bodies("/hook")}
        assert len(got.bodies("/hook")) == 3 and set(events) == {"Films/Talk.mkv", "Films/Forced.mkv", "Music/fox.mp3"}
        assert "Films/Talk.en.srt" in events["Films/Talk.mkv"]["outputs"]
        assert [m["title"] for m in summary] == ["whisper-fleet: 3 new transcripts, 2 subtitled"]
        # A second run plans every file as done or subtitled, writes nothing and says nothing
        again = local_run(source, dest, tmp_path, **hooks)
        assert "done 3, enqueued 0" in again.stdout and "subtitled 2" in again.stdout, again.stdout
        assert "local run: nothing to transcribe" in again.stdout and again.returncode == 0
        assert snapshot(source) == after
    assert len(got.bodies("/apprise")) == 1 and len(got.bodies("/hook")) == 3
    # When the sidecar that made Fox count as subtitled is deleted, and an episode arrives beside its second
    # part, whose subtitle (the fleet's, or anyone's) starts with the episode's name
    (source / "Films" / "Fox.eng.srt").unlink()
    shutil.copy(source / "Films" / "Fox.mp4", source / "Films" / "Show.S01E01.mp4")
    shutil.copy(source / "Films" / "Fox.mp4", source / "Films" / "Show.S01E01.Part2.mp4")
    (source / "Films" / "Show.S01E01.Part2.whisper.en.srt").write_text(FOREIGN_SRT)
    third = local_run(source, dest, tmp_path)
    # Then Fox is transcribed after all, the episode gets its own subtitle, and only the second part counts as subtitled
    assert "local run: 2 transcribed, 1 subtitled already, 0 failed" in third.stdout, third.stdout + third.stderr
    added = {"Films/Show.S01E01.mp4", "Films/Show.S01E01.Part2.mp4", "Films/Show.S01E01.Part2.whisper.en.srt"}
    assert set(snapshot(source)) - set(after) - added == {"Films/Fox.en.srt", "Films/Show.S01E01.en.srt"}
    records = [json.loads(p.read_text()) for p in (dest / ".fleet" / "subtitled").glob("*.json")]
    relied = next(record for record in records if record["source"] == "Films/Show.S01E01.Part2.mp4")
    assert relied["sidecar"] == "Show.S01E01.Part2.whisper.en.srt" and relied["sidecar_fingerprint"]["size"] == len(FOREIGN_SRT)


def test_the_director_skips_subtitled_videos_when_the_language_is_known_and_probes_each_once(library, tmp_path):
    dest = tmp_path / "fleet"
    videos = [SourceFile(str(p.relative_to(library)), p.stat().st_size, p.stat().st_mtime_ns)
              for p in sorted(library.rglob("*.m*")) if p.suffix in (".mkv", ".mp4")]  # fmt: skip
    check = SubtitleCheck(library, dest, 60)
    found = {video.rel: check(video, "en") for video in videos}
    assert found == {"Films/Fox.mp4": "has a subtitle in en: Fox.eng.srt", "Films/Forced.mkv": None, "Films/Talk.mkv": None,
                     "Films/Speech (1961).mkv": "has an embedded subtitle stream in en (eng)"}  # fmt: skip
    assert check(videos[0], "de") is None and check.probed == 3  # the sidecar answered for Fox: no probe
    check.save()
    again = SubtitleCheck(library, dest, 60)
    assert {video.rel: again(video, "en") for video in videos} == found and again.probed == 0
    # Through the director's dry run: counted and listed as subtitled, not queued
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT", "FLEET_", "WHISPER_"))}
    env.update({"FLEET_SOURCE_DIR": str(library), "FLEET_DEST_DIR": str(dest), "FLEET_LAYOUT": "media", "FLEET_MIN_AGE_S": "0",
                "WHISPER_LANGUAGE": "en", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}", "FLEET_QUEUE_MAX_ATTEMPTS": "1",
                "FLEET_QUEUE_TIMEOUT_S": "1"})  # fmt: skip
    dry = subprocess.run([str(REPO_ROOT / ".venv" / "bin" / "fleet"), "director", "--dry-run"], env=env, capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert "subtitled (2):" in dry.stdout, dry.stdout + dry.stderr
    assert "Films/Speech (1961).mkv  [has an embedded subtitle stream in en (eng)]" in dry.stdout
    assert "would enqueue 3" in dry.stdout


def test_a_library_transcribed_in_the_mirror_moves_its_subtitles_beside_the_videos_without_transcribing_again(library, tmp_path):
    source, dest = tmp_path / "media", tmp_path / "fleet"
    (source / "Films").mkdir(parents=True)
    shutil.copy(library / "Films" / "Talk.mkv", source / "Films" / "Talk.mkv")
    first = local_run(source, dest, tmp_path, FLEET_LAYOUT="mirror", FLEET_OUTPUT_FORMATS="srt,json")
    assert "local run: 1 transcribed" in first.stdout, first.stdout + first.stderr
    mirrored = (dest / "Films" / "Talk.srt").read_text()
    switched = local_run(source, dest, tmp_path, FLEET_OUTPUT_FORMATS="srt,json", FLEET_MEDIA_TAG="whisper",
                         FLEET_MEDIA_LANGUAGE_CODES="639-2b")  # fmt: skip
    assert "local run: 0 transcribed, 1 re-rendered from their json" in switched.stdout, switched.stdout + switched.stderr
    assert (source / "Films" / "Talk.whisper.eng.srt").read_text() == mirrored
    assert not (dest / "Films" / "Talk.srt").exists()  # moved, not copied
    assert sorted(p.name for p in (source / "Films").iterdir()) == ["Talk.mkv", "Talk.whisper.eng.srt"]
