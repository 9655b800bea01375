"""The compose deployment for tests/compose: built and started once, torn down at the end."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.compose import (
    PGID,
    PROJECT,
    PUID,
    Deployment,
    base_images,
    docker_answers,
    fill_source,
    shared_folder,
    torn_down_around,
    write_env_file,  # fmt: skip
)
from tests.support.ports import free_port


def require_docker() -> None:
    """No engine: skipped on a developer's machine, a failure in CI (which starts one: .ci/run)."""
    if docker_answers():
        return
    if os.environ.get("CI"):
        pytest.fail("no Docker engine answers; .ci/run starts one with tests/compose/engine.sh start")
    pytest.skip("no Docker engine answers (tests/compose/engine.sh start starts one)")


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
    with torn_down_around(deployment, source, dest, state):
        deployment.references = fill_source(source)
        yield deployment
