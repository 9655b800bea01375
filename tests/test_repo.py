"""Static checks of the repository: README documents every setting, scripts pass shellcheck."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

from fleet.settings import environment_names
from frontdoor.settings import front_door_environment_names
from tests.support.paths import REPO_ROOT

SCRIPTS = ["build.sh", ".ci/run", "localstack/host.sh"]


def test_readme_settings_table_lists_exactly_the_settings():
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", section, flags=re.MULTILINE))
    assert documented == environment_names() | front_door_environment_names()


def test_readme_gives_the_two_commands_near_the_top():
    head = (REPO_ROOT / "README.md").read_text().splitlines()[:30]
    assert any(line.startswith("./build.sh local ") for line in head)
    assert "./build.sh test" in head
    assert "./build.sh test" in (REPO_ROOT / ".ci" / "run").read_text()


def test_shell_scripts_pass_shellcheck():
    assert shutil.which("shellcheck"), "shellcheck missing: ./build.sh setup installs it"
    result = subprocess.run(["shellcheck", *SCRIPTS], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_build_sh_help_lists_its_commands():
    result = subprocess.run([str(REPO_ROOT / "build.sh"), "help"], capture_output=True, text=True, check=True)
    for command in ("setup", "director", "worker", "local", "localstack", "test", "bench"):
        assert re.search(rf"^  {command}\b", result.stdout, flags=re.MULTILINE), command


def test_code_passes_ruff():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


LAYOUT_PACKAGES = ("app", "frontdoor", "director", "worker", "fleet")


def readme_layout() -> dict[str, set[str]]:
    """README's Layout block as folder -> the modules and subfolders it lists (one a line, nested by indent)."""
    readme = (REPO_ROOT / "README.md").read_text()
    block = readme.split("\n## Layout\n", 1)[1].split("```\n", 2)[1]
    listed: dict[str, set[str]] = {}
    path: list[tuple[int, str]] = []  # (indent, folder) of the folders the current line sits in
    for line in block.splitlines():
        name = line.split()[0] if line.strip() else ""
        indent = len(line) - len(line.lstrip())
        if not re.fullmatch(r"[a-z_][a-z0-9_]*/?", name):
            continue  # a description's continuation line
        while path and path[-1][0] >= indent:
            path.pop()
        parent = "/".join(folder for _, folder in path)
        if parent:
            listed.setdefault(parent, set()).add(name.rstrip("/"))
        if name.endswith("/"):
            path.append((indent, name.rstrip("/")))
            listed.setdefault("/".join(folder for _, folder in path), set())
    return listed


def test_readme_layout_names_every_module_and_nothing_else():
    listed = readme_layout()
    on_disk: dict[str, set[str]] = {}
    for package in LAYOUT_PACKAGES:
        for init in (REPO_ROOT / package).rglob("__init__.py"):
            folder = init.parent
            modules = {p.stem for p in folder.glob("*.py") if p.stem != "__init__"}
            subfolders = {p.parent.name for p in folder.glob("*/__init__.py")}
            on_disk[str(folder.relative_to(REPO_ROOT))] = modules | subfolders
    assert {folder: listed.get(folder, set()) for folder in on_disk} == on_disk
