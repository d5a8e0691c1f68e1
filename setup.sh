#!/usr/bin/env bash
# n8n-ark setup on Debian (12, 13) or Ubuntu (22.04, 24.04): build, install, try it, test it.
#
#   ./setup.sh demo [DIR]        build n8n-ark, back up the sample n8n database (a throwaway PostgreSQL) twice, browse and restore; DIR keeps the store
#   ./setup.sh build             build the release binary: target/release/n8n-ark
#   ./setup.sh install [PREFIX]  build, then install it as PREFIX/bin/n8n-ark (default /usr/local)
#   ./setup.sh test              install what the tests need, then run every test, the fuzz targets and the demos
#
# As root, missing Debian packages are installed (a C compiler, PostgreSQL, ...);
# otherwise they are named. Rust (1.85 or newer) comes from the distribution when
# it is new enough (Debian 13), else from rustup (the command is printed).
# The first build compiles about 350 crates: over 20 minutes on two cores.
set -euo pipefail
cd "$(dirname "$0")"
here=$(pwd)
RUST_MIN=1.85

log() { printf '\n==> %s\n' "$*"; }
die() { echo "setup.sh: $*" >&2; exit 1; }

apt_install() {
  # Installs the Debian packages named, if any is missing.
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    die "please install: ${missing[*]} (sudo apt-get install ${missing[*]}), or run as root"
  fi
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# "1.85.0" from "cargo 1.85.0 (...)" or a Debian version "1.85.0+dfsg1-1".
version_of() { sed -E 's/^[^0-9]*([0-9]+\.[0-9]+(\.[0-9]+)?).*/\1/'; }
at_least() { [ "$(printf '%s\n%s\n' "$RUST_MIN" "$1" | sort -V | head -1)" = "$RUST_MIN" ]; }

need_rust() {
  if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
  local have=""
  command -v cargo >/dev/null 2>&1 && have=$(cargo --version | version_of)
  if [ -n "$have" ] && at_least "$have"; then return 0; fi
  # The distribution's Rust, when it is new enough (Debian 13 has 1.85).
  local candidate
  candidate=$(apt-cache policy rustc 2>/dev/null | awk '/Candidate:/ { print $2 }' | version_of || true)
  if [ -z "$have" ] && [ -n "$candidate" ] && at_least "$candidate" && [ "$(id -u)" -eq 0 ]; then
    apt_install cargo rustc
    return 0
  fi
  die "n8n-ark needs Rust $RUST_MIN or newer (found: ${have:-no cargo}; this distribution's rustc: ${candidate:-none}).
Install it with rustup (as the user who builds), then run this again:
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  . \"\$HOME/.cargo/env\""
}

need_build_tools() {
  # A C compiler and libc headers: aws-lc-sys, ring, zstd-sys and
  # libsqlite3-sys (SQLite bundled) compile C code; nothing else (no cmake).
  need_rust
  if ! command -v cc >/dev/null 2>&1; then apt_install build-essential; fi
}

need_postgresql() {
  # The distribution's PostgreSQL (Debian 12: 15, 13: 17; Ubuntu 24.04: 16),
  # unless some version is installed already. Everything finds the newest
  # /usr/lib/postgresql/*/bin.
  if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then apt_install postgresql; fi
}

cmd_build() {
  need_build_tools
  if [ ! -x "$here/target/release/n8n-ark" ]; then
    log "building n8n-ark (release): the first build takes over 20 minutes on two cores; later ones seconds"
  else
    log "building n8n-ark (release)"
  fi
  cargo build --release --locked --bin n8n-ark
  echo "built: $here/target/release/n8n-ark  (./setup.sh install puts it in /usr/local/bin)"
}

cmd_install() {
  local prefix=${1:-/usr/local}
  cmd_build
  install -d "$prefix/bin"
  install -m 0755 "$here/target/release/n8n-ark" "$prefix/bin/n8n-ark"
  echo "installed: $prefix/bin/n8n-ark ($("$prefix/bin/n8n-ark" --version))"
}

cmd_demo() {
  # A real n8n database (the recorded sample) in an ephemeral PostgreSQL,
  # two backups with a day's changes between them, then list/show/diff/history
  # and restores.
  need_postgresql
  apt_install python3
  cmd_build
  "$here/tests/demo/run.sh" "$here/target/release/n8n-ark" "$@"
}

cmd_test() {
  need_build_tools
  need_postgresql
  apt_install python3 python3-venv util-linux bsdutils mount iproute2
  # docker.io only where there is no Docker yet: it conflicts with docker-ce.
  if ! command -v dockerd >/dev/null 2>&1 && [ ! -x /usr/sbin/dockerd ] && ! docker info >/dev/null 2>&1; then
    apt_install docker.io
  fi
  started_s3=""
  started_dockerd=""
  results=""
  cleanup() {
    if [ -n "${started_s3:-}" ]; then "$here/tests/s3/stop-server.sh" || true; fi
    if [ -n "${started_dockerd:-}" ]; then "$here/tests/docker/stop-engine.sh" "$started_dockerd" || true; fi
    if [ -n "${results:-}" ]; then rm -f "$results"; fi
  }
  trap cleanup EXIT

  # A clean build of the tests, the fuzz targets and the test stores need a
  # few GB; say so up front instead of failing in the linker.
  local free_kib
  free_kib=$(df -Pk "$here" | awk 'NR == 2 { print $4 }')
  if [ "${free_kib:-0}" -lt $((4 * 1024 * 1024)) ]; then
    die "only $((free_kib / 1024)) MiB free under $here; the tests need about 4 GiB (build, fuzz targets, test stores)."
  fi
  # One clean build: the incremental cache would only add gigabytes.
  export CARGO_INCREMENTAL=0

  log "building tests (the first build takes over 20 minutes on two cores)"
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
  ARK_TEST_PG_IMAGE=$("$here/tests/docker/build-pg-image.sh")
  export ARK_TEST_PG_IMAGE

  # Every step runs; a failing one is named at the end and the exit status
  # is non-zero. cargo's own status counts as well as its "test result" lines
  # (a test binary that crashes prints none).
  local failed_steps=()
  results=$(mktemp)
  log "the engine builds without the command line's crates (clap, indicatif, rpassword)"
  cargo check --locked --lib --no-default-features || failed_steps+=("engine without cli")
  log "running the tests (the Docker ones too: --include-ignored; hold_sandbox_helper is a child process of other tests, not a test)"
  cargo test --locked --workspace --no-fail-fast -- --include-ignored --skip hold_sandbox_helper 2>&1 \
    | tee -a "$results" || failed_steps+=("cargo test")
  log "running the benchmarks once each, as tests"
  # --bench '*': the bench targets only (--benches would run the library's unit tests again).
  cargo test --locked --bench '*' 2>&1 | tee -a "$results" || failed_steps+=("cargo test --bench")

  "$here/tests/s3/stop-server.sh" || true
  started_s3=""
  if [ -n "$started_dockerd" ]; then "$here/tests/docker/stop-engine.sh" "$started_dockerd" || true; fi
  started_dockerd=""

  log "fuzz targets (bounded time) and corpus replay"
  "$here/fuzz/run.sh" || failed_steps+=("fuzz")

  log "demo smoke runs: the engine tour on generated data, and the n8n demo"
  # The binary the tests built (a `cargo run` here would rebuild it without the
  # test-only features: minutes for nothing). Without --store the engine tour
  # uses a temporary store and removes it.
  "$here/target/debug/n8n-ark" demo --size-mib 8 || failed_steps+=("n8n-ark demo")
  "$here/tests/demo/run.sh" "$here/target/debug/n8n-ark" || failed_steps+=("tests/demo/run.sh")

  # One closing line for the whole run: every cargo test binary added up.
  echo
  summarize_tests "$results"
  if [ ${#failed_steps[@]} -gt 0 ]; then
    local IFS=';'
    echo "FAILED:${failed_steps[*]/#/ }" >&2
    exit 1
  fi
  log "all tests passed"
}

# "tests: N passed, N failed, N ignored" from cargo's "test result:" lines.
summarize_tests() {
  awk '/^test result:/ {
         for (i = 2; i <= NF; i++) {
           if ($i ~ /^passed;?$/) p += $(i-1)
           if ($i ~ /^failed;?$/) f += $(i-1)
           if ($i ~ /^ignored;?$/) g += $(i-1)
         }
       }
       END { printf "tests: %d passed, %d failed, %d ignored\n", p, f, g }' "$1"
}

case "${1:-}" in
  demo) shift; cmd_demo "$@" ;;
  test) shift; cmd_test "$@" ;;
  build) cmd_build ;;
  install) shift; cmd_install "$@" ;;
  summarize-tests) shift; summarize_tests "$@" ;;
  *) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
