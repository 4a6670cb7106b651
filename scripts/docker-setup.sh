#!/usr/bin/env bash
# Gets this machine ready to build and run the image, for `npm run test:docker` and CI (.ci/run):
#   1. a Docker engine: Debian's docker.io when there is none (a client alone does not count),
#      started in the background when it is not running;
#   2. the base image node:22-bookworm-slim: when it is missing (no container registry is
#      reachable here), a local stand-in built from Debian and npm packages by
#      ../shared/tools/node-base-image.sh.
# Safe to run again: each step is skipped when its result is already there.
# Needs root (apt-get, dockerd, debootstrap) the first time.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_IMAGE=${BASE_IMAGE:-node:22-bookworm-slim}
NODE_MAJOR=${NODE_MAJOR:-22}
DOCKERD_LOG=${DOCKERD_LOG:-/tmp/dockerd.log}
# How long the engine may take to answer after it is started.
DOCKERD_WAIT_SECONDS=${DOCKERD_WAIT_SECONDS:-60}

say () { printf 'docker-setup: %s\n' "$*" >&2; }
fail () { say "$*"; exit 1; }

if docker info >/dev/null 2>&1; then
  say "the Docker engine is running"
else
  if ! command -v dockerd >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || fail "no Docker engine, and installing one (apt-get install docker.io) needs root"
    say "installing Debian's docker.io"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker.io >/dev/null
  fi
  # A second run while an engine is still starting must not start another one.
  if ! { command -v pgrep >/dev/null && pgrep -x dockerd >/dev/null; }; then
    say "starting dockerd (log: $DOCKERD_LOG)"
    # setsid: the engine outlives this script and is not in the test runner's process group.
    setsid dockerd >"$DOCKERD_LOG" 2>&1 < /dev/null &
  fi
  deadline=$((SECONDS + DOCKERD_WAIT_SECONDS))
  until docker info >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 20 "$DOCKERD_LOG" >&2 || true
      fail "the Docker engine did not answer within ${DOCKERD_WAIT_SECONDS}s (log: $DOCKERD_LOG)"
    fi
    sleep 1
  done
  say "the Docker engine is running"
fi

if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  say "$BASE_IMAGE is present"
else
  tool=../shared/tools/node-base-image.sh
  [ -f "$tool" ] || fail "$BASE_IMAGE is missing and $tool (which builds a local stand-in) is not there"
  say "$BASE_IMAGE is missing: building a local stand-in with $tool (takes a minute or more)"
  if ! command -v debootstrap >/dev/null 2>&1; then
    # The tool installs debootstrap itself, but without `apt-get update` a fresh machine's
    # package lists may not have it yet.
    [ "$(id -u)" = 0 ] || fail "building $BASE_IMAGE needs debootstrap, and installing it needs root"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null
  fi
  bash "$tool" "$BASE_IMAGE" "$NODE_MAJOR" >&2
fi
