#!/usr/bin/env python3
"""Abuse cases against a live AdServe server: what each got and how long it took.

Usage: python3 scripts/abuse.py [--binary .build/release/adserve] [--port 18181]

Starts `adserve serve` on a temporary store on 127.0.0.1, runs each case, prints one line per
request (status, field named, seconds) and the worst single-request latency, then stops the
server. Loopback only; every loop is bounded.
"""
import argparse, json, os, shutil, subprocess, sys, tempfile, time, urllib.request, urllib.error

ADMIN = "abuse-admin-key-0123456789abcdef"
FEED = "abuse-feed-key-0123456789abcdef0"


def call(port, method, path, body=None, key=ADMIN, timeout=300):
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    req.add_header("Authorization", f"Bearer {key}")
    req.add_header("Content-Type", "application/json")
    started = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    elapsed = time.monotonic() - started
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = {}
    field = (parsed.get("error") or {}).get("field") if isinstance(parsed, dict) else None
    return status, field, elapsed, parsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=".build/release/adserve")
    ap.add_argument("--port", type=int, default=18181)
    args = ap.parse_args()
    folder = tempfile.mkdtemp(prefix="adserve-abuse-")
    env = dict(os.environ, ADSERVE_ADMIN_KEY=ADMIN, ADSERVE_FEED_KEY=FEED, LOG_LEVEL="error")
    server = subprocess.Popen([args.binary, "serve", "--port", str(args.port), "--db", os.path.join(folder, "abuse.db")],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worst = 0.0
    rows = []
    try:
        for _ in range(100):
            try:
                call(args.port, "GET", "/healthz", key=None, timeout=1)
                break
            except Exception:
                time.sleep(0.1)
        status, _, _, advertiser = call(args.port, "POST", "/v1/advertisers", '{"name":"Abuser"}')
        aid = advertiser["id"]
        _, _, _, campaign = call(args.port, "POST", "/v1/campaigns",
                                 f'{{"advertiser_id":{aid},"name":"c","objective":"traffic","bid_micros":100000,'
                                 '"daily_budget_micros":1000000,"total_budget_micros":1000000}')
        cid = campaign["id"]

        def case(name, method, path, body=None, key=ADMIN):
            nonlocal worst
            status, field, seconds, _ = call(args.port, method, path, body, key)
            worst = max(worst, seconds)
            rows.append((name, len(body or ""), status, field, seconds))
            print(f"{name:<44} {len(body or ''):>9} B  {status}  field={field!s:<22} {seconds:8.3f} s", flush=True)

        # 1. Malformed numbers: a field that cannot hold them, plus many more of them.
        for n in (1_000, 8_000, 64_000, 200_000):
            numbers = ",".join(["0.5"] * n)
            body = (f'{{"advertiser_id":{aid},"name":"x","objective":"traffic","bid_micros":1.5,'
                    f'"daily_budget_micros":1.5,"total_budget_micros":1000000,"padding":[{numbers}]}}')
            case(f"unrepresentable numbers, {n:,} extra", "POST", "/v1/campaigns", body)
        # 2. Deep nesting and long strings.
        for depth in (1_000, 500_000):
            case(f"nesting {depth:,} deep", "POST", "/v1/campaigns", "[" * depth + "]" * depth)
        case("a 1 MB string name", "POST", "/v1/advertisers", '{"name":"' + "x" * 1_000_000 + '"}')
        case("many fields", "POST", "/v1/advertisers", "{" + ",".join(f'"f{i}":{i}' for i in range(60_000)) + ',"name":"ok"}')
        case("NUL in a name", "POST", "/v1/advertisers", '{"name":"a\\u0000b"}')
        case("javascript: media URL", "POST", "/v1/ads",
             f'{{"campaign_id":{cid},"format":"image","media_urls":["javascript:alert(1)"],"caption":"","company":"A","product":"","description":""}}')
        case("over 1 MiB body", "POST", "/v1/advertisers", '{"name":"' + "x" * 1_200_000 + '"}')
        case("forged token", "POST", "/v1/events", '{"type":"click","impression_token":"AAAA.BBBB"}', key=FEED)
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)
    crashed = server.returncode not in (0, -15, 143)
    print(f"requests: {len(rows)}, 5xx: {sum(1 for r in rows if r[2] >= 500)}, server exit: {server.returncode}, "
          f"worst single request: {worst:.3f} s")
    return 1 if crashed or any(r[2] >= 500 for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
