#!/usr/bin/env bash
# A Docker engine for the compose tests (CI has none running):
#
#   tests/compose/engine.sh start     start dockerd unless one answers; records that this script started it
#   tests/compose/engine.sh restart   stop the engine and start it again (a host reboot, as containers see it)
#   tests/compose/engine.sh stop      stop dockerd only if this script started it
#
# Installs Debian's docker.io, docker-compose and debootstrap when they are missing (as root).
set -euo pipefail

state_dir=${FLEET_ENGINE_STATE_DIR:-/tmp/whisper-fleet-engine}
started_marker=$state_dir/started-here
log_file=$state_dir/dockerd.log
docker_pid_file=/var/run/docker.pid

say() { echo "engine.sh: $*" >&2; }

answers() { timeout 10 docker info >/dev/null 2>&1; }

install_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || missing+=(docker-compose)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || { say "please install: sudo apt-get install ${missing[*]}"; exit 1; }
  say "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

wait_until() {
  # wait_until SECONDS COMMAND...: poll COMMAND every 0.2 s.
  local ticks=$(( $1 * 5 ))
  shift
  for _ in $(seq 1 "$ticks"); do
    "$@" && return 0
    sleep 0.2
  done
  return 1
}

launch() {
  mkdir -p "$state_dir"
  # systemd makes / a shared mount on every usual host; a bare VM leaves it private, and Docker then
  # refuses the rslave bind propagation that docker-compose.yml asks for SOURCE_DIR and DEST_DIR.
  mount --make-rshared / 2>/dev/null || say "could not make / a shared mount: rslave binds will be refused"
  setsid nohup dockerd >>"$log_file" 2>&1 </dev/null &
  wait_until 60 answers || { tail -n 20 "$log_file" >&2; say "dockerd did not answer within 60 s (log: $log_file)"; exit 1; }
}

start() {
  install_packages
  answers && return 0
  say "starting dockerd (log: $log_file)"
  launch
  touch "$started_marker"
}

dockerd_gone() { ! pgrep -x dockerd >/dev/null; }

stop_daemon() {
  local pid
  pid=$(cat "$docker_pid_file" 2>/dev/null || pgrep -x dockerd | head -n 1 || true)
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  # dockerd stops every container first (each within its stop timeout).
  wait_until 90 dockerd_gone || { say "dockerd did not stop within 90 s"; exit 1; }
}

restart() {
  if command -v systemctl >/dev/null && systemctl is-active --quiet docker 2>/dev/null; then
    systemctl restart docker
    wait_until 60 answers
    return
  fi
  stop_daemon
  launch
}

stop() {
  [ -f "$started_marker" ] || return 0
  stop_daemon
  rm -f "$started_marker"
}

case "${1:-}" in
  start) start ;;
  restart) restart ;;
  stop) stop ;;
  *) echo "usage: $0 start|restart|stop" >&2; exit 2 ;;
esac
