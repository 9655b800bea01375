"""The compose deployment for tests/compose: built and started once, torn down at the end."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.compose.harness import PGID, PROJECT, PUID, Deployment, base_images, docker_answers, shared_folder, write_env_file
from tests.conftest import free_port
from tests.support.paths import REPO_ROOT
from tests.support.speech import ENGLISH, speak

REAL_SPEECH = REPO_ROOT / "tests" / "data" / "real-speech"
GERMAN = "Guten Morgen. Heute scheint die Sonne und wir gehen zusammen in den Park."


def require_docker() -> None:
    """No engine: skipped on a developer's machine, a failure in CI (which starts one: .ci/run)."""
    if docker_answers():
        return
    if os.environ.get("CI"):
        pytest.fail("no Docker engine answers; .ci/run starts one with tests/compose/engine.sh start")
    pytest.skip("no Docker engine answers (tests/compose/engine.sh start starts one)")


def fill_source(source: Path) -> dict[str, str]:
    """Real speech, espeak-ng speech, a video and two bad files; returns good file -> reference text."""
    references = {}
    (source / "real").mkdir()
    shutil.copy(REAL_SPEECH / "jfk.flac", source / "real" / "jfk.flac")
    references["real/jfk.flac"] = (
        "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."
    )
    shutil.copy(REAL_SPEECH / "hotwords.mp3", source / "real" / "hotwords.mp3")
    rel, text = next(iter(ENGLISH.items()))
    speak(text, source / "espeak" / "fox.mp3")
    references["espeak/fox.mp3"] = text
    speak(GERMAN, source / "espeak" / "morgen.wav", voice="de")
    references["espeak/morgen.wav"] = GERMAN
    (source / "video").mkdir()
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=duration=11:size=64x64:rate=5",
                    "-i", str(REAL_SPEECH / "jfk.flac"), "-shortest", "-pix_fmt", "yuv420p", "-c:a", "aac",
                    str(source / "video" / "speech.mkv")], check=True)  # fmt: skip
    references["video/speech.mkv"] = references["real/jfk.flac"]
    (source / "bad").mkdir()
    (source / "bad" / "corrupt.mp3").write_bytes(os.urandom(20_000))
    (source / "bad" / "notes.wav").write_text("this is text, not audio\n" * 50)
    for path in source.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return references


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    require_docker()
    images = base_images()
    source, dest, state = shared_folder("wf-source-"), shared_folder("wf-dest-"), shared_folder("wf-env-")
    os.chown(dest, PUID, PGID)
    settings = {
        **images,
        "COMPOSE_PROJECT_NAME": PROJECT,
        "SOURCE_DIR": str(source),
        "DEST_DIR": str(dest),
        "PUID": str(PUID),
        "PGID": str(PGID),
        # Short beats so a killed worker's file comes back, and new files are seen, within seconds.
        "FLEET_WATCH_INTERVAL_S": "5",
        "FLEET_VISIBILITY_TIMEOUT_S": "20",
        "FLEET_HEARTBEAT_INTERVAL_S": "5",
        # Files added during the test wait a few seconds as "settling", then the next round takes them.
        "FLEET_MIN_AGE_S": "3",
        "FLEET_DASHBOARD": "1",
        "FLEET_DASHBOARD_PORT": str(free_port()),
        "FLEET_LOG_FORMAT": "json",
    }
    env_file = state / "compose.env"
    write_env_file(env_file, settings)
    deployment = Deployment(source=source, dest=dest, env_file=env_file, settings=settings)
    deployment.down()  # a run that died half-way may have left this project behind
    deployment.references = fill_source(source)
    try:
        yield deployment
    finally:
        deployment.down()
        for folder in (source, dest, state):
            shutil.rmtree(folder, ignore_errors=True)
