#!/usr/bin/env bash
# End-to-end durability check: serve, create a campaign, decide, report events, kill -9 the
# server, restart it on the same file, and check that every acknowledged event and its charge
# survived — and that a replayed event is still recognised as a duplicate.
# Usage: scripts/kill9-check.sh [path/to/adserve]   (default: .build/debug/adserve)
set -euo pipefail
bin=${1:-.build/debug/adserve}
work=$(mktemp -d)
port=$(python3 "$(dirname "$0")/free_port.py")
key=kill9-admin-key-0123456789
pid=""
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# The one ad wins alone, so under second price it pays the reserve: set to its bid, each click
# is charged 250,000 micros.
start() {
    ADSERVE_ADMIN_KEY=$key "$bin" serve --db "$work/adserve.db" --port "$port" --reserve-cpc-micros 250000 >>"$work/server.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "server did not start"; cat "$work/server.log"; exit 1
}
api() { curl -sS -X "$1" "http://127.0.0.1:$port$2" -H "Authorization: Bearer $key" -H 'Content-Type: application/json' ${3:+-d "$3"}; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d' + sys.argv[1]))" "$1"; }

start
adv=$(api POST /v1/advertisers '{"name":"Durable"}' | field '["id"]')
camp=$(api POST /v1/campaigns "{\"advertiser_id\":$adv,\"name\":\"k9\",\"objective\":\"traffic\",\"bid_micros\":250000,\"daily_budget_micros\":10000000,\"total_budget_micros\":10000000}" | field '["id"]')
api POST /v1/ads "{\"campaign_id\":$camp,\"format\":\"image\",\"media_urls\":[\"https://cdn.example/1.jpg\"],\"caption\":\"c\",\"company\":\"Durable\",\"product\":\"p\",\"description\":\"d\"}" >/dev/null

tokens=()
for user in u1 u2 u3; do
    token=""
    for _ in $(seq 1 30); do
        token=$(api POST /v1/decisions "{\"user_id\":\"$user\",\"organic_count\":5}" | field '["ads"][0]["impression_token"] if d["ads"] else ""')
        [ -n "$token" ] && break
        sleep 0.1
    done
    [ -n "$token" ] || { echo "no ad served to $user"; exit 1; }
    tokens+=("$token")
done
sleep 1.5  # a person's click comes a moment after the ad is served; sooner ones are invalid traffic
for t in "${tokens[@]}"; do
    api POST /v1/events "{\"type\":\"impression\",\"impression_token\":\"$t\"}" | grep -q '"duplicate":false'
    api POST /v1/events "{\"type\":\"click\",\"impression_token\":\"$t\"}" | grep -q '"duplicate":false'
done

kill -9 "$pid"; wait "$pid" 2>/dev/null || true; pid=""
start

report=$(api GET "/v1/reports/campaigns/$camp")
impressions=$(echo "$report" | field '["impressions"]')
clicks=$(echo "$report" | field '["clicks"]')
spend=$(echo "$report" | field '["spend_micros"]')
replay=$(api POST /v1/events "{\"type\":\"click\",\"impression_token\":\"${tokens[0]}\"}" | field '["duplicate"]')
echo "after kill -9 and restart: impressions=$impressions clicks=$clicks spend_micros=$spend replayed_click_duplicate=$replay"
[ "$impressions" = 3 ] && [ "$clicks" = 3 ] && [ "$spend" = 750000 ] && [ "$replay" = True ] || { echo "FAILED: acknowledged events were lost"; exit 1; }
echo "kill -9 durability check passed"
