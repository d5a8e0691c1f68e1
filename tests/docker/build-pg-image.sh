#!/usr/bin/env bash
# Builds the PostgreSQL image the Docker integration tests run, from the
# PostgreSQL installed on this machine (no registry is needed or used).
#
#   tests/docker/build-pg-image.sh           # builds it if it is missing
#   tests/docker/build-pg-image.sh --force   # rebuilds it
#   export ARK_TEST_PG_IMAGE=$(tests/docker/build-pg-image.sh)
#
# $V is the newest PostgreSQL installed (/usr/lib/postgresql/*/bin/postgres:
# the distribution's, 15 on Debian 12, 17 on Debian 13, 16 on Ubuntu 24.04;
# ARK_TEST_PG_VERSION chooses another). The image (default
# n8n-ark-test/postgres:$V; set ARK_TEST_PG_IMAGE to name it otherwise)
# holds /usr/lib/postgresql/$V, /usr/share/postgresql/$V,
# /usr/share/zoneinfo, /bin/sh and every shared library that ldd lists for
# them, a `postgres` user (uid/gid 999), a world-writable /tmp and
# /var/run/postgresql, and the PostgreSQL binaries in PATH. It has no
# entrypoint: run e.g.
#
#   docker run -d --network none -u postgres IMAGE sh -c \
#     'initdb -D /tmp/data -A trust && exec postgres -D /tmp/data -k /tmp -c listen_addresses='
#   docker exec CONTAINER psql -h /tmp -U postgres -c 'select 1'
#
# The JIT provider (llvmjit.so, which pulls in ~130 MB of LLVM) is left out:
# the server then runs without JIT, which changes no result.
#
# Needs: a running Docker engine (tests/docker/start-engine.sh), PostgreSQL
# server binaries on the host (Debian, Ubuntu: postgresql), ldd and tar.
# Progress goes to standard error; standard output gets only the image's name.
set -euo pipefail

newest_pg() {
  local v best=""
  for d in /usr/lib/postgresql/*/bin/postgres; do
    [ -x "$d" ] || continue
    v=${d#/usr/lib/postgresql/}; v=${v%%/*}
    if [ -z "$best" ] || [ "$v" -gt "$best" ] 2>/dev/null; then best=$v; fi
  done
  echo "$best"
}
PG_VERSION=${ARK_TEST_PG_VERSION:-$(newest_pg)}
[ -n "$PG_VERSION" ] || { echo "build-pg-image: error: no PostgreSQL server in /usr/lib/postgresql/*/bin (Debian, Ubuntu: apt-get install postgresql)" >&2; exit 1; }
IMAGE=${ARK_TEST_PG_IMAGE:-n8n-ark-test/postgres:$PG_VERSION}
PG_UID=999
PG_GID=999

log() { echo "build-pg-image: $*" >&2; }
die() { log "error: $*"; exit 1; }

force=""
for a in "$@"; do
  case "$a" in
    --force) force=1 ;;
    *) die "unknown argument: $a (usage: $0 [--force])" ;;
  esac
done

command -v docker >/dev/null || die "the docker CLI is not installed"
docker info >/dev/null 2>&1 || die "the Docker engine does not answer (start it with tests/docker/start-engine.sh)"

