#!/usr/bin/env bash
# n8n-ark setup: build, try it, test it.
#
#   ./setup.sh demo [DIR]  build n8n-ark, back up the sample n8n database (ephemeral PostgreSQL) twice and browse it; DIR keeps the store
#   ./setup.sh test    install what the tests need, then run every test, the fuzz targets and a demo
#   ./setup.sh build   build the release binary (target/release/n8n-ark)
set -euo pipefail
cd "$(dirname "$0")"
here=$(pwd)

log() { printf '\n==> %s\n' "$*"; }

need_cargo() {
  if ! command -v cargo >/dev/null 2>&1; then
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
  fi
  if ! command -v cargo >/dev/null 2>&1; then
    echo "setup.sh: cargo is not installed. Install a Rust toolchain (1.85 or newer, e.g. with rustup) and run again." >&2
    exit 1
  fi
}

apt_install() {
  # Installs the Debian packages named, if any is missing.
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: please install: ${missing[*]} (or run as root)" >&2
    exit 1
  fi
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

cmd_build() {
  need_cargo
  log "building n8n-ark (release)"
  cargo build --release --locked --bin n8n-ark
}

cmd_demo() {
  # A real n8n database (the recorded sample) in an ephemeral PostgreSQL,
  # two backups with a day's changes between them, then list/show/diff/history.
  apt_install postgresql-15 python3
  cmd_build
  "$here/tests/demo/run.sh" "$here/target/release/n8n-ark" "$@"
}

cmd_test() {
  need_cargo
  apt_install python3 python3-venv util-linux bsdutils mount postgresql-15
  # docker.io only where there is no Docker yet: it conflicts with docker-ce.
  if ! command -v dockerd >/dev/null 2>&1 && [ ! -x /usr/sbin/dockerd ] && ! docker info >/dev/null 2>&1; then
    apt_install docker.io
  fi
  started_s3=""
  started_dockerd=""
  cleanup() {
    if [ -n "${started_s3:-}" ]; then "$here/tests/s3/stop-server.sh" || true; fi
    if [ -n "${started_dockerd:-}" ]; then "$here/tests/docker/stop-engine.sh" "$started_dockerd" || true; fi
  }
  trap cleanup EXIT

  # A clean build of the tests, the fuzz targets and the test stores need a
  # few GB; say so up front instead of failing in the linker.
  local free_kib
  free_kib=$(df -Pk "$here" | awk 'NR == 2 { print $4 }')
  if [ "${free_kib:-0}" -lt $((4 * 1024 * 1024)) ]; then
    echo "setup.sh: only $((free_kib / 1024)) MiB free under $here; the tests need about 4 GiB (build, fuzz targets, test stores)." >&2
    exit 1
  fi
  # One clean build: the incremental cache would only add gigabytes.
  export CARGO_INCREMENTAL=0

  log "building tests"
  cargo build --locked --workspace --tests --benches

  log "starting an S3-compatible server on 127.0.0.1 for the backend conformance suite"
  local s3env
  s3env=$("$here/tests/s3/start-server.sh")
  eval "$s3env"
  started_s3=1

  log "starting a Docker engine (unless one answers) and building the PostgreSQL test image"
  local denv
  denv=$("$here/tests/docker/start-engine.sh")
  DOCKERD_PID=""
  eval "$denv"
  started_dockerd=${DOCKERD_PID:-}
  "$here/tests/docker/build-pg-image.sh"
  export ARK_TEST_PG_IMAGE=n8n-ark-test/postgres:15

  local results
  results=$(mktemp)
  log "running the tests"
  cargo test --locked --workspace --no-fail-fast 2>&1 | tee -a "$results"
  log "running the benchmarks once each, as tests"
  cargo test --locked --benches 2>&1 | tee -a "$results"

  "$here/tests/s3/stop-server.sh" || true
  started_s3=""
  if [ -n "$started_dockerd" ]; then "$here/tests/docker/stop-engine.sh" "$started_dockerd" || true; fi
  started_dockerd=""

  log "fuzz targets (bounded time) and corpus replay"
  "$here/fuzz/run.sh"

  log "demo smoke runs: the engine tour on generated data, and the n8n demo"
  local d
  d=$(mktemp -d)
  # The binary the tests built (a `cargo run` here would rebuild it without the
  # test-only features: minutes for nothing).
  "$here/target/debug/n8n-ark" --store "$d/store" demo --size-mib 8
  rm -rf "$d"
  "$here/tests/demo/run.sh" "$here/target/debug/n8n-ark"
  log "all tests passed"
  # One closing line for the whole run: every cargo test binary added up.
  awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
       END { printf "tests: %d passed, %d failed\n", p, f }' "$results"
  rm -f "$results"
}

case "${1:-}" in
  demo) shift; cmd_demo "$@" ;;
  test) shift; cmd_test "$@" ;;
  build) cmd_build ;;
  *) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
