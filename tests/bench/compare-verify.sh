#!/usr/bin/env bash
# Restore-level verification against a plain pg_restore of the same dump, on
# the n8n-shaped benchmark database (../shared/bench/make-db.sh: ~1.5 GB on
# disk). The issue's target: `n8n-ark verify --level restore` costs at most
# 1.3x a plain `pg_restore` of the same dump into the same kind of sandbox.
#
#   tests/bench/compare-verify.sh STORE
#
# STORE holds a postgres_n8n (or full_system) backup of the benchmark database
# (e.g. the store compare-pgdump.sh leaves with WORK_DIR=… : $WORK_DIR/store-1),
# its catalog in STORE.data (or ARK_DATA_DIR). The script:
#   1. dumps the database the newest backup holds once to a file with
#      `pg_dump -Fc -Z0` as the backup does (not timed; the baseline then
#      reads it from the page cache, as fast as it can be fed; the database
#      must be unchanged since that backup, as compare-pgdump.sh leaves it),
#   2. times a plain pg_restore of that file into a fresh cluster started the
#      way the local sandbox starts one (initdb -N, unix socket only, fsync,
#      synchronous_commit and full_page_writes off, pg_restore --no-owner
#      --no-privileges --exit-on-error), cluster start included, then removes it,
#   3. times `n8n-ark verify latest --level restore --sandbox local` (sandbox
#      start, the dump streamed from the store and decoded, every comparison,
#      teardown),
# and prints both and the ratio. Repeat with RUNS=N (default 1); run on an
# idle machine.
#
# Environment: ARK_BIN (use this binary instead of building), ARK_PASSWORD
# (the store's passphrase, when encrypted), PG_BIN (the PostgreSQL bin
# directory of the dump's major version; default the newest
# /usr/lib/postgresql/*/bin), WORK_DIR (where the dump file and the baseline
# cluster go; default a temp dir, removed), BENCH_DB (the database to dump;
# default the one the backup holds), PGHOST/PGPORT/PGUSER (its server).
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 STORE" >&2; exit 2; }
STORE=$1
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RUNS=${RUNS:-1}
DATA=${ARK_DATA_DIR:-$STORE.data}
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}
if [ -n "${ARK_BIN:-}" ]; then ARK=$ARK_BIN; else
    echo "building n8n-ark (release)..." >&2
    (cd "$ROOT" && cargo build --release --quiet --bin n8n-ark)
    ARK=$ROOT/target/release/n8n-ark
fi
WORK=${WORK_DIR:-$(mktemp -d)}
CLUSTER=""
cleanup() {
    if [ -n "$CLUSTER" ] && [ -f "$CLUSTER/data/postmaster.pid" ]; then
        as_pg "$PG_BIN/pg_ctl" -D "$CLUSTER/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    [ -n "${WORK_DIR:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
ark() { "$ARK" --store "$STORE" --data-dir "$DATA" "$@"; }

# 1. The same dump as a file: pg_dump -Fc -Z0 (exactly as the backup took it)
# of the database the newest backup holds, unchanged since (the store
# compare-pgdump.sh leaves holds the day-2 state the database is left in).
INFO=$(ark --json show latest | python3 -c '
import json, sys
v = json.load(sys.stdin)
dbs = [d for d in v["databases"] if d["is_n8n"]] or v["databases"]
if not dbs: sys.exit("the newest backup holds no database dump")
print(dbs[0]["name"], sum(t["rows"] for t in dbs[0]["tables"]))')
set -- $INFO
DB=${BENCH_DB:-$1}
echo "dumping $DB (pg_dump -Fc -Z0, not timed; PGHOST/PGPORT/PGUSER as for compare-pgdump.sh)..." >&2
"${ARK_PG_DUMP:-$PG_BIN/pg_dump}" -Fc -Z0 -d "$DB" > "$WORK/bench.dump"
echo "dump: $(stat -c %s "$WORK/bench.dump") bytes; the backup recorded $2 rows" >&2

# A failed step must not be timed as if it had worked.
secs() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null 2>"$WORK/step.err" || { echo "failed: $*" >&2; cat "$WORK/step.err" >&2; return 1; }
         t1=$(date +%s.%N); echo "$t1 - $t0" | bc; }
# PostgreSQL refuses to run as root: the baseline's server runs as postgres then.
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
chmod 755 "$WORK"

# 2. A plain pg_restore into a fresh sandbox-like cluster (start included).
baseline() {
    CLUSTER=$(mktemp -d "$WORK/cluster-XXXX")
    if [ "$(id -u)" -eq 0 ]; then chown postgres: "$CLUSTER"; fi
    as_pg "$PG_BIN/initdb" -D "$CLUSTER/data" -U postgres -A trust -E UTF8 --locale=C -N >/dev/null
    as_pg "$PG_BIN/pg_ctl" -D "$CLUSTER/data" -w -l "$CLUSTER/log" -o \
        "-k $CLUSTER -p 5432 -c listen_addresses= -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c TimeZone=UTC" start >/dev/null
    "$PG_BIN/createdb" -h "$CLUSTER" -p 5432 -U postgres bench
    "$PG_BIN/pg_restore" -h "$CLUSTER" -p 5432 -U postgres --no-owner --no-privileges --exit-on-error \
        -d bench < "$WORK/bench.dump"
    as_pg "$PG_BIN/pg_ctl" -D "$CLUSTER/data" -m immediate stop >/dev/null
    rm -rf "$CLUSTER"; CLUSTER=""
}
verify() { ark verify latest --level restore --sandbox local; }

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
printf '%-44s %10s\n' "what" "seconds"
for run in $(seq 1 "$RUNS"); do
    b=$(secs baseline) || exit 1
    printf '%-44s %10.1f\n' "plain pg_restore into a new cluster (run $run)" "$b"
    v=$(secs verify) || { echo "the verification failed" >&2; exit 1; }
    printf '%-44s %10.1f  %.2fx pg_restore (target <= 1.30x)\n' "n8n-ark verify --level restore (run $run)" "$v" \
        "$(echo "$v / $b" | bc -l)"
done
