#!/usr/bin/env bash
# Ingest speed, stored size and memory of n8n-ark against restic, on the same
# files, in the same run.
#
#   tests/bench/compare-restic.sh DAY1 [DAY2]
#
# DAY1 and DAY2 are uncompressed dumps (`pg_dump -Fc -Z0`) of one database on
# two consecutive days. The script builds n8n-ark (release), creates a fresh
# n8n-ark store and a fresh restic repository (compression auto), and ingests
# DAY1 then DAY2 into each, warming the page cache (cat FILE > /dev/null) before
# every ingest so that both tools read from memory. It prints one table: time,
# speed, the ratio of n8n-ark's speed to restic's, bytes stored after each day
# (du -sb), bytes added by the day, peak RSS and CPU time (user + system, from
# /usr/bin/time -v), and the 1-minute load average when the ingest started:
# other work on the machine slows both tools, so compare within a run.
# Without restic on the PATH it says so and prints n8n-ark's figures only.
#
# Environment:
#   RUNS=N          repeat everything N times with fresh stores (default 1) and
#                   add a summary of the minimum and median times
#   ARK_BIN=PATH    use this n8n-ark binary instead of building one
#   ARK_INIT_ARGS   extra arguments for `n8n-ark init` (e.g. "--chunk-avg-kib 1024 --zstd-level 2",
#                   or "--insecure-no-encryption" to measure what encryption costs)
#   ARK_PASSWORD    the store's passphrase (default: a fixed benchmark one; restic's is "bench")
#   WORK_DIR=DIR    where the stores go (default: a new directory under $TMPDIR or /tmp,
#                   removed at the end); must be on the disk you want to measure and
#                   have room for every run's stores (about 2.1 GB per run for the
#                   2.7 GB bench dumps)
#   KEEP=1          keep the stores
set -euo pipefail

usage() { echo "usage: $0 DAY1 [DAY2]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
FILES=()
for f in "$@"; do
    [ -r "$f" ] || { echo "$0: cannot read $f" >&2; exit 2; }
    FILES+=("$(cd "$(dirname "$f")" && pwd)/$(basename "$f")")
done
RUNS=${RUNS:-1}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)

export ARK_PASSWORD=${ARK_PASSWORD:-n8n-ark benchmark}
if [ -n "${ARK_BIN:-}" ]; then
    ARK=$ARK_BIN
else
    echo "building n8n-ark (release)..." >&2
    (cd "$ROOT" && cargo build --release --quiet --bin n8n-ark)
    ARK=$ROOT/target/release/n8n-ark
fi
[ -x "$ARK" ] || { echo "$0: $ARK is not executable" >&2; exit 2; }

HAVE_RESTIC=1
if ! command -v restic >/dev/null 2>&1; then
    HAVE_RESTIC=0
    echo "restic is not installed (Debian: apt-get install restic): printing n8n-ark's figures only" >&2
fi
TIME=/usr/bin/time
[ -x "$TIME" ] || TIME=""
[ -n "$TIME" ] || echo "/usr/bin/time is missing (Debian: apt-get install time): no peak RSS" >&2

if [ -n "${WORK_DIR:-}" ]; then
    mkdir -p "$WORK_DIR"
    WORK=$(mktemp -d "$WORK_DIR/compare.XXXXXX")
else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/ark-compare.XXXXXX")
fi
cleanup() { [ "${KEEP:-0}" = 1 ] && echo "stores kept in $WORK" >&2 || rm -rf "$WORK"; }
trap cleanup EXIT

export RESTIC_PASSWORD=compare-restic
RESULTS=$WORK/results.tsv
: > "$RESULTS"

# measure LABEL -- COMMAND...: runs COMMAND (stdin from $INPUT), sets SECS, CPU (user +
# system seconds) and RSS_KB.
measure() {
    local label=$1; shift 2
    local log=$WORK/$label.log tv=$WORK/$label.time
    local t0 t1
    t0=$(date +%s.%N)
    if [ -n "$TIME" ]; then
        "$TIME" -v -o "$tv" "$@" < "$INPUT" > "$log" 2>&1 || { echo "$label failed:" >&2; cat "$log" >&2; exit 1; }
    else
        "$@" < "$INPUT" > "$log" 2>&1 || { echo "$label failed:" >&2; cat "$log" >&2; exit 1; }
    fi
    t1=$(date +%s.%N)
    SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    RSS_KB=$( [ -n "$TIME" ] && awk -F': ' '/Maximum resident set size/ { print $2 }' "$tv" || echo "")
    CPU=$( [ -n "$TIME" ] && awk -F': ' '/User time|System time/ { s += $2 } END { printf "%.1f", s }' "$tv" || echo "")
}

