"""Shared fixtures: one real LocalStack per session (plus moto's server), fresh queues per test."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fleet.settings import FleetSettings
from fleet.transport.queue import JobQueue
from fleet.transport.sqs import SqsQueue
from tests.support.paths import HOST_SCRIPT
from tests.support.ports import free_port

# Test corpora are written moments before the director runs: none of them is a copy still in progress.
# The settling tests set FLEET_MIN_AGE_S (or min_age_s) themselves.
os.environ.setdefault("FLEET_MIN_AGE_S", "0")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `long` first: a parallel run must not start a many-minute test while its other processes finish."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)  # stable: file order kept otherwise


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Parallel runs (pytest-xdist): each test is a unit of work, except the Docker engine's, which run in one process.

    The compose deployments share one project name and the engine's images, and a module's tests follow one
    deployment in order. xdist's own `loadgroup` cannot say so here: it renames items by `item._nodeid`, which
    pytest 9.2 no longer reads.
    """
    from xdist.scheduler import LoadScopeScheduling

    class DockerTestsTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "docker-engine" if nodeid.startswith("tests/compose/") else nodeid

    return DockerTestsTogether(config, log)


@pytest.fixture(scope="session")
def localstack_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real LocalStack 4.13.1 on the host, started once for the whole test session."""
    port = free_port()
    env = {**os.environ, "LOCALSTACK_PORT": str(port), "LOCALSTACK_STATE_DIR": str(tmp_path_factory.mktemp("localstack"))}
    subprocess.run([str(HOST_SCRIPT), "start"], env=env, check=True, timeout=600)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        subprocess.run([str(HOST_SCRIPT), "stop"], env=env, check=False, timeout=60)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's SQS server: a second implementation that also enforces AWS's limits."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(params=["localstack", "moto"])
def sqs_endpoint(request: pytest.FixtureRequest) -> str:
    """Runs a contract test once against each SQS implementation."""
    return request.getfixturevalue(f"{request.param}_endpoint")


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., FleetSettings]:
    """Settings for one test: its own source/dest folders and a queue name nobody else uses."""
    queue_name = f"t-{uuid.uuid4().hex[:12]}"

    def build(endpoint: str | None = None, **overrides: object) -> FleetSettings:
        values: dict[str, object] = {
            "source_dir": tmp_path / "source",
            "dest_dir": tmp_path / "dest",
            "queue_name": queue_name,
            "aws_endpoint_url": endpoint,
            "queue_max_attempts": 2,
        }
        values.update(overrides)
        return FleetSettings(**values)

    return build


@pytest.fixture
def open_queue() -> Callable[[FleetSettings], JobQueue]:
    """Connect to (and create, idempotently) the queues the given settings describe."""

    def connect(settings: FleetSettings) -> JobQueue:
        spec = settings.queue_spec()
        queue = SqsQueue.connect(settings.queue_endpoint(), spec)
        queue.ensure()
        return queue

    return connect


@pytest.fixture(scope="session")
def speech_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """English sentences in several formats and folders, a French one, a long one (built once)."""
    from tests.support import speech

    root = tmp_path_factory.mktemp("speech")
    for rel, text in speech.ENGLISH.items():
        speech.speak(text, root / "english" / rel)
    speech.speak(speech.FRENCH, root / "french" / "bonjour.wav", voice="fr")
    speech.speak(speech.LONG_TEXT, root / "long" / "long talk.wav")
    return root


@pytest.fixture(scope="session")
def tiny_align_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(wav2vec2 model folder, NLTK data folder) for offline alignment."""
    from tests.support.align_model import build_tiny_align_model, offline_punkt

    root = tmp_path_factory.mktemp("align")
    return build_tiny_align_model(root / "wav2vec2-tiny"), offline_punkt(root / "nltk_data")


@pytest.fixture
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One models folder for the session: the bundled base model is joined there once."""
    return tmp_path_factory.getbasetemp() / "models"
