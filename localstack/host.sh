#!/usr/bin/env bash
# LocalStack on the host, without Docker: for the tests and for `./build.sh local`.
#
#   localstack/host.sh install   install LocalStack into its own venv (once; reused afterwards)
#   localstack/host.sh start     start SQS and S3 on 127.0.0.1:$LOCALSTACK_PORT, wait until healthy, create the queues
#   localstack/host.sh stop      stop the server this script started
#   localstack/host.sh status    exit 0 if it answers, 1 if not
#
# Environment: LOCALSTACK_PORT (4566), LOCALSTACK_VENV (a cache folder shared by clones),
# LOCALSTACK_STATE_DIR (pid and log; .run/localstack-$PORT), LOCALSTACK_START_TIMEOUT_S (60),
# LOCALSTACK_STOP_TIMEOUT_S (5; then SIGKILL),
# plus FLEET_QUEUE_NAME / FLEET_MAX_RECEIVE_COUNT for the queues it creates.
set -euo pipefail

# 4.13.1 is the last release that runs on Python 3.11 (4.14+ use 3.12 syntax in SQS) and the
# version of the token-free image in docker-compose.yml. Its own venv: its pins clash with ours.
LOCALSTACK_VERSION=4.13.1
LOCALSTACK_PINS=("localstack-core[runtime]==${LOCALSTACK_VERSION}" "cbor2<6" "pyopenssl<24.3" "cryptography<44" service_identity)

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
port=${LOCALSTACK_PORT:-4566}
venv=${LOCALSTACK_VENV:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/whisper-fleet/localstack-${LOCALSTACK_VERSION}-py3.11}
state_dir=${LOCALSTACK_STATE_DIR:-$repo_root/.run/localstack-$port}
start_timeout_s=${LOCALSTACK_START_TIMEOUT_S:-60}
pid_file=$state_dir/localstack.pid
log_file=$state_dir/localstack.log
endpoint=http://127.0.0.1:$port

die() { echo "localstack/host.sh: $*" >&2; exit 1; }

healthy() {
  # SQS and S3 (the transfer bucket) must say available/running; a bare port answering is not enough.
  local health
  health=$(curl -sf --max-time 2 "$endpoint/_localstack/health" 2>/dev/null) || return 1
  grep -Eq '"sqs": *"(available|running)"' <<<"$health" && grep -Eq '"s3": *"(available|running)"' <<<"$health"
}

install() {
  if [ -x "$venv/bin/python" ] && [ -f "$venv/.installed-$LOCALSTACK_VERSION" ]; then
    return 0
  fi
  echo "localstack/host.sh: installing LocalStack $LOCALSTACK_VERSION into $venv" >&2
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  python3.11 -m venv "$venv" 2>/dev/null || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${LOCALSTACK_PINS[@]}" 2>&1 | grep -v '^WARNING: Location' >&2 || true
  "$venv/bin/python" -c "import localstack.runtime.main" || die "LocalStack install failed"
  touch "$venv/.installed-$LOCALSTACK_VERSION"
}

create_queues() {
  AWS_ENDPOINT_URL=$endpoint FLEET_QUEUE_CONFIG=${FLEET_QUEUE_CONFIG:-$repo_root/create_queue.json} \
    "$venv/bin/python" "$repo_root/localstack/init/ready.d/create_queues.py" >&2
}

start() {
  install
  if healthy; then
    echo "localstack/host.sh: reusing the LocalStack already answering on $endpoint" >&2
    create_queues
    return 0
  fi
  mkdir -p "$state_dir/volume"
  # DNS server and certificate download need the internet; path-style queue URLs need no DNS.
  # Started from the state dir so a `localstack/` folder in the cwd can never shadow the package.
  (
    cd "$state_dir"
    SERVICES=sqs,s3 GATEWAY_LISTEN=127.0.0.1:$port DNS_ADDRESS=0 SKIP_SSL_CERT_DOWNLOAD=1 \
      SQS_ENDPOINT_STRATEGY=path LOCALSTACK_VOLUME_DIR=$state_dir/volume DISABLE_EVENTS=1 \
      setsid nohup "$venv/bin/python" -m localstack.runtime.main >"$log_file" 2>&1 &
    echo $! >"$pid_file"
  )
  local waited=0
  until healthy; do
    if ! kill -0 "$(cat "$pid_file")" 2>/dev/null; then
      tail -n 20 "$log_file" >&2
      die "LocalStack exited during start (log: $log_file)"
    fi
    if [ "$waited" -ge $((start_timeout_s * 10)) ]; then
      stop
      die "LocalStack not healthy after ${start_timeout_s}s (log: $log_file)"
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  create_queues
  echo "localstack/host.sh: LocalStack $LOCALSTACK_VERSION ready on $endpoint (pid $(cat "$pid_file"))" >&2
}

stop() {
  [ -f "$pid_file" ] || return 0
  local pid
  pid=$(cat "$pid_file")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    local ticks=$(( ${LOCALSTACK_STOP_TIMEOUT_S:-5} * 10 ))
    for _ in $(seq 1 "$ticks"); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$pid_file"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) healthy ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
