#!/usr/bin/env bash
# The demo: a real n8n database (the sample recorded from n8n 1.123, in
# tests/fixtures) in an ephemeral PostgreSQL, backed up twice with changes in
# between, then browsed: list, show, diff, history; then restored from: one
# workflow to a file, a database beside the live one, the config (a dry run
# under a scratch root), and the restore history. Nothing outside a temporary
# directory is touched; the PostgreSQL started here is stopped at the end and
# the temporary directory removed.
#
#   tests/demo/run.sh ARK_BINARY [KEEP_DIR]
#
# With KEEP_DIR the store and its catalog are made in KEEP_DIR/store and
# KEEP_DIR/data and left there for you to explore (the closing lines say how).
set -euo pipefail
ARK=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
here=$(cd "$(dirname "$0")/../.." && pwd)
keep=${2:-}
PGBIN=${ARK_DEMO_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
[ -x "$PGBIN/initdb" ] || { echo "demo: PostgreSQL server binaries not found (Debian, Ubuntu: apt-get install postgresql)" >&2; exit 1; }
if [ -n "$keep" ]; then
  mkdir -p "$keep"
  keep=$(cd "$keep" && pwd)
  for d in store data; do
    [ ! -e "$keep/$d" ] || { echo "demo: $keep/$d exists already: give a new directory to keep the demo's store in" >&2; exit 1; }
  done
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/n8n-ark-demo.XXXXXX")
chmod 755 "$work"
pg_pid=""
cleanup() {
  # Stop the server this script started: by the pid in its data directory
  # (the background job is a shell, which ignores SIGQUIT), immediate mode.
  if [ -n "$pg_pid" ]; then
    as_pg "$PGBIN/pg_ctl" -D "$work/pg/data" stop -m immediate >/dev/null 2>&1 || true
    wait "$pg_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# PostgreSQL refuses to run as root: run it as the postgres user then.
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
mkdir -p "$work/pg"
[ "$(id -u)" -eq 0 ] && chown postgres: "$work/pg"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

# Bold headings only on a terminal, and never with NO_COLOR set.
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
  step() { printf '\n\033[1m### %s\033[0m\n' "$*"; }
else
  step() { printf '\n### %s\n' "$*"; }
fi
show() { printf '\n$ n8n-ark %s\n' "$*"; "$ARK" "$@"; }

step "an ephemeral PostgreSQL on 127.0.0.1:$port, loaded with the n8n 1.123 sample"
as_pg "$PGBIN/initdb" -D "$work/pg/data" -U postgres -A trust -N -E UTF8 --locale=C >/dev/null
as_pg "$PGBIN/postgres" -D "$work/pg/data" -p "$port" -k "$work/pg" -c listen_addresses=127.0.0.1 \
  -c fsync=off >"$work/pg/log" 2>&1 &
pg_pid=$!
psql() { "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$work/pg" -p "$port" -U postgres "$@"; }
for _ in $(seq 1 100); do psql -d postgres -c 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.1; done
psql -d postgres -c 'CREATE DATABASE n8n'
psql -d n8n -f "$here/tests/fixtures/n8n-1.123-sample.sql" >/dev/null
echo "n8n database: $(psql -d n8n -c 'SELECT count(*) FROM workflow_entity') workflows, $(psql -d n8n -c 'SELECT count(*) FROM credentials_entity') credentials, $(psql -d n8n -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") tables"

# A server's config, as docker-compose + nginx + Let's Encrypt lay it out.
srv=$work/srv
mkdir -p "$srv/n8n" "$srv/nginx/conf.d" "$srv/letsencrypt/archive/n8n.example.com" "$srv/letsencrypt/live/n8n.example.com"
printf 'N8N_ENCRYPTION_KEY=acc-n8n-fixed-encryption-key-0123456789\nDB_TYPE=postgresdb\nN8N_HOST=n8n.example.com\n' > "$srv/n8n/.env"
chmod 600 "$srv/n8n/.env"
printf 'services:\n  n8n:\n    image: docker.n8n.io/n8nio/n8n:1.123.0\n    env_file: .env\n  postgres:\n    image: postgres:15\n' > "$srv/n8n/docker-compose.yaml"
printf 'server {\n  listen 443 ssl;\n  server_name n8n.example.com;\n  location / { proxy_pass http://127.0.0.1:5678; }\n}\n' > "$srv/nginx/conf.d/n8n.conf"
printf -- '-----BEGIN CERTIFICATE-----\ndemo\n-----END CERTIFICATE-----\n' > "$srv/letsencrypt/archive/n8n.example.com/fullchain1.pem"
ln -s ../../archive/n8n.example.com/fullchain1.pem "$srv/letsencrypt/live/n8n.example.com/fullchain.pem"

store_dir=${keep:-$work}
export ARK_STORE=$store_dir/store ARK_DATA_DIR=$store_dir/data
export ARK_PASSWORD=${ARK_PASSWORD:-demo passphrase, use a real one}
export ARK_N8N_DB="postgres://postgres@127.0.0.1:$port/n8n"
export ARK_CONFIG_PATHS="$srv/n8n/.env:$srv/n8n/docker-compose.yaml:$srv/nginx:$srv/letsencrypt"
export ARK_PG_DUMP=$PGBIN/pg_dump

step "a store (encrypted), and the first backup of the whole system"
"$ARK" init
show backup --type full_system --no-default-config-paths

step "a day of work in n8n: a workflow renamed, one edited, one deleted, executions pruned"
renamed=$(psql -d n8n -c "SELECT id FROM workflow_entity ORDER BY name LIMIT 1")
edited=$(psql -d n8n -c "SELECT id FROM workflow_entity ORDER BY name OFFSET 1 LIMIT 1")
deleted=$(psql -d n8n -c "SELECT id FROM workflow_entity ORDER BY name DESC LIMIT 1")
edited_name=$(psql -d n8n -c "SELECT name FROM workflow_entity WHERE id = '$edited'")
psql -d n8n -c "UPDATE workflow_entity SET name = name || ' v2', \"updatedAt\" = now() WHERE id = '$renamed'"
psql -d n8n -c "UPDATE workflow_entity SET nodes = jsonb_set(nodes::jsonb, '{0,parameters,demo}', '\"edited\"')::json,
                  \"versionId\" = gen_random_uuid()::text, \"updatedAt\" = now() WHERE id = '$edited'"
psql -d n8n -c "DELETE FROM workflow_entity WHERE id = '$deleted'"
psql -d n8n -c "DELETE FROM execution_entity WHERE id IN (SELECT id FROM execution_entity ORDER BY id LIMIT 2)"
printf 'N8N_ENCRYPTION_KEY=acc-n8n-fixed-encryption-key-0123456789\nDB_TYPE=postgresdb\nN8N_HOST=n8n.example.com\nN8N_METRICS=true\n' > "$srv/n8n/.env"

step "the second backup: only what changed is stored"
show backup --type full_system --no-default-config-paths

step "browsing, from the catalog (no dump is read)"
first=$("$ARK" --json list | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["backup_id"])' 2>/dev/null || true)
show list
show show latest --workflow "${edited_name:0:12}"
[ -n "$first" ] && show diff "$first" latest
show history "$edited"

step "restores: the edited workflow as it was yesterday, to a file; yesterday's database beside today's; the config under a scratch root"
show restore workflow "$first" "$edited" --out "$work/restored"
ls -l "$work/restored"
show restore database "$first" n8n --as n8n_yesterday
show restore config "$first" --root "$work/scratch" --dry-run
show restore history

step "the store checks clean"
show check

echo
if [ -n "$keep" ]; then
  cat <<EOF
The store and its catalog are kept in $keep (the PostgreSQL server and the
restored files are gone). To look at them:

  export ARK_STORE=$keep/store ARK_DATA_DIR=$keep/data ARK_PASSWORD='$ARK_PASSWORD'
  $ARK list
  $ARK show latest

EOF
else
  echo "Nothing was kept: ./setup.sh demo DIR keeps the store and its catalog in DIR."
fi
echo "The binary is $ARK (./setup.sh install puts it in /usr/local/bin)."
