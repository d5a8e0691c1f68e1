#!/usr/bin/env bash
# Fuzzes every decoder of store-format on the stable toolchain (see README.md).
#
#   fuzz/run.sh [all|build|replay|fuzz] [TARGET...]
#
#   all     (default) build, replay the checked-in corpus, then fuzz each target
#           for FUZZ_SECONDS
#   build   build the targets only
#   replay  build, then run every target once over its corpus/<target>/ (no
#           fuzzing: a deterministic check, as fast as a unit test)
#   fuzz    build, then fuzz each target for FUZZ_SECONDS (no separate replay)
#
# Environment:
#   FUZZ_SECONDS    seconds of fuzzing per target (default 20; 0 = replay only)
#   FUZZ_JOBS       targets fuzzed at once (default: number of cores, at most 2)
#   FUZZ_SANITIZER  none (default: stable, no unstable flags) or address
#                   (AddressSanitizer: needs RUSTC_BOOTSTRAP=1 on stable, which
#                   this script then sets; built in its own target dir)
#
# Exits non-zero if a target fails to build or any input crashes a target, and
# prints the crash artifact's path, its bytes and the target's report.
set -euo pipefail

FUZZ_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MODE=${1:-all}
case "$MODE" in
  all|build|replay|fuzz) shift || true ;;
  -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) MODE=all ;;
esac

FUZZ_SECONDS=${FUZZ_SECONDS:-20}
FUZZ_SANITIZER=${FUZZ_SANITIZER:-none}
cores=$(nproc 2>/dev/null || echo 1)
FUZZ_JOBS=${FUZZ_JOBS:-$(( cores < 2 ? cores : 2 ))}
TRIPLE=$(rustc -vV | sed -n 's/^host: //p')

# Everything built or written while fuzzing stays under fuzz/target (git-ignored);
# only crash artifacts go to fuzz/artifacts (also ignored), where cargo fuzz puts them.
if [ "$FUZZ_SANITIZER" = none ]; then
  TARGET_DIR=$FUZZ_DIR/target
else
  TARGET_DIR=$FUZZ_DIR/target/sanitizer-$FUZZ_SANITIZER
  # Sanitizers are unstable rustc flags (-Zsanitizer); stable accepts them only
  # with this escape hatch. The default (none) needs no unstable feature.
  export RUSTC_BOOTSTRAP=1
fi
BIN_DIR=$TARGET_DIR/$TRIPLE/release
WORK_DIR=$FUZZ_DIR/target/fuzz-work      # corpus grown while fuzzing, logs
ARTIFACTS=$FUZZ_DIR/artifacts

