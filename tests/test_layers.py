"""The architecture as contracts, checked by import-linter: layers, no speech stack in the core, shared test helpers."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.paths import REPO_ROOT


def test_the_layer_contract_holds():
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint_imports, "import-linter missing: ./build.sh setup installs the test extra"
    result = subprocess.run([lint_imports], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 7 kept, 0 broken." in result.stdout
    assert "the core and the director never load the speech stack KEPT" in result.stdout


def test_the_director_image_holds_no_worker_code():
    dockerfile = (REPO_ROOT / "director" / "Dockerfile").read_text()
    assert "COPY worker" not in dockerfile
    assert "COPY app ./app" in dockerfile and "COPY director ./director" in dockerfile
