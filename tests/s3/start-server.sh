#!/usr/bin/env bash
# Starts a throwaway S3-compatible server for the tests, on 127.0.0.1 only.
#
#   eval "$(tests/s3/start-server.sh)"
#   cargo test --test backend_conformance
#   tests/s3/stop-server.sh
#
# In a script under `set -e`, `eval "$(...)"` hides a failed start (eval of
# nothing succeeds; the S3 tests would then fail for want of a bucket):
#
#   s3env=$(tests/s3/start-server.sh) && eval "$s3env"
#   trap tests/s3/stop-server.sh EXIT
#
# The server is moto (PyPI `moto`, pinned below), installed on first use into
# a virtualenv under ${ARK_S3_SERVER_HOME:-~/.cache/n8n-ark/s3-server}. It
# listens on a free port chosen by the kernel, keeps its scratch files and log
# in a fresh temporary directory, and gets a bucket. On standard output the
# script prints only shell lines for `eval`: AWS_ACCESS_KEY_ID,
# AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL, ARK_TEST_S3_BUCKET,
# ARK_TEST_S3_PID (the server's pid, for stop-server.sh) and ARK_TEST_S3_DIR
# (its scratch directory). Progress and errors go to standard error.
#
# moto's PUT checks `If-None-Match: *` and then stores the object in two
# steps; under its threaded HTTP server two racing creates of one key could
# both pass the check. Real S3 makes the check and the write one atomic step,
# and our conformance suite checks exactly that, so the launcher below runs
# every mutating request (PUT, POST, DELETE) of moto's own WSGI app under one
# lock. Reads stay concurrent.
set -euo pipefail

MOTO_VERSION=5.2.5
# Everything pip installs, pinned, so a run next year installs the same server.
PINS=(
  "moto[s3]==$MOTO_VERSION" Flask==3.1.3 flask-cors==6.0.5 Werkzeug==3.1.9
  blinker==1.9.0 boto3==1.44.8 botocore==1.44.8 certifi==2026.10.19.post1 cffi==2.1.1
  charset-normalizer==3.5.3 click==8.5.1 cryptography==50.0.2 idna==3.20 itsdangerous==2.2.0
  Jinja2==3.1.6 jmespath==1.1.0 MarkupSafe==3.0.4 py-partiql-parser==0.6.3 pycparser==3.12
  python-dateutil==2.9.0.post0 PyYAML==6.0.4 requests==2.34.2 responses==0.26.3
  s3transfer==0.19.3 six==1.17.0 urllib3==2.8.0 xmltodict==1.0.4
)

HOME_DIR=${ARK_S3_SERVER_HOME:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/n8n-ark/s3-server}
VENV=$HOME_DIR/moto-$MOTO_VERSION
BUCKET=ark-test
ACCESS_KEY=ark-test-access-key
SECRET_KEY=ark-test-secret-key
REGION=us-east-1
STARTUP_TIMEOUT=${ARK_S3_STARTUP_TIMEOUT:-60}

log() { echo "start-server: $*" >&2; }
die() { log "error: $*"; exit 1; }

installed() {
  [ -x "$VENV/bin/python" ] &&
    "$VENV/bin/python" -c "import moto, flask, flask_cors, boto3; assert moto.__version__ == '$MOTO_VERSION'" 2>/dev/null
}

install_server() {
  installed && return 0
  mkdir -p "$HOME_DIR"
  # One installer at a time (parallel CI jobs, two shells).
  exec 9>"$HOME_DIR/.install.lock"
  flock 9
  if installed; then
    exec 9>&-
    return 0
  fi
  log "installing moto $MOTO_VERSION (S3 server for the tests) into $VENV"
  local python
  python=$(command -v python3 || true)
  if [ -z "$python" ] || ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
      log "installing python3 and python3-venv with apt-get"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3 python3-venv >&2 ||
        { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3 python3-venv >&2; }
      python=$(command -v python3)
    else
      die "python3 with the venv module is needed (Debian: apt-get install python3 python3-venv)"
    fi
  fi
  # A venv cannot be moved once built: build it in place. An interrupted
  # install fails the check above next time and is built again.
  rm -rf "$VENV"
  "$python" -m venv "$VENV" >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "${PINS[@]}" >&2 ||
    die "pip install of moto $MOTO_VERSION failed"
  installed || die "moto $MOTO_VERSION does not import after installation"
  exec 9>&-
  log "installed moto $MOTO_VERSION"
}

