"""The media layout in compose, for real: subtitles beside the videos of a library shared through a group.

A second project on the same engine (the images tests/compose/test_lifecycle.py built), deployed with
./build.sh like a user: FLEET_LAYOUT=media adds docker-compose.media.yml, MEDIA_GID docker-compose.group.yml.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.compose.conftest import require_docker
from tests.support import speech
from tests.support.compose import (
    PGID,
    PUID,
    REAL_SPEECH,
    Deployment,
    base_images,
    shared_folder,
    torn_down_around,
    wait_for,
    write_env_file,
)
from tests.support.receiver import Received, receiver

pytestmark = [pytest.mark.compose, pytest.mark.long]
MEDIA_GID = 4343  # the library's group: the containers reach it only through group_add
TRANSCRIBE_TIMEOUT_S = 900


def host_address() -> str:
    """This machine's address on Docker's default bridge: containers of any project reach a server bound there."""
    inspect = ["docker", "network", "inspect", "bridge", "-f", "{{(index .IPAM.Config 0).Gateway}}"]
    return subprocess.run(inspect, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(scope="module")
def notifications() -> Iterator[Received]:
    require_docker()
    with receiver(bind="0.0.0.0", host=host_address()) as got:
        yield got


@pytest.fixture(scope="module")
def media_deployment(notifications: Received) -> Iterator[Deployment]:
    require_docker()
    source, dest, state = shared_folder("wf-media-"), shared_folder("wf-media-dest-"), shared_folder("wf-media-env-")
    os.chown(dest, PUID, PGID)
    films = source / "Films"
    speech.video(REAL_SPEECH / "jfk.flac", films / "Speech (1961).mkv", subtitle=("eng", False))
    german = speech.speak("Guten Morgen. Heute sprechen wir über das Wetter.", state / "de.wav", voice="de")
    speech.two_language_video(REAL_SPEECH / "jfk.flac", german, films / "Talk.mkv")
    speech.speak("The quick brown fox jumps over the lazy dog.", state / "fox.mp3")
    speech.video(state / "fox.mp3", films / "Fox.mp4")
    (films / "Fox.eng.srt").write_text("1\n00:00:00,000 --> 00:00:02,000\nFrom another tool.\n")
    (source / "Music").mkdir()
    shutil.copy(state / "fox.mp3", source / "Music" / "fox.mp3")
    for path in [source, *source.rglob("*")]:  # root's, readable and writable only through the group
        os.chown(path, 0, MEDIA_GID)
        path.chmod(0o2770 if path.is_dir() else 0o660)
    settings = {
        **base_images(), "COMPOSE_PROJECT_NAME": "whisper-fleet-media-test", "SOURCE_DIR": str(source),
        "DEST_DIR": str(dest), "PUID": str(PUID), "PGID": str(PGID), "MEDIA_GID": str(MEDIA_GID),
        "FLEET_LAYOUT": "media", "FLEET_WORKERS": "1", "FLEET_WATCH_INTERVAL_S": "5", "FLEET_MIN_AGE_S": "0",
        "FLEET_LOG_FORMAT": "json", "FLEET_WEBHOOK_URL": notifications.url("/hook"),
        "FLEET_NOTIFY_URLS": notifications.url("/apprise", "json"),
    }  # fmt: skip
    env_file = state / "compose.env"
    write_env_file(env_file, settings)
    deployment = Deployment(source=source, dest=dest, env_file=env_file, settings=settings, project="whisper-fleet-media-test")
    with torn_down_around(deployment, source, dest, state):
        yield deployment


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def test_a_group_shared_library_gets_exactly_its_new_subtitles_beside_the_videos(media_deployment, notifications):
    deployment = media_deployment
    before = snapshot(deployment.source)
    # When the user deploys with FLEET_LAYOUT=media and MEDIA_GID in .env
    result = deployment.build_sh("deploy")
    assert result.returncode == 0, result.stderr[-3000:]
    subtitled = deployment.dest / ".fleet" / "subtitled"
    wait_for(lambda: deployment.commit_record("Films/Talk") and deployment.commit_record("Music/fox")
             and len(list(subtitled.glob("*.json"))) == 2, TRANSCRIBE_TIMEOUT_S, "two transcribed, two subtitled")  # fmt: skip
    # Then the library holds its files as they were and one new subtitle, named for the media servers, owned by PUID
    after = snapshot(deployment.source)
    assert {rel: after[rel] for rel in before} == before
    assert set(after) - set(before) == {"Films/Talk.en.srt"}
    talk = deployment.source / "Films" / "Talk.en.srt"
    # the folder is setgid: the group stays the library's, so the media server in it reads the subtitle
    assert "country" in talk.read_text() and (talk.stat().st_uid, talk.stat().st_gid) == (PUID, MEDIA_GID)
    assert deployment.commit_record("Films/Talk")["media"] == {"srt": "Films/Talk.en.srt"}
    assert (deployment.dest / "Music" / "fox.srt").exists()  # audio keeps the mirror
    reasons = sorted(json.loads(p.read_text())["reason"] for p in subtitled.glob("*.json"))
    assert reasons == ["has a subtitle in en: Fox.eng.srt", "has an embedded subtitle stream in en (eng)"]
    # Only the workers write the source; every container is in the library's group
    for service, writable in (("worker", True), ("director", False)):
        for container in deployment.containers(service):
            info = deployment.inspect(container)
            assert {m["Destination"]: m["RW"] for m in info["Mounts"]}["/source"] is writable
            assert info["HostConfig"]["GroupAdd"] == [str(MEDIA_GID)]
    # And the next rounds plan everything as done or subtitled and write nothing
    since = time.time()
    plan = wait_for(lambda: (p := deployment.last_plan()) and p["at"] > since and p, 300, "a director round")
    assert (plan["counts"]["done"], plan["counts"]["subtitled"], plan["counts"]["enqueue"]) == (2, 2, 0), plan
    assert snapshot(deployment.source) == after
    # The webhook heard each transcribed file once, the round summary came once, from the director
    (summary,) = notifications.wait_for("/apprise", 1)
    assert summary["title"] == "whisper-fleet: 2 new transcripts, 2 subtitled", summary
    events = notifications.bodies("/hook")
    assert sorted((e["event"], e["file"]) for e in events) == [
        ("transcribed", "Films/Talk.mkv"),
        ("transcribed", "Music/fox.mp3"),
    ]
    assert "Films/Talk.en.srt" in next(e for e in events if e["file"] == "Films/Talk.mkv")["outputs"]
    since = time.time()
    wait_for(lambda: (p := deployment.last_plan()) and p["at"] > since, 300, "one more director round")
    assert len(notifications.bodies("/apprise")) == 1 and len(notifications.bodies("/hook")) == 2
