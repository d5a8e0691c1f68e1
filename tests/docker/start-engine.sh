#!/usr/bin/env bash
# Makes sure a Docker engine answers, for the Docker integration tests.
#
#   denv=$(tests/docker/start-engine.sh) && eval "$denv"
#   ...
#   DOCKERD_PID=${DOCKERD_PID:-} tests/docker/stop-engine.sh
#
# If `docker info` already answers, prints nothing and exits 0: an engine
# someone else runs is used and left alone. Otherwise starts dockerd in the
# background (root only) and prints `DOCKERD_PID=<pid>` on standard output,
# for stop-engine.sh. Installs nothing (Debian: apt-get install docker.io).
#
# The daemon gets no bridge and touches no iptables (--bridge=none
# --iptables=false --ip6tables=false): the tests use `--network host` or
# `--network none` only. Storage: dockerd's default (overlay2 where the kernel
# allows it); if dockerd exits during start-up, it is started again with
# `--storage-driver vfs`. Set ARK_DOCKERD_STORAGE_DRIVER to force a driver.
# Its log and pid file are in ${TMPDIR:-/tmp}/n8n-ark-dockerd/. Progress and
# errors go to standard error.
set -euo pipefail

TIMEOUT=${ARK_DOCKERD_TIMEOUT:-60}
DIR=${TMPDIR:-/tmp}/n8n-ark-dockerd

log() { echo "start-engine: $*" >&2; }
die() { log "error: $*"; exit 1; }

command -v docker >/dev/null || die "the docker CLI is not installed (Debian: apt-get install docker.io)"
if docker info >/dev/null 2>&1; then
  exit 0
fi
command -v dockerd >/dev/null || PATH=$PATH:/usr/sbin:/sbin
command -v dockerd >/dev/null || die "dockerd is not installed (Debian: apt-get install docker.io)"
[ "$(id -u)" = 0 ] || die "the Docker engine does not answer and only root can start dockerd here"

mkdir -p "$DIR"
LOG=$DIR/dockerd.log
PIDFILE=$DIR/dockerd.pid

# Starts dockerd with the extra flags given; prints its pid once `docker info`
# answers; returns 1 if dockerd exits first, 2 on time-out (dockerd killed).
try_start() {
  local pid deadline
  {
    echo "== $(date -u +%FT%TZ) dockerd --bridge=none --iptables=false --ip6tables=false --pidfile=$PIDFILE $*"
  } >>"$LOG"
  setsid dockerd --bridge=none --iptables=false --ip6tables=false --pidfile="$PIDFILE" "$@" \
    </dev/null >>"$LOG" 2>&1 &
  pid=$!
  deadline=$((SECONDS + TIMEOUT))
  while ! docker info >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null || true
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      kill "$pid" 2>/dev/null || true
      sleep 2
      kill -9 "$pid" 2>/dev/null || true
      return 2
    fi
    sleep 0.2
  done
  echo "$pid"
}

: >"$LOG"
pid=""
rc=0
if [ -n "${ARK_DOCKERD_STORAGE_DRIVER:-}" ]; then
  pid=$(try_start --storage-driver "$ARK_DOCKERD_STORAGE_DRIVER") || rc=$?
else
  pid=$(try_start) || rc=$?
  if [ "$rc" = 1 ]; then
    log "dockerd exited during start-up with its default storage driver; trying vfs"
    tail -n 5 "$LOG" >&2 || true
    rc=0
    pid=$(try_start --storage-driver vfs) || rc=$?
  fi
fi
if [ "$rc" != 0 ] || [ -z "$pid" ]; then
  tail -n 30 "$LOG" >&2 || true
  [ "$rc" = 2 ] && die "dockerd did not answer within ${TIMEOUT}s (log above, in $LOG)"
  die "dockerd did not start (log above, in $LOG)"
fi

driver=$(docker info --format '{{.Driver}}' 2>/dev/null || echo '?')
log "dockerd running (pid $pid, storage driver $driver, log $LOG)"
echo "DOCKERD_PID=$pid"