# The server: moto's WSGI app on a kernel-chosen port of 127.0.0.1. Writes
# its pid and then its port into files in the scratch directory.
LAUNCHER='
import os, sys, threading
from werkzeug.serving import make_server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

scratch = sys.argv[1]
app = DomainDispatcherApplication(create_backend_app)
writes = threading.Lock()

def serialized(environ, start_response):
    if environ.get("REQUEST_METHOD") in ("GET", "HEAD", "OPTIONS"):
        return app(environ, start_response)
    with writes:
        return list(app(environ, start_response))

def publish(name, value):
    tmp = os.path.join(scratch, name + ".tmp")
    with open(tmp, "w") as f:
        f.write(str(value))
    os.rename(tmp, os.path.join(scratch, name))

publish("pid", os.getpid())
srv = make_server("127.0.0.1", 0, serialized, threaded=True, request_handler=MotoRequestHandler)
os.environ["MOTO_PORT"] = str(srv.port)
publish("port", srv.port)
srv.serve_forever()
'

# Waits until the server answers S3 requests, then creates the bucket.
CREATE_BUCKET='
import sys, time, boto3, botocore
from botocore.config import Config
endpoint, bucket, ak, sk, region, timeout = sys.argv[1:7]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ak, aws_secret_access_key=sk,
                  region_name=region, config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10))
deadline = time.time() + float(timeout)
while True:
    try:
        s3.list_buckets()
        break
    except Exception as e:
        if time.time() > deadline:
            sys.exit(f"the server at {endpoint} does not answer: {e}")
        time.sleep(0.2)
s3.create_bucket(Bucket=bucket)
s3.head_bucket(Bucket=bucket)
'

install_server

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/ark-s3-server.XXXXXX")
touch "$SCRATCH/.ark-s3-server"
# moto spools large objects to temporary files: keep them in the scratch dir.
TMPDIR="$SCRATCH" setsid "$VENV/bin/python" -c "$LAUNCHER" "$SCRATCH" \
  </dev/null >"$SCRATCH/server.log" 2>&1 &
launcher=$!

deadline=$((SECONDS + STARTUP_TIMEOUT))
while [ ! -s "$SCRATCH/port" ]; do
  if ! kill -0 "$launcher" 2>/dev/null; then
    tail -n 20 "$SCRATCH/server.log" >&2 || true
    rm -rf "$SCRATCH"
    die "the server exited during start-up (log above)"
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    kill "$launcher" 2>/dev/null || true
    tail -n 20 "$SCRATCH/server.log" >&2 || true
    rm -rf "$SCRATCH"
    die "the server did not listen within ${STARTUP_TIMEOUT}s"
  fi
  sleep 0.1
done
PORT=$(cat "$SCRATCH/port")
PID=$(cat "$SCRATCH/pid")
ENDPOINT="http://127.0.0.1:$PORT"

if ! "$VENV/bin/python" -c "$CREATE_BUCKET" "$ENDPOINT" "$BUCKET" "$ACCESS_KEY" "$SECRET_KEY" "$REGION" \
  "$STARTUP_TIMEOUT" >&2; then
  kill "$PID" 2>/dev/null || true
  tail -n 20 "$SCRATCH/server.log" >&2 || true
  rm -rf "$SCRATCH"
  die "could not create the bucket $BUCKET"
fi
log "moto $MOTO_VERSION listening on $ENDPOINT (pid $PID, bucket $BUCKET, log $SCRATCH/server.log)"

cat <<EOF
unset ARK_S3_ENDPOINT AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_REGION;
export AWS_ACCESS_KEY_ID=$ACCESS_KEY;
export AWS_SECRET_ACCESS_KEY=$SECRET_KEY;
export AWS_REGION=$REGION;
export AWS_ENDPOINT_URL=$ENDPOINT;
export ARK_TEST_S3_BUCKET=$BUCKET;
export ARK_TEST_S3_PID=$PID;
export ARK_TEST_S3_DIR=$SCRATCH;
EOF