if [ $# -gt 0 ]; then
  TARGETS=("$@")
else
  TARGETS=()
  for f in "$FUZZ_DIR"/fuzz_targets/*.rs; do TARGETS+=("$(basename "$f" .rs)"); done
fi

say() { printf '== fuzz: %s\n' "$*"; }

# --- what the build needs -------------------------------------------------------
if ! command -v c++ >/dev/null 2>&1; then
  # libfuzzer-sys compiles libFuzzer (C++) from source.
  say "installing g++ (libFuzzer is C++)"
  if [ "$(id -u)" = 0 ]; then apt-get install -y -q g++ >/dev/null; else sudo apt-get install -y -q g++ >/dev/null; fi
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  say "installing cargo-fuzz (once; cached in ~/.cargo/bin)"
  start=$SECONDS
  cargo install --locked cargo-fuzz
  say "cargo-fuzz installed in $((SECONDS - start)) s"
fi

# --- build ------------------------------------------------------------------------
start=$SECONDS
say "building ${#TARGETS[@]} targets ($(cargo fuzz --version), sanitizer $FUZZ_SANITIZER, $(rustc --version))"
# -O: release; the fuzz crate's release profile turns debug assertions and
# overflow checks on. --target-dir: never the main workspace's target dir, even
# if CARGO_TARGET_DIR is set.
build_args=(--fuzz-dir "$FUZZ_DIR" -O -s "$FUZZ_SANITIZER" --target "$TRIPLE" --target-dir "$TARGET_DIR")
if [ $# -gt 0 ]; then
  for t in "${TARGETS[@]}"; do cargo fuzz build "${build_args[@]}" "$t"; done
else
  cargo fuzz build "${build_args[@]}"
fi
say "built in $((SECONDS - start)) s"
[ "$MODE" = build ] && exit 0

mkdir -p "$WORK_DIR" "$ARTIFACTS"
# A panic's report should carry its stack.
export RUST_BACKTRACE=${RUST_BACKTRACE:-1}
if [ "$FUZZ_SANITIZER" = address ]; then
  export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_odr_violation=0
fi

# Prints what a failed run left: the artifact, its bytes, the report.
report_failure() {
  local t=$1 log=$2 artifact
  artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
  echo "---------------------------------------------------------------------------"
  echo "FUZZ FAILURE in target '$t'"
  if [ -n "$artifact" ] && [ -f "$artifact" ]; then
    echo "crash artifact: $artifact ($(wc -c < "$artifact") bytes)"
    echo "input (hex):"
    od -An -tx1 -v "$artifact" | head -n 64
    echo "reproduce:      $BIN_DIR/$t $artifact"
    echo "            or: cargo fuzz run --fuzz-dir fuzz -O -s $FUZZ_SANITIZER $t $artifact"
  fi
  echo "report (last 60 lines of $log):"
  tail -n 60 "$log"
  echo "---------------------------------------------------------------------------"
}

failed=()

# --- replay the checked-in corpus -------------------------------------------------
if [ "$MODE" = all ] || [ "$MODE" = replay ]; then
  start=$SECONDS
  for t in "${TARGETS[@]}"; do
    corpus=$FUZZ_DIR/corpus/$t
    log=$WORK_DIR/$t.replay.log
    n=$(find "$corpus" -type f 2>/dev/null | wc -l)
    # -runs=0: run every input of the corpus once, mutate nothing.
    mkdir -p "$ARTIFACTS/$t"
    if "$BIN_DIR/$t" -runs=0 -artifact_prefix="$ARTIFACTS/$t/" "$corpus" >"$log" 2>&1; then
      say "replay $t: $n inputs ok"
    else
      say "replay $t: FAILED"
      report_failure "$t" "$log"
      failed+=("$t (replay)")
    fi
  done
  say "replayed in $((SECONDS - start)) s"
fi

# --- fuzz -------------------------------------------------------------------------
if [ ${#failed[@]} -gt 0 ]; then
  say "not fuzzing: the checked-in corpus already fails"
elif { [ "$MODE" = all ] || [ "$MODE" = fuzz ]; } && [ "$FUZZ_SECONDS" -gt 0 ]; then
  start=$SECONDS
  say "fuzzing each target for $FUZZ_SECONDS s, $FUZZ_JOBS at a time"
  fuzz_one() {
    local t=$1
    mkdir -p "$WORK_DIR/corpus/$t" "$ARTIFACTS/$t"
    # The first corpus dir receives new inputs: a scratch dir, so the checked-in
    # seeds (second dir, read only) never change behind git's back.
    local rc=0
    "$BIN_DIR/$t" -max_total_time="$FUZZ_SECONDS" -timeout=30 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$ARTIFACTS/$t/" \
      "$WORK_DIR/corpus/$t" "$FUZZ_DIR/corpus/$t" >"$WORK_DIR/$t.fuzz.log" 2>&1 || rc=$?
    echo "$rc" >"$WORK_DIR/$t.fuzz.rc"
  }
  running=0
  for t in "${TARGETS[@]}"; do
    rm -f "$WORK_DIR/$t.fuzz.rc"
    fuzz_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$FUZZ_JOBS" ]; then wait -n || true; running=$((running - 1)); fi
  done
  wait || true
  for t in "${TARGETS[@]}"; do
    log=$WORK_DIR/$t.fuzz.log
    rc=$(cat "$WORK_DIR/$t.fuzz.rc" 2>/dev/null || echo 1)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -n 1 || true)
    if [ "$rc" = 0 ]; then
      say "fuzz $t: ok, ${runs:-?} runs, ${cov:-no coverage line}"
    else
      say "fuzz $t: FAILED (exit $rc)"
      report_failure "$t" "$log"
      failed+=("$t (fuzz)")
    fi
  done
  say "fuzzed in $((SECONDS - start)) s"
fi

if [ ${#failed[@]} -gt 0 ]; then
  say "FAILED: ${failed[*]}"
  exit 1
fi
say "all ${#TARGETS[@]} targets passed"
