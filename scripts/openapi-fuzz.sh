#!/usr/bin/env bash
# Checks a live server against openapi.yaml with schemathesis (PyPI). First every operation is
# called with real objects and each answer checked (scripts/openapi-responses.py); then requests generated from
# the description — valid ones, invalid ones, sequences that follow the links between
# operations — must never get a 5xx, every response must match its schema (status, content
# type, headers, body), every schema-violating request must be refused, and a known path asked
# with an undeclared method must be a 405.
#
# Not checked: that every schema-valid request is accepted. Some rules cannot be written in
# JSON Schema — a signed impression token, age_min ≤ age_max, a time from 1970 to 9999 on a real
# date, an awareness bid a multiple of 1000 after a PATCH — so such requests get a 400 naming the
# field. (A daily budget above the total is accepted: the total stops the spending first.)
#
# Usage: scripts/openapi-fuzz.sh [path/to/adserve] [max examples per operation]
# (defaults: .build/debug/adserve, 25). SCHEMATHESIS_SEED picks the generator's seed (default 1,
# so a CI run is reproducible); the venv is kept in $ADSERVE_FUZZ_VENV (/tmp/adserve-schemathesis).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-.build/debug/adserve}")
examples=${2:-25}
spec=$(realpath Sources/API/openapi.yaml)
venv=${ADSERVE_FUZZ_VENV:-/tmp/adserve-schemathesis}
work=$(mktemp -d)
port=$(python3 "$(dirname "$0")/free_port.py")
key=fuzz-admin-key-0123456789
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

if [ ! -x "$venv/bin/schemathesis" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "schemathesis==4.32.5"
fi

# Real objects for every route: a small simulation (shown at /v1/simulation) whose serve log
# trains two click models (listed, promoted and rolled back at /v1/models).
"$bin" simulate --users 1000 --ads 200 --days 2 --arms baseline,random --out "$work/simulation" >/dev/null 2>&1
for _ in 1 2; do
    "$bin" train --logs "$work/simulation/serve-log.jsonl" --models "$work/models" --holdout 12h --no-tune >/dev/null 2>&1
done

# Wrong keys are part of the run (authentication checks): the per-address limit is lifted so
# they do not turn the rest of the run into 429s.
ADSERVE_ADMIN_KEY=$key "$bin" serve --db "$work/adserve.db" --port "$port" --content-encoder none \
    --models "$work/models" --simulation "$work/simulation" --failed-auth-per-minute 1000000000 >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done

# The description served is the one checked.
curl -sf "http://127.0.0.1:$port/openapi.yaml" | cmp - "$spec"

# First every operation with real objects, each answer checked against the description.
"$venv/bin/python" scripts/openapi-responses.py "$spec" "http://127.0.0.1:$port" "$key"

cd "$work"
status=0
"$venv/bin/schemathesis" run "http://127.0.0.1:$port/openapi.yaml" --url "http://127.0.0.1:$port" \
    -H "Authorization: Bearer $key" --checks all --exclude-checks positive_data_acceptance \
    --max-examples "$examples" --seed "${SCHEMATHESIS_SEED:-1}" --workers 1 --suppress-health-check all \
    --no-color || status=$?
if grep -q "request failed" "$work/server.log"; then
    echo "the server logged failed requests:"; grep -m 5 "request failed" "$work/server.log"; status=1
fi
exit $status
