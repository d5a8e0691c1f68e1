#!/usr/bin/env bash
# Stops the dockerd that tests/docker/start-engine.sh started.
#
#   tests/docker/stop-engine.sh [PID]     # or DOCKERD_PID=PID tests/docker/stop-engine.sh
#
# Without a pid (start-engine.sh found an engine already running and printed
# nothing), does nothing. Only a process named dockerd is signalled. Its
# containers are stopped by dockerd itself on the way down.
set -euo pipefail

log() { echo "stop-engine: $*" >&2; }

pid=${1:-${DOCKERD_PID:-}}
[ -n "$pid" ] || exit 0
case "$pid" in *[!0-9]*) log "not a pid: $pid"; exit 1 ;; esac

if ! kill -0 "$pid" 2>/dev/null; then
  log "dockerd (pid $pid) is not running"
  exit 0
fi
comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
if [ "$comm" != dockerd ]; then
  log "pid $pid is '$comm', not dockerd: left alone"
  exit 1
fi

kill -TERM "$pid"
for _ in $(seq 1 150); do
  kill -0 "$pid" 2>/dev/null || { log "dockerd (pid $pid) stopped"; exit 0; }
  sleep 0.2
done
log "dockerd (pid $pid) did not stop within 30s; killing it"
kill -KILL "$pid" 2>/dev/null || true
