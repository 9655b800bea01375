"""The install path every clone and CI share: `./build.sh venv` with a wheelhouse (the core package, no extras)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.paths import REPO_ROOT

pytestmark = pytest.mark.install


def build_venv(target: Path, wheelhouse: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["./build.sh", "venv", str(target)],
        cwd=REPO_ROOT,
        env={**os.environ, "FLEET_WHEELHOUSE": str(wheelhouse), **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_wheelhouse_fills_once_then_installs_offline_and_heals_a_cut_wheel(tmp_path):
    wheelhouse = tmp_path / "wheels"
    first = build_venv(tmp_path / "first", wheelhouse)
    assert first.returncode == 0, first.stderr
    assert "downloading packages into" in first.stderr
    pydantic_wheel = next(wheelhouse.glob("pydantic-2*.whl"))

    # No registry at all: a second clone's install must come from the wheelhouse alone.
    offline = build_venv(tmp_path / "offline", wheelhouse, PIP_INDEX_URL="http://127.0.0.1:9/simple", PIP_CONFIG_FILE="/dev/null")
    assert offline.returncode == 0, offline.stderr
    assert "downloading" not in offline.stderr

    # A wheel cut short (Ctrl-C or a full disk during the copy) must not break every later install.
    os.truncate(pydantic_wheel, 4096)
    healed = build_venv(tmp_path / "healed", wheelhouse)
    assert healed.returncode == 0, healed.stderr
    assert f"dropping damaged {pydantic_wheel.name}" in healed.stderr
    check = subprocess.run([tmp_path / "healed/bin/python", "-c", "import pydantic, app.cli"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
