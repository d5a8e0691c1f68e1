#!/usr/bin/env bash
# A postgres_n8n backup against pg_dump, on the n8n-shaped benchmark database
# (../shared/bench/make-db.sh: 2,000 workflows, 25,700 executions, ~1.5 GB on
# disk, ~2.76 GB as an uncompressed dump), day 1 and the day after.
#
#   tests/bench/compare-pgdump.sh BENCH_DIR
#
# BENCH_DIR holds make-db.sh (and its gen.py, schema.sql, day2-mutate.sql).
# The database server is the one libpq's PGHOST/PGPORT/PGUSER name (a local
# PostgreSQL whose pg_dump is in PATH or ARK_PG_DUMP); every tool uses that same
# connection (a socket directory in PGHOST is cheaper than TCP for all of
# them: compare like with like). The script:
#   1. builds database n8n_bench as of day 1 (make-db.sh day1; minutes),
#   2. times `pg_dump -Fc -Z0 > /dev/null` and the naive `pg_dump -Fc > FILE`
#      (the original design's approach: gzip inside pg_dump),
#   3. times `n8n-ark backup --type postgres_n8n` into a fresh store,
#   4. applies day 2 (make-db.sh day2: 1% of workflows edited, +3% executions,
#      -2% oldest), times `pg_dump -Fc -Z0 > /dev/null` again and the second
#      n8n-ark backup,
# and prints a table with the ratios the project targets: first backup
# <= 2x the uncompressed pg_dump, later ones <= 1.3x, both < 1/4 of the naive
# dump. Runs are wall-clock times on whatever else the machine is doing: run
# it on an idle machine, and repeat (RUNS=N, default 1) to see the spread.
#
# Environment: ARK_BIN (use this binary instead of building), WORK_DIR (where
# the store and the naive dump go; default a temp dir, removed), ARK_INIT_ARGS
# (extra `n8n-ark init` arguments), SKIP_DAY1=1 (the database is already at
# day 1: skip make-db.sh day1).
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 BENCH_DIR" >&2; exit 2; }
BENCH=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RUNS=${RUNS:-1}
DB=${BENCH_DB:-n8n_bench}
export ARK_PASSWORD=${ARK_PASSWORD:-n8n-ark benchmark}
PG_DUMP=${ARK_PG_DUMP:-$(command -v pg_dump)}
if [ -n "${ARK_BIN:-}" ]; then ARK=$ARK_BIN; else
    echo "building n8n-ark (release)..." >&2
    (cd "$ROOT" && cargo build --release --quiet --bin n8n-ark)
    ARK=$ROOT/target/release/n8n-ark
fi
WORK=${WORK_DIR:-$(mktemp -d)}
[ -n "${WORK_DIR:-}" ] || trap 'rm -rf "$WORK"' EXIT
# PGHOST may be a socket directory (percent-encoded in the URL, as libpq reads it).
HOST_ENC=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "${PGHOST:-127.0.0.1}")
URL="postgres://${PGUSER:-postgres}@$HOST_ENC:${PGPORT:-5432}/$DB"

# Each timed command starts with nothing left to write back (`sync`): the
# naive dump's 1 GB file, or the previous run's store, would otherwise be
# flushed during the next measurement and charged to it.
secs() { local t0 t1; sync; t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N); echo "$t1 - $t0" | bc; }
dump_devnull() { "$PG_DUMP" -Fc -Z0 -d "$DB" > /dev/null; }
dump_naive() { "$PG_DUMP" -Fc -d "$DB" > "$WORK/naive.dump"; }
ark_backup() { "$ARK" --store "$STORE" --data-dir "$STORE.data" backup --type postgres_n8n \
                 --no-default-config-paths --no-verify --n8n-db "$URL" --pg-dump "$PG_DUMP"; }

if [ -z "${SKIP_DAY1:-}" ]; then
    echo "building $DB as of day 1 (make-db.sh day1)..." >&2
    BENCH_DB=$DB "$BENCH/make-db.sh" day1 >&2
fi
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
printf '%-34s %10s\n' "what" "seconds"
d1_raw=$(secs dump_devnull); printf '%-34s %10.1f\n' "day 1: pg_dump -Fc -Z0 > /dev/null" "$d1_raw"
naive=$(secs dump_naive);    printf '%-34s %10.1f  (%s bytes)\n' "day 1: pg_dump -Fc > file (naive)" "$naive" "$(stat -c %s "$WORK/naive.dump")"
rm -f "$WORK/naive.dump"
for run in $(seq 1 "$RUNS"); do
    # A new directory per run, all deleted at the end: deleting one run's
    # thousands of object files just before the next run creates as many
    # would measure the file system, not n8n-ark (ext4 without a journal
    # skips inodes deleted in the last seconds when it allocates new ones,
    # a linear scan per file: 16% of the run's CPU in one profile).
    STORE=$WORK/store-$run
    rm -rf "$STORE" "$STORE.data"
    "$ARK" --store "$STORE" init ${ARK_INIT_ARGS:-} >/dev/null 2>&1
    a1=$(secs ark_backup)
    printf '%-34s %10.1f  %.2fx pg_dump -Z0, %.2fx naive\n' "day 1: n8n-ark backup (run $run)" "$a1" \
        "$(echo "$a1 / $d1_raw" | bc -l)" "$(echo "$a1 / $naive" | bc -l)"
done
echo "applying day 2 (make-db.sh day2)..." >&2
BENCH_DB=$DB "$BENCH/make-db.sh" day2 >&2
d2_raw=$(secs dump_devnull); printf '%-34s %10.1f\n' "day 2: pg_dump -Fc -Z0 > /dev/null" "$d2_raw"
a2=$(secs ark_backup)
printf '%-34s %10.1f  %.2fx pg_dump -Z0, %.2fx naive\n' "day 2: n8n-ark backup" "$a2" \
    "$(echo "$a2 / $d2_raw" | bc -l)" "$(echo "$a2 / $naive" | bc -l)"
"$ARK" --store "$STORE" --data-dir "$STORE.data" list >&2 || true
echo "store size: $(du -sb "$STORE" | cut -f1) bytes" >&2
