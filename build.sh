#!/usr/bin/env bash
# One entry point for setting up, running and testing whisper-fleet. `./build.sh help` lists it all.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$repo_root"
venv=$repo_root/.venv
# Debian packages: curl (LocalStack health), ffmpeg (decoding), espeak-ng (test speech), shellcheck and
# chromium + chromium-driver (tests: static checks, the dashboard in a real browser).
apt_packages=(curl shellcheck ffmpeg espeak-ng chromium chromium-driver)
# pip's own HTTP cache keeps nothing from registries that send no cache headers (these machines' do not),
# so downloaded wheels are kept here and a fresh clone installs offline from them. Empty: plain pip.
wheelhouse=${FLEET_WHEELHOUSE-$HOME/.cache/whisper-fleet/wheels}
# `./build.sh test unit`: the tests that need no queue server, no model, no Docker engine and no pip (pyproject's markers).
unit_marks="not queue and not model and not compose and not install"
# Compose settings; another file for a second deployment from the same checkout (the compose tests use one).
env_file=${FLEET_ENV_FILE:-.env}

usage() {
  cat <<'USAGE'
usage: ./build.sh COMMAND [ARGS]

  setup                      install Debian packages (as root), the project venv and host LocalStack
  director SRC DEST [FLAGS]  plan SRC against DEST and enqueue what is missing; starts host LocalStack
                             unless AWS_ENDPOINT_URL points at a queue (flags: --dry-run, --retry-failed)
  worker SRC DEST [FLAGS]    transcribe queued files (flags: --until-empty, --max-files N); with
                             FLEET_TRANSFER_BUCKET set and no SRC DEST: a worker on another machine
  asr DEST [--port N]        the front door for Bazarr's Whisper provider on 127.0.0.1:9000 (README: Bazarr);
                             resident workers on DEST (./build.sh worker, or compose) take its jobs first
  local SRC DEST [--workers N]   no Docker: LocalStack, director and N workers until done, with
                             progress and a summary; stops what it started; exit 1 if a file failed;
                             with FLEET_TRANSFER_BUCKET it serves remote workers too (--workers 0: only them)
  build | deploy | scale N | status | logs | down   Docker Compose (settings in .env, FLEET_GPU=1 for GPUs)
  sizing                     the worker count and memory limit deploy would choose here (GPUs by their memory)
  subtitles list|remove [--yes]   the subtitles the fleet wrote beside videos (leaving the media layout)
  dlq list|redrive|purge [--yes] [--reason TEXT] [--path GLOB]   the deployment's dead-letter queue: what
                             failed and why; plan it again with today's settings; drop it
  test-compose [PYTEST ARGS] the deployment on a real Docker engine: build, deploy, scale, kill, reboot
  venv DIR [EXTRAS]          install the project into a virtual environment (used by the Dockerfiles)
  requirements [EXTRAS]      print the dependencies pyproject.toml lists (the Dockerfiles' cached layer)
  localstack start|stop|status   host LocalStack on 127.0.0.1:${LOCALSTACK_PORT:-4566}
  test [PYTEST ARGS]         set up, then run the whole test suite (what CI runs)
  test unit [PYTEST ARGS]    the tests that need no queue server, model, Docker or pip: the inner loop, under a minute
  bench                      planning, enqueue, overhead, start-up and fleet-vs-whisperx benchmarks (~25 min)
  help                       this text
USAGE
}

python_bin() {
  if command -v python3.11 >/dev/null; then echo python3.11; else echo python3; fi
}

install_apt_packages() {
  local missing=()
  for package in "${apt_packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "build.sh: please install: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "build.sh: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

pip_in() {
  # pip of venv DIR with ARGS, silent unless it fails; the grep hides pip's notes about optional local indexes.
  local target=$1 log status=0
  shift
  log=$(mktemp)
  "$target/bin/python" -m pip "$@" --quiet --disable-pip-version-check >"$log" 2>&1 || status=$?
  [ "$status" -eq 0 ] || grep -v '^WARNING: Location' "$log" >&2
  rm -f "$log"
  return "$status"
}

drop_broken_wheels() {
  # A wheel cut short (Ctrl-C or a full disk while pip copied it) would fail every later install, and pip's
  # download skips a file that is already there: drop it so it is fetched again.
  "$(python_bin)" - "$wheelhouse" <<'PY'
import pathlib, sys, zipfile
for path in pathlib.Path(sys.argv[1]).glob("*.whl"):
    try:
        zipfile.ZipFile(path).close()
    except (OSError, zipfile.BadZipFile):
        print(f"build.sh: dropping damaged {path.name}", file=sys.stderr)
        path.unlink()
PY
}

requirements_of() {
  # The dependencies pyproject.toml lists for EXTRAS (comma separated), one per line.
  "$(python_bin)" - "${1:-}" <<'PY'
import sys, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
requirements = list(project["dependencies"])
for extra in filter(None, sys.argv[1].split(",")):
    requirements += project["optional-dependencies"][extra]
print("\n".join(requirements))
PY
}

install_venv() {
  # The one install path, shared by CI, the local run and both Dockerfiles: DIR [EXTRAS].
  local target=$1 extras=${2:-} spec=.
  [ -z "$extras" ] || spec=".[$extras]"
  [ -x "$target/bin/python" ] || "$(python_bin)" -m venv "$target"
  if [ -z "$wheelhouse" ]; then
    pip_in "$target" install -e "$spec" || exit 1
  # Offline from the wheelhouse when it holds everything; else fetch only what it lacks, then install from it.
  elif ! pip_in "$target" install --no-index --find-links "$wheelhouse" -e "$spec" 2>/dev/null; then
    echo "build.sh: downloading packages into $wheelhouse (once; ~4 GB with the worker extras)" >&2
    mkdir -p "$wheelhouse"
    drop_broken_wheels
    pip_in "$target" download --dest "$wheelhouse" "$spec" 'setuptools>=68' wheel || exit 1
    pip_in "$target" install --no-index --find-links "$wheelhouse" -e "$spec" || exit 1
  fi
  "$target/bin/fleet" --version >/dev/null
}

require_free_space() {
  # A fresh venv with torch and whisperX takes ~8 GB (plus ~4 GB for a new wheelhouse): say so before pip fills the disk.
  local need_gb=9 free_gb
  [ -n "$wheelhouse" ] && [ -d "$wheelhouse" ] || need_gb=13
  mkdir -p "$(dirname "$venv")"
  free_gb=$(df -Pk "$(dirname "$venv")" | awk 'NR == 2 { print int($4 / 1048576) }')
  if [ "$free_gb" -lt "$need_gb" ]; then
    echo "build.sh: setting up needs about $need_gb GB free next to $venv, only $free_gb GB is free" >&2
    exit 1
  fi
}

setup_venv() {
  local stamp=$venv/.installed
  # Reinstall only when the dependency list changed; the wheelhouse keeps a reinstall offline and fast.
  if [ -x "$venv/bin/fleet" ] && [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ]; then
    return 0
  fi
  [ -x "$venv/bin/python" ] || require_free_space
  install_venv "$venv" worker,models,test
  touch "$stamp"
}

setup() {
  install_apt_packages
  setup_venv
  localstack/host.sh install
}

run_fleet() {
  # `fleet director|worker` on SRC DEST (`fleet asr` on DEST), against host LocalStack unless AWS_ENDPOINT_URL is set.
  local command=$1
  shift
  local roots=()
  if [ "$command" = worker ] && [ -n "${FLEET_TRANSFER_BUCKET:-}" ] && { [ $# -eq 0 ] || [ "${1#-}" != "$1" ]; }; then
    : # a remote worker: no SRC DEST, its files come through the transfer bucket
  elif [ "$command" = asr ]; then
    [ $# -ge 1 ] || { echo "usage: ./build.sh asr DEST [--port N] (the front door keeps its jobs in DEST/.fleet/asr/)" >&2; exit 2; }
    roots=(--dest "$1")
    shift
  else
    [ $# -ge 2 ] || { echo "usage: ./build.sh $command SRC DEST [FLAGS] (a worker with FLEET_TRANSFER_BUCKET set: no SRC DEST)" >&2; exit 2; }
    roots=(--source "$1" --dest "$2")
    shift 2
  fi
  setup
  if [ -z "${AWS_ENDPOINT_URL:-}" ]; then
    localstack/host.sh start
    export AWS_ENDPOINT_URL=http://127.0.0.1:${LOCALSTACK_PORT:-4566}
  fi
  exec "$venv/bin/fleet" "$command" "${roots[@]}" "$@"
}

compose() {
  # Docker Compose v2 (`docker compose`) where it exists, else v1 (`docker-compose`, Debian 12's); settings from
  # .env (FLEET_ENV_FILE), the GPU override when FLEET_GPU=1, the dashboard when FLEET_DASHBOARD=1 (the front door when FLEET_ASR=1), the
  # read-write source when FLEET_LAYOUT=media, the extra group when MEDIA_GID is set, and LocalStack published
  # on 127.0.0.1 when FLEET_TRANSFER_BUCKET is set (workers on other machines).
  local tool=(docker compose)
  if ! docker compose version >/dev/null 2>&1; then
    command -v docker-compose >/dev/null || { echo "build.sh: this needs Docker Compose (docker compose or docker-compose); without Docker use ./build.sh local" >&2; exit 1; }
    tool=(docker-compose)
  fi
  local files=(-f docker-compose.yml)
  [ ! -f "$env_file" ] || files+=(--env-file "$env_file")
  if gpu_wanted; then
    files+=(-f docker-compose.gpu.yml)
  fi
  if [ "${FLEET_LAYOUT:-$(env_file_value FLEET_LAYOUT)}" = media ]; then
    files+=(-f docker-compose.media.yml)  # workers write subtitles beside the videos: the source read-write
  fi
  if [ -n "${MEDIA_GID:-$(env_file_value MEDIA_GID)}" ]; then
    files+=(-f docker-compose.group.yml)
  fi
  if [ -n "${FLEET_TRANSFER_BUCKET:-$(env_file_value FLEET_TRANSFER_BUCKET)}" ]; then
    files+=(-f docker-compose.ports.yml)  # workers on other machines reach LocalStack through a tunnel to 127.0.0.1
  fi
  if [ "${FLEET_DASHBOARD:-}" = 1 ] || grep -qs '^FLEET_DASHBOARD=1' "$env_file"; then
    files+=(--profile dashboard)
  fi
  if [ "${FLEET_ASR:-}" = 1 ] || grep -qs '^FLEET_ASR=1' "$env_file"; then
    files+=(--profile asr)  # the front door for Bazarr (fleet asr)
  fi
  "${tool[@]}" "${files[@]}" "$@"
}

private_mount_of() {
  # The mount point holding folder $1 when it can propagate nothing (neither shared: nor master: in mountinfo);
  # empty when fine. Docker refuses rslave binds there ("is not a shared or slave mount").
  local real
  real=$(realpath -m "$1")
  awk -v path="$real" '
    { point = $5; gsub(/\\040/, " ", point); optional = ""
      for (i = 7; i <= NF && $i != "-"; i++) optional = optional " " $i
      inside = point == "/" || path == point || index(path, point "/") == 1
      if (inside && length(point) >= length(best)) { best = point; best_optional = optional } }
    END { if (best != "" && best_optional !~ /shared:|master:/) print best }' "${FLEET_MOUNTINFO:-/proc/self/mountinfo}"
}

check_propagation() {
  # Before Docker does: SOURCE_DIR and DEST_DIR are bound with rslave (shares mounted later appear inside).
  local name dir point
  for name in SOURCE_DIR DEST_DIR; do
    dir=${!name:-$(env_file_value "$name")}
    [ -n "$dir" ] || continue
    point=$(private_mount_of "$dir")
    if [ -n "$point" ]; then
      echo "build.sh: $name ($dir) lies on $point, a private mount (a host without systemd?): run 'sudo mount --make-rshared $point' (once per boot), then deploy again" >&2
      exit 1
    fi
  done
}

best_worker_count() {
  # One single-threaded worker per core beat one worker using every core (BENCHMARKS.md); each needs
  # ~1.5 GB, so memory caps the count.
  local cores memory_workers
  cores=$(nproc)
  memory_workers=$(awk '/MemAvailable/ { print int($2 / 1024 / 1500) }' /proc/meminfo)
  [ "$memory_workers" -ge 1 ] || memory_workers=1
  echo $(( cores < memory_workers ? cores : memory_workers ))
}

env_file_value() {
  # The last `NAME=value` of .env (empty when it has none, or there is no .env).
  sed -n "s/^$1=\\([^ #]*\\).*/\\1/p" "$env_file" 2>/dev/null | tail -n 1 || true
}

gpu_worker_mb() {
  # GPU memory one worker needs for whisper model $1 in float16 with a batch of 16, the VAD, an alignment
  # model beside it and its own CUDA context (~400 MB), in MB.
  case "${1:-base}" in
    tiny*) echo 1500 ;;
    base*) echo 2000 ;;
    small*) echo 3000 ;;
    medium*) echo 5000 ;;
    *) echo 7000 ;;  # large-v1/v2/v3, turbo and anything unknown
  esac
}

best_gpu_worker_count() {
  # As many workers as each GPU holds for the model (90 % of its memory; every worker takes the GPU with the
  # most free memory when it starts), never more than the host's memory allows; 1 where nvidia-smi cannot tell.
  local model need gpu_workers memory_workers
  model=${WHISPER_MODEL:-$(env_file_value WHISPER_MODEL)}
  need=$(gpu_worker_mb "${model:-base}")
  gpu_workers=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits 2>/dev/null |
    awk -v need="$need" '{ n += int($1 * 0.9 / need) } END { print n + 0 }')
  [ "${gpu_workers:-0}" -ge 1 ] || gpu_workers=1
  memory_workers=$(awk '/MemAvailable/ { print int($2 / 1024 / 1500) }' /proc/meminfo)
  [ "$memory_workers" -ge 1 ] || memory_workers=1
  echo $(( gpu_workers < memory_workers ? gpu_workers : memory_workers ))
}

