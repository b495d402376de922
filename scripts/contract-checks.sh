#!/usr/bin/env bash
# The contract checked from outside, against the real debug binary on a free loopback port
# with a temp data dir (stopped by PID afterwards, pass or fail):
#   1. openapi-spec-validator on the checked-in openapi.json;
#   2. schemathesis (no 5xx, every response in its documented schema and status codes);
#   3. the API Explorer in headless Chromium (tests/browser/explorer.py, Playwright);
#   4. webhook signatures verified by the standardwebhooks package (scripts/webhook-check.py,
#      which starts its own server and receiver).
# One venv, target/pytools, holds the four tools (installed from PyPI on first use);
# Chromium is Debian's (`make tools` installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=target/pytools
BIN=target/debug/darkroom

if [[ ! -x $VENV/bin/schemathesis || ! -x $VENV/bin/openapi-spec-validator ]] ||
    ! "$VENV/bin/python" -c 'import playwright, standardwebhooks' 2>/dev/null; then
    echo "installing playwright, schemathesis, openapi-spec-validator and standardwebhooks into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        "playwright>=1.40,<2" "schemathesis>=4,<5" "openapi-spec-validator>=0.7,<1" \
        "standardwebhooks>=1.1,<2"
fi
[[ -x $BIN ]] || cargo build --quiet

"$VENV/bin/openapi-spec-validator" openapi.json

DATA=$(mktemp -d)
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
KEY=$(DARKROOM_DATA_DIR=$DATA "$BIN" keys create --scope write --name contract-checks 2>/dev/null)
DARKROOM_DATA_DIR=$DATA DARKROOM_LISTEN=127.0.0.1:$PORT DARKROOM_SERVER__DRAIN_SECS=0 "$BIN" serve >"$DATA/server.log" 2>&1 &
PID=$!
stop() {
    kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$DATA"
}
trap stop EXIT
for _ in $(seq 100); do
    curl -fsS "$BASE/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done

# Bounded by -n (examples per operation) and the timeout; --max-time would be a budget it fills.
timeout 600 "$VENV/bin/schemathesis" run "$BASE/api/v1/openapi.json" \
    -H "Authorization: Bearer $KEY" \
    -c not_a_server_error,response_schema_conformance,status_code_conformance \
    --phases examples,coverage,fuzzing -n 25 --no-color

timeout 300 "$VENV/bin/python" tests/browser/explorer.py "$BASE" "$KEY" \
    tests/fixtures/jpeg/grace_hopper_512x600.jpg

timeout 120 "$VENV/bin/python" scripts/webhook-check.py "$BIN"
echo "contract checks: 4 passed, 0 failed"
