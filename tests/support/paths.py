"""Where the repository is, for tests and benches that read its files or run its scripts."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
HOST_SCRIPT = REPO_ROOT / "localstack" / "host.sh"
REAL_SPEECH = REPO_ROOT / "tests" / "data" / "real-speech"  # real recordings with references (see its README)
