"""Static checks of the Docker deployment: compose (also as docker-compose 1.29 reads it), Dockerfiles, .env.

The deployment itself runs on a real engine in tests/compose.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from fleet.settings import environment_names
from frontdoor.settings import front_door_environment_names
from tests.support.paths import REPO_ROOT

COMPOSE_FILES = ["docker-compose.yml", "docker-compose.gpu.yml", "docker-compose.ports.yml", "docker-compose.media.yml",
                 "docker-compose.group.yml"]  # fmt: skip
# Variables compose itself uses, not the fleet's settings.
COMPOSE_ONLY = {"SOURCE_DIR", "DEST_DIR", "PUID", "PGID", "WORKER_VARIANT", "FLEET_GPU", "FLEET_IMAGE_TAG", "FLEET_DASHBOARD",
                "FLEET_ASR", "LOCALSTACK_PORT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "HF_HUB_OFFLINE", "BASE_IMAGE",
                "TORCH_INDEX_URL", "LOCALSTACK_IMAGE", "FLEET_WORKER_MEMORY_MB", "MEDIA_GID", "AWS_ENDPOINT_URL_S3"}  # fmt: skip


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())


def interpolated(text: str) -> set[str]:
    return set(re.findall(r"\$\{([A-Z0-9_]+)", text))


def test_services_images_and_the_pinned_localstack(compose):
    services = compose["services"]
    assert set(services) == {"localstack", "director", "preload", "worker", "dashboard", "asr"}
    for optional in ("dashboard", "asr"):  # started on request, and published on this host only
        assert services[optional]["profiles"] == [optional]
        assert all(p.startswith("127.0.0.1:") for p in services[optional]["ports"])
    assert services["asr"]["image"] == services["worker"]["image"]  # its detector needs faster-whisper
    (dashboard_dest,) = services["dashboard"]["volumes"]
    assert dashboard_dest["target"] == "/dest" and dashboard_dest["read_only"] is True
    assert services["localstack"]["image"] == "${LOCALSTACK_IMAGE:-localstack/localstack:4.13.1}"
    for name in COMPOSE_FILES:
        assert ":latest" not in (REPO_ROOT / name).read_text()
    for name in ("director", "worker", "preload"):
        assert services[name]["build"]["dockerfile"] in ("director/Dockerfile", "worker/Dockerfile")


def test_source_is_read_only_and_containers_run_as_puid(compose):
    for name in ("director", "worker"):
        service = compose["services"][name]
        source, dest = service["volumes"][:2]
        assert (source["source"], source["target"], source["read_only"]) == ("${SOURCE_DIR:?set SOURCE_DIR in .env}",
                                                                              "/source", True)  # fmt: skip
        assert (dest["source"], dest["target"], dest.get("read_only", False)) == ("${DEST_DIR:?set DEST_DIR in .env}",
                                                                                   "/dest", False)  # fmt: skip
        # A share mounted on the host after Docker started must appear in the running containers (a NAS rebooting)
        assert source["bind"]["propagation"] == dest["bind"]["propagation"] == "rslave"
        assert service["user"] == "${PUID:-1000}:${PGID:-1000}"
        assert service["depends_on"]["localstack"]["condition"] == "service_healthy"
    assert "models:/models" in compose["services"]["worker"]["volumes"]


def test_localstack_is_healthy_only_after_the_queues_exist(compose):
    localstack = compose["services"]["localstack"]
    assert "/_localstack/init/ready" in " ".join(localstack["healthcheck"]["test"])
    mounts = dict(v.rsplit(":", 2)[:2] for v in localstack["volumes"])
    assert mounts["./create_queue.json"] == localstack["environment"]["FLEET_QUEUE_CONFIG"]
    assert mounts["./localstack/init/ready.d"] == "/etc/localstack/init/ready.d"
    hook = (REPO_ROOT / "localstack" / "init" / "ready.d" / "create_queues.py").read_text()
    assert 'os.environ.get("FLEET_QUEUE_CONFIG") or "/etc/whisper-fleet/create_queue.json"' in hook
    assert "ports" not in localstack  # published only with docker-compose.ports.yml, on 127.0.0.1
    ports = yaml.safe_load((REPO_ROOT / "docker-compose.ports.yml").read_text())["services"]["localstack"]["ports"]
    assert all(p.startswith("127.0.0.1:") for p in ports)


def test_workers_scale_restart_and_stop_gracefully(compose):
    worker = compose["services"]["worker"]
    assert worker["deploy"]["replicas"] == "${FLEET_WORKERS:-1}"
    assert worker["restart"] == "unless-stopped"
    grace = int(re.search(r"\d+", worker["environment"]["FLEET_GRACE_PERIOD_S"].split(":-")[1]).group())
    assert int(worker["stop_grace_period"].rstrip("s")) > grace
    assert worker["depends_on"]["preload"]["condition"] == "service_completed_successfully"
    gpu = yaml.safe_load((REPO_ROOT / "docker-compose.gpu.yml").read_text())["services"]["worker"]
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert gpu["build"]["args"]["VARIANT"] == "cuda"


def test_every_variable_is_a_setting_or_documented_and_in_env_example(compose):
    settings = environment_names() | front_door_environment_names() | {"AWS_REGION"}
    used = set()
    for name in COMPOSE_FILES:
        used |= interpolated((REPO_ROOT / name).read_text())
    for service in compose["services"].values():
        for key in service.get("environment", {}):
            if key.startswith(("FLEET_", "WHISPER_")):
                assert key in settings, f"{key} is passed to a container but is no setting"
    assert used - settings <= COMPOSE_ONLY, used - settings - COMPOSE_ONLY
    example = set(re.findall(r"^([A-Z0-9_]+)=", (REPO_ROOT / ".env.example").read_text(), flags=re.MULTILINE))
    assert used <= example, used - example
    readme = (REPO_ROOT / "README.md").read_text()
    for name in COMPOSE_ONLY:
        assert f"`{name}`" in readme, f"{name} is not documented in README"


def test_dockerfiles_share_the_ci_install_path_and_run_as_non_root():
    for name in ("director/Dockerfile", "worker/Dockerfile"):
        text = (REPO_ROOT / name).read_text()
        assert text.startswith("#") and "ARG BASE_IMAGE=python:3.11-slim-bookworm\n" in text
        assert re.findall(r"^FROM (.*)$", text, flags=re.MULTILINE) == ["${BASE_IMAGE} AS requirements", "${BASE_IMAGE}"]
        # Plain pip inside an image: the wheelhouse would only bloat the layer.
        assert "RUN FLEET_WHEELHOUSE= ./build.sh venv /opt/venv" in text
        assert re.search(r"^USER 1000:1000$", text, flags=re.MULTILINE)
    worker = (REPO_ROOT / "worker/Dockerfile").read_text()
    assert "ffmpeg" in worker and "worker,models" in worker and "ARG VARIANT=cpu" in worker
    assert "ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in worker
    director = (REPO_ROOT / "director/Dockerfile").read_text()
    assert "RUN FLEET_WHEELHOUSE= ./build.sh venv /opt/venv\n" in director  # no extras: no torch
    assert "COPY worker" not in director


def test_only_the_media_layout_lets_workers_write_the_source_and_only_media_gid_adds_a_group(compose):
    media = yaml.safe_load((REPO_ROOT / "docker-compose.media.yml").read_text())["services"]
    assert set(media) == {"worker"}  # the director only reads the source, in every layout
    (source,) = media["worker"]["volumes"]
    base_source = compose["services"]["worker"]["volumes"][0]
    assert source == {**base_source, "read_only": False}  # the same mount, read-write: compose merges it by target
    group = yaml.safe_load((REPO_ROOT / "docker-compose.group.yml").read_text())["services"]
    assert all(service["group_add"] == ["${MEDIA_GID:?set MEDIA_GID in .env}"] for service in group.values())
    build = (REPO_ROOT / "build.sh").read_text()
    assert "-f docker-compose.media.yml" in build and "-f docker-compose.group.yml" in build


def test_compose_file_has_no_v2_only_keys_and_every_service_that_runs_for_long_has_a_healthcheck(compose):
    assert "name" not in compose  # docker-compose 1.29 (Debian 12) rejects a top-level name
    for service in ("localstack", "director", "worker", "dashboard"):
        assert compose["services"][service]["restart"] == "unless-stopped"
        assert compose["services"][service]["healthcheck"]["test"]
    for service, command in (("director", "director"), ("worker", "worker"), ("dashboard", "dashboard")):
        assert compose["services"][service]["healthcheck"]["test"][:4] == ["CMD", "fleet", command, "--check"]
    assert compose["services"]["director"]["environment"]["FLEET_WATCH_INTERVAL_S"] == "${FLEET_WATCH_INTERVAL_S:-300}"


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose 1.x not installed (.ci/run installs it)")
def test_docker_compose_v1_reads_the_files_cleanly(tmp_path):
    env = tmp_path / "compose.env"
    env.write_text(f"SOURCE_DIR={tmp_path}\nDEST_DIR={tmp_path}\nMEDIA_GID=1234\n")
    overrides = ("docker-compose.gpu.yml", "docker-compose.ports.yml", "docker-compose.media.yml", "docker-compose.group.yml")
    for extra in ([], *(["-f", name] for name in overrides)):
        command = ["docker-compose", "--env-file", str(env), "-f", "docker-compose.yml", *extra, "--profile", "dashboard"]
        result = subprocess.run([*command, "config", "-q"], cwd=REPO_ROOT, capture_output=True, text=True)
        assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    for extra in ([], ["-f", "docker-compose.gpu.yml"]):  # the remote machine's file, with its .env as shipped
        command = ["docker-compose", "--env-file", ".env.remote.example", "-f", "docker-compose.remote.yml", *extra]
        result = subprocess.run([*command, "config", "-q"], cwd=REPO_ROOT, capture_output=True, text=True)
        assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_a_remote_worker_mounts_neither_root_publishes_nothing_and_needs_only_its_env():
    remote = yaml.safe_load((REPO_ROOT / "docker-compose.remote.yml").read_text())
    worker = remote["services"]["worker"]
    assert worker["volumes"] == ["models:/models"] and "ports" not in worker
    assert not {"FLEET_SOURCE_DIR", "FLEET_DEST_DIR"} & set(worker["environment"])  # what makes it remote
    assert worker["environment"]["FLEET_TRANSFER_BUCKET"].startswith("${FLEET_TRANSFER_BUCKET:?")
    assert worker["healthcheck"]["test"][:4] == ["CMD", "fleet", "worker", "--check"] and worker["restart"] == "unless-stopped"
    used = interpolated((REPO_ROOT / "docker-compose.remote.yml").read_text())
    assert used - environment_names() <= COMPOSE_ONLY, used - environment_names() - COMPOSE_ONLY
    example = set(re.findall(r"^([A-Z0-9_]+)=", (REPO_ROOT / ".env.remote.example").read_text(), flags=re.MULTILINE))
    assert {"AWS_ENDPOINT_URL", "FLEET_TRANSFER_BUCKET", "FLEET_QUEUE_NAME", "WHISPER_MODEL"} <= example


@pytest.mark.install
def test_the_director_image_install_path_works_and_stays_small(tmp_path):
    # The exact command the director's Dockerfile runs, into a fresh venv
    venv = tmp_path / "venv"
    subprocess.run([str(REPO_ROOT / "build.sh"), "venv", str(venv)], check=True, timeout=600)
    version = subprocess.run([str(venv / "bin" / "fleet"), "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("whisper-fleet ")
    assert not list((venv / "lib").glob("python3*/site-packages/torch"))
    # The director's media-layout subtitle check reads sidecar languages in any code style with the core alone
    check = ("from fleet.media.subtitles import matching_sidecar; "
             "assert matching_sidecar('Film.mkv', ['Film.ger.srt'], 'de') == 'Film.ger.srt'")
    subprocess.run([str(venv / "bin" / "python"), "-c", check], check=True, timeout=60)


def test_preload_is_root_only_to_hand_over_the_models_volume(compose):
    entry = compose["services"]["preload"]["entrypoint"][-1]
    assert entry.index("chown -R ${PUID:-1000}:${PGID:-1000} /models") < entry.index("exec setpriv --reuid=${PUID:-1000}")
    assert entry.endswith("fleet preload")


def test_each_worker_has_a_memory_limit_deploy_sizes(compose):
    worker = compose["services"]["worker"]
    assert worker["mem_limit"] == worker["memswap_limit"] == "${FLEET_WORKER_MEMORY_MB:-4096}m"
    assert "choose_worker_memory" in (REPO_ROOT / "build.sh").read_text().split("deploy)", 1)[1].split(";;", 1)[0]


def sizing(tmp_path, gpus_mb: list[int] | None, **env: str) -> dict[str, int]:
    """What `./build.sh sizing` chooses, with a stand-in nvidia-smi reporting GPUs of `gpus_mb` (None: no driver)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    stand_in = bin_dir / "nvidia-smi"
    stand_in.write_text("#!/bin/sh\n" + "".join(f"echo {mb}\n" for mb in gpus_mb or []) + ("" if gpus_mb else "exit 9\n"))
    stand_in.chmod(0o755)
    clean = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "FLEET_ENV_FILE": str(tmp_path / ".env")}
    result = subprocess.run([str(REPO_ROOT / "build.sh"), "sizing"], capture_output=True, text=True, check=True,
                            env={**clean, **env})  # fmt: skip
    return {name: int(value) for name, value in (line.split("=") for line in result.stdout.split())}