gpu_wanted() {
  [ "${FLEET_GPU:-}" = 1 ] || grep -qs '^FLEET_GPU=1' "$env_file"
}

choose_worker_count() {
  # FLEET_WORKERS from the environment or .env wins; empty or unset means: what this machine does best.
  [ -n "${FLEET_WORKERS:-}" ] && return 0
  local from_env_file
  from_env_file=$(env_file_value FLEET_WORKERS)
  [ -n "$from_env_file" ] && return 0
  if gpu_wanted; then
    FLEET_WORKERS=$(best_gpu_worker_count)
    export FLEET_WORKERS
    echo "build.sh: $FLEET_WORKERS GPU workers, as many as the GPUs' memory holds for the model (set FLEET_WORKERS in .env to choose)" >&2
    return 0
  fi
  FLEET_WORKERS=$(best_worker_count)
  export FLEET_WORKERS
  echo "build.sh: $FLEET_WORKERS workers, one per core within memory (set FLEET_WORKERS in .env to choose)" >&2
}

choose_worker_memory() {
  # FLEET_WORKER_MEMORY_MB from the environment or .env wins; else each worker's share of 80 % of the
  # available memory (never below the 1500 MB the worker count assumes), for compose's mem_limit.
  [ -n "${FLEET_WORKER_MEMORY_MB:-}" ] && return 0
  grep -qs '^FLEET_WORKER_MEMORY_MB=[0-9]' "$env_file" && return 0
  local workers=${FLEET_WORKERS:-$(env_file_value FLEET_WORKERS)}
  FLEET_WORKER_MEMORY_MB=$(awk -v n="${workers:-1}" '/MemAvailable/ { m = int($2 / 1024 * 0.8 / (n > 0 ? n : 1)); print (m < 1500 ? 1500 : m) }' /proc/meminfo)
  export FLEET_WORKER_MEMORY_MB
  echo "build.sh: ${FLEET_WORKER_MEMORY_MB} MB memory limit per worker (set FLEET_WORKER_MEMORY_MB in .env to choose)" >&2
}

