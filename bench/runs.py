"""The ways of running that the comparison benchmarks time: the whisperx CLI and the fleet's local run."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

from tests.support.paths import REPO_ROOT


def timed(label: str, fn: Callable[[], object]) -> float:
    """Run fn, print and return its wall time."""
    print(f"running {label} ...", flush=True)
    started = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - started
    print(f"  {label}: {elapsed:.1f} s", flush=True)
    return elapsed


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def whisperx_cli(model_dir: str, threads: int, *options: str) -> list[str]:
    """The `whisperx` command line as a user would write it for a CPU, all output formats."""
    return [
        str(REPO_ROOT / ".venv" / "bin" / "whisperx"), "--model", model_dir, "--compute_type", "int8", "--device", "cpu",
        "--batch_size", "8", "--threads", str(threads), "--output_format", "all", *options,
    ]  # fmt: skip


def run_quiet(command: list[str], env: dict[str, str]) -> None:
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_fleet_local(corpus: Path, dest: Path, workers: int, state: Path, env: dict[str, str], settings: dict[str, str]) -> None:
    """`./build.sh local` with only `settings` as FLEET_*/WHISPER_* configuration and its own LocalStack."""
    clean = {k: v for k, v in env.items() if not k.startswith(("AWS_ENDPOINT", "FLEET_", "WHISPER_"))}
    run_env = {**clean, "LOCALSTACK_PORT": str(free_port()), "LOCALSTACK_STATE_DIR": str(state), **settings}
    subprocess.run([str(REPO_ROOT / "build.sh"), "local", str(corpus), str(dest), "--workers", str(workers)],
                   env=run_env, check=True, stdout=subprocess.DEVNULL)  # fmt: skip


def bench_env(**extra: str) -> dict[str, str]:
    """The environment every row runs in; FLEET_MIN_AGE_S=0 comes from bench/__init__.py."""
    return {**os.environ, **extra}


def write_section(name: str, heading: str, about: str, reproduce: str, table: list[str], ratios: str) -> None:
    """Replace BENCHMARKS.md's `<!-- name:start -->` ... `<!-- name:end -->` block (appended under `heading` if new)."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    cores = os.cpu_count() or 2
    section = "\n".join([
        start,
        f"Measured {time.strftime('%Y-%m-%d')} on {cores} cores, {platform.platform()}, Python {platform.python_version()}, "
        f"whisperX {version('whisperx')}, CTranslate2 {version('ctranslate2')}, torch {version('torch')}. {about}",
        f"Reproduce: {reproduce}.",
        "",
        *table,
        "",
        f"Ratios: {ratios}",
        end,
    ])  # fmt: skip
    path = REPO_ROOT / "BENCHMARKS.md"
    text = path.read_text()
    if start in text:
        text = text[: text.index(start)] + section + text[text.index(end) + len(end) :]
    else:
        text += f"\n## {heading}\n\n" + section + "\n"
    path.write_text(text)