def test_gpu_workers_are_sized_by_gpu_memory_and_model(tmp_path):
    # Two GPUs of 24 and 12 GB: base fits 11 + 5 workers, large-v3 3 + 1 (host memory permitting)
    available_kb = int(next(line for line in open("/proc/meminfo") if line.startswith("MemAvailable")).split()[1])
    memory_workers = available_kb // 1024 // 1500  # the host's cap (it moves a little between two reads)
    base = sizing(tmp_path, [24576, 12288], FLEET_GPU="1")["FLEET_WORKERS"]
    large = sizing(tmp_path, [24576, 12288], FLEET_GPU="1", WHISPER_MODEL="large-v3")["FLEET_WORKERS"]
    assert min(16, memory_workers - 1) <= base <= min(16, memory_workers + 1) and large == min(4, memory_workers)
    # The model in .env counts too; no driver answering means one worker, not a failed deploy
    (tmp_path / ".env").write_text("FLEET_GPU=1\nWHISPER_MODEL=medium\n")
    assert sizing(tmp_path, [24576])["FLEET_WORKERS"] == min(4, memory_workers)
    assert sizing(tmp_path, None)["FLEET_WORKERS"] == 1
    # Without FLEET_GPU the cores decide, as before
    (tmp_path / ".env").write_text("")
    assert sizing(tmp_path, [24576])["FLEET_WORKERS"] <= int(subprocess.check_output(["nproc"]))