run_local() {
  [ $# -ge 2 ] || { echo "usage: ./build.sh local SRC DEST [--workers N]" >&2; exit 2; }
  setup
  # Globals: the EXIT trap runs after this function has returned.
  localstack_starter=""
  if [ -z "${AWS_ENDPOINT_URL:-}" ]; then
    if ! localstack/host.sh status; then
      # In the background: it comes up while the workers load their models (fleet local waits for it).
      localstack/host.sh start &
      localstack_starter=$!
    fi
    export AWS_ENDPOINT_URL=http://127.0.0.1:${LOCALSTACK_PORT:-4566}
  fi
  # Not exec: the trap must stop the LocalStack this run started, also after Ctrl-C. Free LocalStack
  # keeps nothing across restarts, so it need not shut down gracefully (saves ~2 s).
  trap 'if [ -n "${localstack_starter:-}" ]; then wait "$localstack_starter" || true; LOCALSTACK_STOP_TIMEOUT_S=0 localstack/host.sh stop; fi' EXIT
  FLEET_WORKERS=${FLEET_WORKERS:-$(best_worker_count)} "$venv/bin/fleet" local "$@"
}

command=${1:-help}
shift || true
case "$command" in
  setup) setup ;;
  director | worker | asr) run_fleet "$command" "$@" ;;
  local) run_local "$@" ;;
  venv) install_venv "${1:?usage: ./build.sh venv DIR [EXTRAS]}" "${2:-}" ;;
  requirements) requirements_of "${1:-}" ;;
  build) compose build "$@" ;;
  deploy)
    # `up` restarts the director, which re-diffs: that is also how an interrupted run resumes by hand.
    check_propagation
    choose_worker_count
    choose_worker_memory
    compose up -d --build "$@"
    ;;
  sizing)
    # What deploy would choose on this machine (workers and each one's memory limit), without deploying.
    choose_worker_count
    choose_worker_memory
    echo "FLEET_WORKERS=${FLEET_WORKERS:-$(env_file_value FLEET_WORKERS)}"
    echo "FLEET_WORKER_MEMORY_MB=$FLEET_WORKER_MEMORY_MB"
    ;;
  scale)
    # The new count also sets each worker's share of the cores (threads = CPUs / FLEET_WORKERS) and of the
    # memory: every worker is recreated with it (a file in progress is handed back within the grace period).
    FLEET_WORKERS=${1:?usage: ./build.sh scale N}
    export FLEET_WORKERS
    choose_worker_memory
    compose up -d --no-deps --scale "worker=$1" worker
    ;;
  status)
    compose ps
    # fleet status inside the deployment: same queue endpoint and dest mount as the director.
    compose run --rm --no-deps --entrypoint fleet director status "$@"
    ;;
  logs) compose logs -f "$@" ;;
  dlq) compose run --rm --no-deps --entrypoint fleet director dlq "$@" ;;
  # A worker's container, with the source read-write (the media layout's mount) whatever the layout is now.
  subtitles) FLEET_LAYOUT=media compose run --rm --no-deps --entrypoint fleet worker subtitles "$@" ;;
  down) compose down "$@" ;;
  localstack) localstack/host.sh "${1:-status}" ;;
  test)
    setup
    # One process more than cores (pytest-xdist): most tests wait on workers, queues, outages and long polls;
    # the Docker engine's tests stay together in one of them (tests/conftest.py). `-n 0` runs all in this one.
    test_processes=${FLEET_TEST_PROCESSES:-$(($(nproc) + 1))}
    if [ "${1:-}" = unit ]; then
      shift
      # The inner loop: no LocalStack, no model, no Docker engine, no pip (the in-process loop tests too).
      exec "$venv/bin/python" -m pytest -n "$test_processes" -m "$unit_marks" "$@"
    fi
    # The compose lifecycle (tests/compose) runs too whenever a Docker engine answers; CI starts one.
    exec "$venv/bin/python" -m pytest -n "$test_processes" "$@"
    ;;
  test-compose)
    setup
    exec "$venv/bin/python" -m pytest tests/compose "$@"
    ;;
  bench)
    setup
    "$venv/bin/python" -m bench.plan_scale
    "$venv/bin/python" -m bench.enqueue_scale
    "$venv/bin/python" -m bench.overhead
    "$venv/bin/python" -m bench.compare  # writes its table into BENCHMARKS.md
    "$venv/bin/python" -m bench.defaults  # so does this one (issue 12: the defaults on real speech)
    "$venv/bin/python" -m bench.startup  # and this one (issue 22: a short run's start-up and shut-down)
    ;;
  help | -h | --help) usage ;;
  *) usage >&2; exit 2 ;;
esac
