#!/usr/bin/env bash
# Base images for the compose tests: the real ones when Docker Hub answers, else stand-ins built here.
#
#   tests/compose/standins.sh    prints BASE_IMAGE=..., LOCALSTACK_IMAGE=... (and TORCH_INDEX_URL= if
#                                PyTorch's index is out of reach) for the compose .env
#
# Docker Hub is unreachable on some machines (CI's among them). Then the Python base is a Debian
# bookworm built with debootstrap (python3.11 from Debian instead of python.org's build), and LocalStack
# is that base plus localstack-core at the pinned version, run like the real image (ready.d hooks
# included). Built once; Docker keeps them for later runs.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$here/../.." && pwd)
real_base=python:3.11-slim-bookworm
# The defaults docker-compose.yml itself names: ${LOCALSTACK_IMAGE:-localstack/localstack:X.Y.Z}.
# shellcheck disable=SC2016 # a literal ${...} to match, not to expand
real_localstack=$(sed -n 's/.*\${LOCALSTACK_IMAGE:-\([^}]*\)}.*/\1/p' "$repo_root/docker-compose.yml" | head -n 1)
localstack_version=${real_localstack##*:}
standin_base=whisper-fleet-standin/python:3.11-bookworm
standin_localstack=whisper-fleet-standin/localstack:$localstack_version

say() { echo "standins.sh: $*" >&2; }

pulled() { docker image inspect "$1" >/dev/null 2>&1 || docker pull -q "$1" >/dev/null 2>&1; }

build_base() {
  docker image inspect "$standin_base" >/dev/null 2>&1 && return 0
  local rootfs
  rootfs=$(mktemp -d)
  say "building $standin_base with debootstrap (~1 min)"
  debootstrap --variant=minbase --include=python3.11,python3.11-venv,python3-pip,ca-certificates,curl \
    bookworm "$rootfs" http://deb.debian.org/debian >"$rootfs.log" 2>&1 || { tail -n 20 "$rootfs.log" >&2; exit 1; }
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | docker import - "$standin_base-rootfs" >/dev/null
  rm -rf "$rootfs" "$rootfs.log"
  # The registries answer containers only through this machine's CA: give the image the host's bundle.
  local context
  context=$(mktemp -d)
  cp /etc/ssl/certs/ca-certificates.crt "$context/"
  cp "$here/standins/base.Dockerfile" "$context/Dockerfile"
  docker build -q --build-arg "ROOTFS=$standin_base-rootfs" -t "$standin_base" "$context" >/dev/null
  rm -rf "$context"
}

build_localstack() {
  docker image inspect "$standin_localstack" >/dev/null 2>&1 && return 0
  say "building $standin_localstack from PyPI's localstack-core (~1 min)"
  # The same pins host LocalStack uses (localstack/host.sh), so both run the same server.
  local pins
  pins=$(bash -c "source <(sed -n '/^LOCALSTACK_VERSION=/p;/^LOCALSTACK_PINS=/p' '$repo_root/localstack/host.sh'); printf '%q ' \"\${LOCALSTACK_PINS[@]}\"")
  docker build -q --build-arg "BASE_IMAGE=$standin_base" --build-arg "PINS=$pins" -t "$standin_localstack" \
    -f "$here/standins/localstack.Dockerfile" "$here/standins" >/dev/null
}

base=$real_base localstack=$real_localstack
if ! pulled "$real_base"; then
  say "$real_base cannot be pulled: using a stand-in"
  build_base
  base=$standin_base
fi
if ! pulled "$real_localstack"; then
  say "$real_localstack cannot be pulled: using a stand-in"
  [ "$base" = "$standin_base" ] || build_base
  build_localstack
  localstack=$standin_localstack
fi
echo "BASE_IMAGE=$base"
echo "LOCALSTACK_IMAGE=$localstack"
# The CPU worker image takes torch from PyTorch's CPU index when it answers, else from PyPI.
if ! curl -sf --max-time 10 -o /dev/null https://download.pytorch.org/whl/cpu/; then
  say "the PyTorch CPU index cannot be reached: the worker image takes torch from PyPI (with CUDA libraries)"
  echo "TORCH_INDEX_URL="
fi