@pytest.mark.parametrize(("root_line", "refused"), [
    ("22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw", True),  # Alpine, a NAS, a bare VM: / private
    ("22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw", False),  # systemd's default
])  # fmt: skip
def test_deploy_finds_a_private_mount_under_the_roots_before_docker_does(tmp_path, root_line, refused):
    mountinfo, bin_dir = tmp_path / "mountinfo", tmp_path / "bin"
    mountinfo.write_text(f"{root_line}\n30 22 8:2 / /mnt/nas rw shared:5 - ext4 /dev/sdb1 rw\n")
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path / 'docker.log'}\n")  # stands in for Docker
    (bin_dir / "docker").chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "FLEET_MOUNTINFO": str(mountinfo),
           "FLEET_ENV_FILE": str(tmp_path / "none.env"), "SOURCE_DIR": "/srv/media", "DEST_DIR": "/mnt/nas/transcripts",
           "FLEET_WORKERS": "1", "FLEET_WORKER_MEMORY_MB": "2048"}  # fmt: skip
    result = subprocess.run([str(REPO_ROOT / "build.sh"), "deploy"], env=env, capture_output=True, text=True, timeout=60)
    if refused:
        assert result.returncode == 1 and not (tmp_path / "docker.log").exists()
        assert result.stderr.strip() == (
            "build.sh: SOURCE_DIR (/srv/media) lies on /, a private mount (a host without systemd?): "
            "run 'sudo mount --make-rshared /' (once per boot), then deploy again"
        )
    else:
        assert " up -d --build" in (tmp_path / "docker.log").read_text(), result.stderr


def test_build_sh_subtitles_runs_in_a_worker_container_with_the_source_writable(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path / 'docker.log'}\n")  # stands in for Docker
    (bin_dir / "docker").chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "FLEET_ENV_FILE": str(tmp_path / "none.env"),
           "FLEET_LAYOUT": "mirror"}  # fmt: skip
    result = subprocess.run([str(REPO_ROOT / "build.sh"), "subtitles", "remove", "--yes"], env=env, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    run = (tmp_path / "docker.log").read_text().splitlines()[-1]
    assert "-f docker-compose.media.yml" in run
    assert run.endswith("run --rm --no-deps --entrypoint fleet worker subtitles remove --yes")