for run in $(seq 1 "$RUNS"); do
    STORE=$WORK/ark-$run
    REPO=$WORK/restic-$run
    "$ARK" init --store "$STORE" ${ARK_INIT_ARGS:-} > "$WORK/init.log" 2>&1 || { cat "$WORK/init.log" >&2; exit 1; }
    if [ $HAVE_RESTIC = 1 ]; then
        restic -q -r "$REPO" init > "$WORK/restic-init.log" 2>&1 || { cat "$WORK/restic-init.log" >&2; exit 1; }
    fi
    prev_ark=0; prev_restic=0; day=0
    for INPUT in "${FILES[@]}"; do
        day=$((day + 1))
        size=$(stat -c %s "$INPUT")
        cat "$INPUT" > /dev/null
        load=$(cut -d' ' -f1 /proc/loadavg)
        measure "ark-$run-$day" -- "$ARK" --store "$STORE" benchmark --input "$INPUT" --json
        stored=$(du -sb "$STORE" | cut -f1)
        printf 'n8n-ark\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$day" "$size" "$SECS" "$stored" "$((stored - prev_ark))" "$RSS_KB" "$CPU" "$load" >> "$RESULTS"
        prev_ark=$stored
        if [ $HAVE_RESTIC = 1 ]; then
            cat "$INPUT" > /dev/null
            load=$(cut -d' ' -f1 /proc/loadavg)
            measure "restic-$run-$day" -- restic -r "$REPO" backup --compression auto --stdin --stdin-filename dump
            stored=$(du -sb "$REPO" | cut -f1)
            printf 'restic\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$day" "$size" "$SECS" "$stored" "$((stored - prev_restic))" "$RSS_KB" "$CPU" "$load" >> "$RESULTS"
            prev_restic=$stored
        fi
    done
    # Stores are removed only at the end: deleting thousands of files just
    # before the next run's writes slows file creation on ext4 (recently
    # deleted inodes are skipped), which would tax the next n8n-ark run.
done

echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, load average now $(cut -d' ' -f1-3 /proc/loadavg)"
echo "n8n-ark: $("$ARK" --version 2>/dev/null || echo "$ARK")${ARK_INIT_ARGS:+, init $ARK_INIT_ARGS}"
[ $HAVE_RESTIC = 1 ] && echo "restic:  $(restic version | head -1)"
for i in "${!FILES[@]}"; do echo "day $((i + 1)): ${FILES[$i]} ($(stat -c %s "${FILES[$i]}") bytes)"; done
echo
# The table: ratio = n8n-ark's speed / restic's speed on the same day of the same run.
awk -F'\t' '
    { key = $2 "/" $3; tool[NR] = $1; run[NR] = $2; day[NR] = $3; size[NR] = $4; secs[NR] = $5
      stored[NR] = $6; added[NR] = $7; rss[NR] = $8; cpu[NR] = $9; load[NR] = $10
      if ($1 == "restic") rsecs[key] = $5 }
    END {
        printf "| %-7s | %-3s | %-3s | %8s | %8s | %-15s | %15s | %15s | %9s | %7s | %5s |\n", "tool", "run", "day", "seconds", "MB/s", "speed vs restic", "stored (bytes)", "added (bytes)", "peak RSS", "CPU s", "load"
        printf "|---------|-----|-----|---------:|---------:|-----------------|----------------:|----------------:|----------:|--------:|------:|\n"
        for (i = 1; i <= NR; i++) {
            key = run[i] "/" day[i]
            ratio = "-"
            if (tool[i] == "n8n-ark" && (key in rsecs) && secs[i] > 0) ratio = sprintf("%.2fx", rsecs[key] / secs[i])
            r = (rss[i] == "") ? "n/a" : sprintf("%.0f MiB", rss[i] / 1024)
            printf "| %-7s | %3s | %3s | %8.2f | %8.0f | %-15s | %15s | %15s | %9s | %7s | %5s |\n", tool[i], run[i], day[i], secs[i], size[i] / 1e6 / secs[i], ratio, stored[i], (day[i] == 1 ? "" : added[i]), r, (cpu[i] == "" ? "n/a" : cpu[i]), load[i]
        }
    }' "$RESULTS"
if [ "$RUNS" -gt 1 ]; then
    echo
    echo "over $RUNS runs (seconds: min / median; median CPU seconds; speed ratio of the medians):"
    sort -t$'\t' -k1,1 -k3,3n -k5,5n "$RESULTS" | awk -F'\t' '
        { k = $1 "\t" $3; n[k]++; v[k, n[k]] = $5; cpu[k, n[k]] = $9; size[k] = $4; if (!(k in order)) { order[k] = ++m; keys[m] = k } }
        END {
            for (j = 1; j <= m; j++) {
                k = keys[j]; c = n[k]
                med = (c % 2) ? v[k, (c + 1) / 2] : (v[k, c / 2] + v[k, c / 2 + 1]) / 2
                # Median CPU time (sorted separately: it need not follow the wall time).
                for (a = 1; a <= c; a++) cs[a] = cpu[k, a] + 0
                for (a = 2; a <= c; a++) { x = cs[a]; for (b = a - 1; b >= 1 && cs[b] > x; b--) cs[b + 1] = cs[b]; cs[b + 1] = x }
                cmed = (c % 2) ? cs[(c + 1) / 2] : (cs[c / 2] + cs[c / 2 + 1]) / 2
                split(k, p, "\t"); medv[p[1], p[2]] = med
                line[j] = sprintf("%-7s day %s: %6.2f / %6.2f s (%4.0f MB/s at the median), CPU %5.1f s", p[1], p[2], v[k, 1], med, size[k] / 1e6 / med, cmed)
                tl[j] = p[1]; dl[j] = p[2]
            }
            for (j = 1; j <= m; j++) {
                extra = ""
                if (tl[j] == "n8n-ark" && (("restic", dl[j]) in medv)) extra = sprintf("  %.2fx restic", medv["restic", dl[j]] / medv["n8n-ark", dl[j]])
                print line[j] extra
            }
        }'
fi
