#!/usr/bin/env bash
# A learned server loads its promoted models and builds its candidate index before it listens:
# otherwise its first requests (for the seconds the index takes, minutes at a million ads) are
# answered by the fallback, which scores every eligible ad for each request.
# Trains a click model and a two-tower candidate model on a small simulated log, serves the
# demo world (100,000 ads: an index build of seconds) with them, and checks in the server's log
# that the candidate index was built before the server began listening, and that the first
# decision is answered.
# Usage: scripts/ml-start-check.sh [path/to/adserve]   (default: .build/debug/adserve)
set -euo pipefail
bin=${1:-.build/debug/adserve}
work=$(mktemp -d)
port=$(python3 "$(dirname "$0")/free_port.py")
key=ml-start-admin-key-0123456789
pid=""
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# 1,000 ads, so that the two-tower model's recall@K (K 100, the serving default) can beat the
# most-clicked ads' and be promoted (when K covers every ad both find every clicked ad).
"$bin" simulate --users 3000 --ads 1000 --days 2 --arms random --seed 3 --out "$work/sim" >"$work/simulate.log" 2>&1
"$bin" train --logs "$work/sim/serve-log.jsonl" --target click --models "$work/models" --promote >"$work/train.log" 2>&1
if [ ! -s "$work/models/promoted-candidates.json" ]; then
    echo "ml-start-check: the candidate model was not promoted"; cat "$work/train.log"; exit 1
fi

ADSERVE_ADMIN_KEY=$key "$bin" serve --demo --no-traffic --content-encoder none --ranker ml --models "$work/models" \
    --db "$work/adserve.db" --port "$port" >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 1800); do
    grep -q "AdServe listening" "$work/server.log" && break
    kill -0 "$pid" 2>/dev/null || { echo "ml-start-check: the server exited"; cat "$work/server.log"; exit 1; }
    sleep 0.2
done
listening=$(grep -n "AdServe listening" "$work/server.log" | head -1 | cut -d: -f1 || true)
built=$(grep -n "candidate model loaded, its index built" "$work/server.log" | head -1 | cut -d: -f1 || true)
if [ -z "$listening" ]; then echo "ml-start-check: the server did not start"; tail -20 "$work/server.log"; exit 1; fi
if [ -z "$built" ] || [ "$built" -gt "$listening" ]; then
    echo "ml-start-check: the server listened (log line $listening) before its candidate index was built (${built:-never})"
    grep -v "hb.request" "$work/server.log" | tail -20
    exit 1
fi
answer=$(curl -sS -X POST "http://127.0.0.1:$port/v1/decisions" -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
    -d '{"user_id":"u1","organic_count":20}')
echo "$answer" | python3 -c "import json,sys; d=json.load(sys.stdin); assert d['ads'], d" \
    || { echo "ml-start-check: the first decision has no ads: $answer"; exit 1; }
echo "ml-start-check passed: index built at log line $built, listening at line $listening, first decision answered"
