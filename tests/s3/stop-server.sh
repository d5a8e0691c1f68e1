#!/usr/bin/env bash
# Stops the test S3 server that start-server.sh started, by its pid, and
# removes its scratch directory.
#
#   tests/s3/stop-server.sh                 # uses $ARK_TEST_S3_PID and $ARK_TEST_S3_DIR
#   tests/s3/stop-server.sh PID [SCRATCH_DIR]
#
# It only signals a process whose command line is our launcher (a pid can be
# reused by an unrelated process after the server died), and only removes a
# directory that start-server.sh marked as its own.
set -euo pipefail

PID=${1:-${ARK_TEST_S3_PID:-}}
DIR=${2:-${ARK_TEST_S3_DIR:-}}
log() { echo "stop-server: $*" >&2; }

[ -n "$PID" ] || { log "no pid: pass one, or eval the output of start-server.sh first"; exit 2; }
case $PID in *[!0-9]*) log "not a pid: $PID"; exit 2 ;; esac

ours() {
  [ -r "/proc/$PID/cmdline" ] && tr '\0' ' ' <"/proc/$PID/cmdline" | grep -q 'moto.moto_server.werkzeug_app'
}

if kill -0 "$PID" 2>/dev/null; then
  if ! ours; then
    log "process $PID is not the test S3 server; leaving it alone"
    exit 1
  fi
  kill -TERM "$PID"
  for _ in $(seq 50); do
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$PID" 2>/dev/null; then
    log "server $PID did not stop on TERM; killing it"
    kill -KILL "$PID" 2>/dev/null || true
  fi
  log "stopped server $PID"
else
  log "server $PID is not running"
fi

if [ -n "$DIR" ] && [ -f "$DIR/.ark-s3-server" ]; then
  rm -rf -- "$DIR"
fi