if [ -z "$force" ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  log "$IMAGE already exists (use --force to rebuild)"
  echo "$IMAGE"
  exit 0
fi

PGLIB=/usr/lib/postgresql/$PG_VERSION
PGSHARE=/usr/share/postgresql/$PG_VERSION
[ -x "$PGLIB/bin/postgres" ] || die "$PGLIB/bin/postgres not found (Debian, Ubuntu: apt-get install postgresql-$PG_VERSION)"
[ -d "$PGSHARE" ] || die "$PGSHARE not found"
[ -d /usr/share/zoneinfo ] || die "/usr/share/zoneinfo not found (Debian: apt-get install tzdata)"

start=$SECONDS
ROOT=$(mktemp -d "${TMPDIR:-/tmp}/ark-pg-image.XXXXXX")
trap 'rm -rf "$ROOT"' EXIT
# mktemp -d makes it 0700: it becomes the image's /, which postgres must enter.
chmod 0755 "$ROOT"

# The top-level links of a merged-/usr system (/bin -> usr/bin, ...), as on
# this host, so that paths such as /lib64/ld-linux-x86-64.so.2 resolve alike.
for d in bin sbin lib lib32 lib64 libx32; do
  if [ -L "/$d" ]; then
    ln -s "$(readlink "/$d")" "$ROOT/$d"
  fi
done

# Copies a file, following links, to the same path inside the image (its
# directory resolved, its own name kept: libz.so.1 stays libz.so.1).
put() {
  local src=$1 dir
  dir=$(readlink -f "$(dirname "$src")")
  mkdir -p "$ROOT$dir"
  cp -L "$src" "$ROOT$dir/$(basename "$src")"
}

# PostgreSQL itself, its share directory and the time zones (the Debian build
# uses the system time-zone data). tar -h follows links.
tar -C / -ch --exclude='usr/lib/postgresql/*/lib/llvmjit*' --exclude='usr/lib/postgresql/*/lib/bitcode' \
  "${PGLIB#/}" "${PGSHARE#/}" usr/share/zoneinfo | tar -C "$ROOT" -x

# /bin/sh and the shared libraries of every binary and module.
put /bin/sh
sh_real=$(readlink -f /bin/sh)
[ "$sh_real" = /bin/sh ] || [ "$sh_real" = /usr/bin/sh ] || put "$sh_real"
mapfile -t libs < <(
  for f in "$PGLIB"/bin/* "$PGLIB"/lib/*.so /bin/sh; do
    case "$f" in */llvmjit*) continue ;; esac
    [ -f "$f" ] || continue
    ldd "$f" 2>/dev/null || true
  done | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u
)
[ ${#libs[@]} -gt 0 ] || die "ldd found no libraries for $PGLIB/bin/*"
for l in "${libs[@]}"; do put "$l"; done

# Users, groups, writable directories, PATH.
mkdir -p "$ROOT/etc" "$ROOT/tmp" "$ROOT/var/run/postgresql" "$ROOT/var/lib/postgresql" "$ROOT/usr/local/bin"
cat >"$ROOT/etc/passwd" <<EOF
root:x:0:0:root:/root:/bin/sh
postgres:x:$PG_UID:$PG_GID:PostgreSQL:/var/lib/postgresql:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/sh
EOF
cat >"$ROOT/etc/group" <<EOF
root:x:0:
postgres:x:$PG_GID:
nogroup:x:65534:
EOF
printf 'passwd: files\ngroup: files\nhosts: files\n' >"$ROOT/etc/nsswitch.conf"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$ROOT/etc/hosts"
chmod 1777 "$ROOT/tmp" "$ROOT/var/run/postgresql"
chown "$PG_UID:$PG_GID" "$ROOT/var/lib/postgresql"
for b in "$PGLIB"/bin/*; do
  ln -s "$PGLIB/bin/$(basename "$b")" "$ROOT/usr/local/bin/$(basename "$b")"
done

log "importing $IMAGE ($(du -sh "$ROOT" | cut -f1) of files)"
tar -C "$ROOT" -c . | docker import \
  --change "ENV PATH=/usr/local/bin:$PGLIB/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  --change "ENV PGDATA=/tmp/data" \
  --change "ENV LANG=C" \
  --change "USER postgres" \
  --change "WORKDIR /tmp" \
  --change "LABEL n8n-ark.test=1" \
  - "$IMAGE" >/dev/null

# A quick check that the binaries load inside the image.
out=$(docker run --rm --network none "$IMAGE" pg_dump --version) || die "the image does not run pg_dump"
log "built $IMAGE in $((SECONDS - start))s: $out"
echo "$IMAGE"
