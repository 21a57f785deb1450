#!/usr/bin/env python3
"""Abuse cases against a live AdServe server: what each got and how long it took.

Usage: python3 scripts/abuse.py [--binary .build/release/adserve] [--port 18181] [--fuzz 2000] [--seed 1]

Starts `adserve serve` on a temporary store on 127.0.0.1 (without the content encoder, whose
background work would blur the latencies), runs each case, prints one line per
request (status, field named, seconds) and the worst single-request latency. Then it fuzzes:
`--fuzz N` randomly mutated bodies (seeded by `--seed`, the same mutations as
Tests/AdServeTests/FuzzTests.swift) to each of the ten JSON routes, and N mutated impression
tokens to /v1/events, and prints a summary: requests fuzzed, status counts per route, 5xx, connection
failures, whether the server died, and the worst single request with what caused it. Exits
non-zero on any 5xx, connection failure or crash. `--fuzz 0` skips the fuzzing. Loopback only;
every loop is bounded and every request has a timeout.
"""
import argparse, base64, collections, json, os, random, re, shutil, subprocess, sys, tempfile, time, urllib.request, urllib.error

ADMIN = "abuse-admin-key-0123456789abcdef"
QUOTA_CAMPAIGNS = 40      # the server's quotas in this run (defaults: 1,000 campaigns, 10,000 ads)
QUOTA_ADS = 2_000
IDLE_TIMEOUT_S = 3
FEED = "abuse-feed-key-0123456789abcdef0"


def call(port, method, path, body=None, key=ADMIN, timeout=300):
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    req.add_header("Authorization", f"Bearer {key}")
    req.add_header("Content-Type", "application/json")
    started = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, text = r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode("utf-8", "replace")
    elapsed = time.monotonic() - started
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = {}
    field = (parsed.get("error") or {}).get("field") if isinstance(parsed, dict) else None
    return status, field, elapsed, parsed


# MARK: Mutations (the same ideas as FuzzMutator in Tests/AdServeTests/FuzzTests.swift)

FUZZ_NUMBERS = [
    "0", "-0", "-1", "1.5", "-0.5", "0.1", "1e309", "-1e309", "1E400", "1e-400", "1e30", "-1e30", "9.3e18",
    "99999999999999999999", "-99999999999999999999", "9223372036854775807", "9223372036854775808",
    "-9223372036854775809", "18446744073709551615", "4.9e-324", "3.5e38", "123456789012345678901234567890.5",
    "1" + "0" * 400, "01", "1.", ".5", "+1", "--1", "NaN", "Infinity", "true", "false",
]
# String contents: too long, control characters raw and escaped, invalid UTF-8, unpaired
# surrogates, bidirectional overrides, schemes a media URL must not have.
FUZZ_STRINGS = [
    b"", b"   ", b"x" * 65, b"x" * 201, b"y" * 2049, b"z" * 5001, b"w" * 20000,
    rb"\u0000", rb"a\u001b[31mb", rb"\u0085", rb"\u202e", rb"\ufeff", rb"\ud800", rb"\udc00\ud800", rb"\ud83c\udf89",
    rb"\u12", rb"\x", b"\\", b"\x01", b"\t\n", b"\x00", b"\xff\xfe", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
    ("e" + "\u0301" * 300).encode(), "Café 東京 🎉".encode(), b"javascript:alert(1)",
    b"data:text/html,<script>alert(1)</script>", b"HTTPS://CDN.EXAMPLE/A.JPG", "https://\u202egpj.exe".encode(),
]
FUZZ_FRAGMENTS = [
    b'"', b"\\", b"{", b"}", b"[", b"]", b":", b",", b"null", b"true", b"-", b"e", b".", b" ", b"/*", b"NaN",
    rb"\u0000", rb"\ud800", rb'"\u0000":1,', b"\x00", b"\xff", b"\xef\xbb\xbf",
]
BASE64URL = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
NUMBER_AT = re.compile(rb"(?<=[:\[,])-?[0-9][0-9.eE+-]*")
STRING_AT = re.compile(rb'(?<=[:\[])"((?:[^"\\]|\\.)*)"', re.S)


class Mutator:
    """Seeded havoc-style mutations: one to four random edits stacked on a valid body."""

    def __init__(self, seed):
        self.r = random.Random(seed)

    def below(self, n):
        return self.r.randrange(n) if n > 0 else 0

    def pick(self, items):
        return items[self.below(len(items))]

    def random_bytes(self, n):
        return bytes(self.r.getrandbits(8) for _ in range(n))

    def insert(self, data, fragment, at=None):
        at = self.below(len(data) + 1) if at is None else at
        return data[:at] + fragment + data[at:]

    def hostile_value(self):
        k = self.below(10)
        if k == 0:
            return b"null"
        if k == 1:
            return self.pick([b"true", b"false", b"[]", b"{}", b'""', b"[null]", b'{"a":null}', b"[1,2,3]", b"0"])
        if k in (2, 3):
            return self.pick(FUZZ_NUMBERS).encode()
        if k in (4, 5, 6):
            return b'"' + self.pick(FUZZ_STRINGS) + b'"'
        if k == 7:
            return ("[" + ",".join(str(i) for i in range(1 + self.below(500))) + "]").encode()
        if k == 8:
            depth = self.pick([5, 33, 1000])
            return b"[" * depth + b"]" * depth
        return b'"' + self.random_bytes(1 + self.below(16)) + b'"'

    def after_brace(self, data, fragment):
        brace = data.find(b"{")
        return self.insert(data, fragment, brace + 1 if brace >= 0 else None)

    def replace_number(self, data):
        replacement = self.pick(FUZZ_NUMBERS).encode()
        spans = [m.span() for m in NUMBER_AT.finditer(data)]
        if not spans:
            return self.insert(data, replacement)
        start, end = self.pick(spans)
        return data[:start] + replacement + data[end:]

    def replace_string(self, data):
        replacement = self.pick(FUZZ_STRINGS)
        spans = [m.span(1) for m in STRING_AT.finditer(data)]
        if not spans:
            return self.insert(data, b'"' + replacement + b'"')
        start, end = self.pick(spans)
        return data[:start] + replacement + data[end:]

    def mutate(self, data, other, fields):
        for _ in range(1 + self.below(4)):
            k, n = self.below(14), len(data)
            if k == 0 and n:  # flip one bit
                i = self.below(n)
                data = data[:i] + bytes([data[i] ^ (1 << self.below(8))]) + data[i + 1:]
            elif k == 1 and n:  # overwrite one byte
                i = self.below(n)
                data = data[:i] + self.random_bytes(1) + data[i + 1:]
            elif k == 2:  # insert random bytes
                data = self.insert(data, self.random_bytes(1 + self.below(8)))
            elif k == 3 and n:  # delete a slice
                start = self.below(n)
                data = data[:start] + data[min(n, start + 1 + self.below(16)):]
            elif k == 4 and n:  # duplicate a slice
                start = self.below(n)
                data = self.insert(data, data[start:min(n, start + 1 + self.below(64))])
            elif k == 5:  # splice: the head of this body, the tail of another
                data = data[:self.below(n + 1)] + other[self.below(len(other) + 1):]
            elif k == 6:  # a number no field can hold
                data = self.replace_number(data)
            elif k == 7:  # a string's contents replaced
                data = self.replace_string(data)
            elif k == 8:  # a JSON fragment anywhere
                data = self.insert(data, self.pick(FUZZ_FRAGMENTS))
            elif k == 9:  # deep nesting, open or closed, of arrays or objects
                depth, shape = self.pick([2, 16, 31, 32, 33, 100, 600, 5000]), self.below(3)
                if shape == 0:
                    nest = b"[" * depth
                elif shape == 1:
                    nest = b"[" * depth + b"1" + b"]" * depth
                else:
                    nest = b'{"a":' * depth + b"1" + b"}" * depth
                data = self.insert(data, nest)
            elif k == 10:  # an unknown field
                data = self.after_brace(data, b'"extra_%d":' % self.below(1000) + self.hostile_value() + b",")
            elif k == 11:  # many fields
                count = self.pick([20, 200, 2000])
                data = self.after_brace(data, ",".join(f'"f{i}":{i}' for i in range(count)).encode() + b",")
            elif k == 12:  # a field of this body again (a duplicate key), with a hostile value
                field = self.pick(fields) if fields else "name"
                data = self.after_brace(data, f'"{field}":'.encode() + self.hostile_value() + b",")
            elif k == 13:  # truncated
                data = data[:self.below(n + 1)]
        return data

    def mutate_token(self, text, other):
        parts, data = text.split("."), text.encode()
        k = self.below(12)
        if k == 0 and data:  # one character to another of the alphabet
            i = self.below(len(data))
            data = data[:i] + bytes([self.pick(BASE64URL)]) + data[i + 1:]
        elif k == 1:  # this token's payload with another's MAC
            data = (parts[0] + "." + other.split(".")[-1]).encode()
        elif k == 2:  # payload and MAC swapped
            data = ".".join(reversed(parts)).encode()
        elif k == 3 and len(parts) == 2:  # one payload field changed and re-encoded, MAC kept: a forgery
            try:
                payload = base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4))
            except ValueError:
                payload = None
            if payload is not None:
                fields = payload.decode("utf-8", "replace").split("|")
                fields[self.below(len(fields))] = self.pick(["0", "1", "-1", "999999999999", "awareness", "", "x|y", "u1"])
                data = base64.urlsafe_b64encode("|".join(fields).encode()).rstrip(b"=") + b"." + parts[1].encode()
        elif k == 4:  # dots
            data = self.insert(data, b"." * (1 + self.below(400)))
        elif k == 5:  # what other base64 flavours and sloppy clients add
            data = self.insert(data, self.pick([b"=", b"==", b"%3D", b" ", b"\n", b"+", b"/", b"\x00", b"."]))
        elif k == 6:  # one letter's case flipped
            letters = [i for i, c in enumerate(data) if 65 <= c <= 90 or 97 <= c <= 122]
            if letters:
                i = self.pick(letters)
                data = data[:i] + bytes([data[i] ^ 0x20]) + data[i + 1:]
        elif k == 7:  # base64url garbage, with or without a dot
            data = bytes(self.pick(BASE64URL) for _ in range(self.below(300)))
            if self.below(2):
                data = self.insert(data, b".")
        elif k == 8:  # very long: the token repeated
            data = data * (2 + self.below(40))
        elif k == 9:  # random bytes
            data = self.random_bytes(self.below(200))
        elif k == 10 and data:  # shortened
            data = data[:-(1 + self.below(min(len(data), 8)))]
        else:  # a generic byte edit
            data = self.mutate(data, other.encode(), [])
        return data.decode("utf-8", "replace")


# MARK: Fuzzing a live server

class FuzzRun:
    """Sends bodies, counts what came back, remembers the worst request; stops at a crash."""

    def __init__(self, port, server, timeout):
        self.port, self.server, self.timeout = port, server, timeout
        self.sent = 0
        self.statuses = collections.OrderedDict()  # route -> Counter of status
        self.errors = []  # (route, index, size, preview, status or exception text)
        self.failures = []
        self.forged = []  # (index, token): a changed token the server accepted
        self.worst = (0.0, "")
        self.crashed = False

    def send(self, route, index, method, path, body, key):
        counts = self.statuses.setdefault(route, collections.Counter())
        preview = body[:120]
        self.sent += 1
        started = time.monotonic()
        try:
            status, _, _, _ = call(self.port, method, path, body, key, timeout=self.timeout)
        except Exception as e:  # a refused or reset connection, a timeout: the server failed this request
            seconds = time.monotonic() - started
            counts["failed"] += 1
            self.failures.append((route, index, len(body), preview, f"{type(e).__name__}: {e}"))
            if self.server.poll() is not None:
                self.crashed = True
            self.note(seconds, route, index, body)
            return
        seconds = time.monotonic() - started
        counts[status] += 1
        if status >= 500:
            self.errors.append((route, index, len(body), preview, status))
        self.note(seconds, route, index, body)
        return status

    def note(self, seconds, route, index, body):
        if seconds > self.worst[0]:
            self.worst = (seconds, f"{route} #{index}, {len(body):,} B: {body[:80]!r}")


def fuzz(args, server, aid, pcid, pad, token):
    """--fuzz mutated bodies to each JSON route, then --fuzz mutated tokens to /v1/events."""
    campaign_fields = ["advertiser_id", "name", "objective", "bid_micros", "daily_budget_micros", "total_budget_micros",
                       "start_at", "end_at", "targeting", "frequency_cap", "status", "max_conversion_value_micros"]
    ad_fields = ["campaign_id", "format", "media_urls", "caption", "company", "product", "description", "embedding", "status"]
    routes = [
        ("POST /v1/advertisers", "POST", "/v1/advertisers", ADMIN, ["name"],
         ['{"name":"Acme"}', '{"name":"Café 東京 🎉"}']),
        ("POST /v1/campaigns", "POST", "/v1/campaigns", ADMIN, campaign_fields,
         [f'{{"advertiser_id":{aid},"name":"Spring sale","objective":"traffic","bid_micros":500000,'
          '"daily_budget_micros":50000000,"total_budget_micros":100000000,"start_at":"2026-06-01T00:00:00Z",'
          '"end_at":"2036-07-01T00:00:00Z","targeting":{"age_min":18,"age_max":65,"genders":["female"],'
          '"countries":["US","fr"],"languages":["en"],"interests":["running"],"devices":["ios"]},'
          '"frequency_cap":{"impressions":3,"per_hours":24},"status":"paused"}',
          f'{{"advertiser_id":{aid},"name":"Brand","objective":"conversions","bid_micros":2000000,'
          '"daily_budget_micros":1000000,"total_budget_micros":1000000,"status":"paused","max_conversion_value_micros":5000000}']),
        ("PATCH /v1/campaigns/{id}", "PATCH", f"/v1/campaigns/{pcid}", ADMIN, campaign_fields[1:],
         ['{"status":"paused"}',
          '{"name":"Summer","bid_micros":900000,"daily_budget_micros":60000000,"total_budget_micros":200000000,'
          '"start_at":"2026-06-01T00:00:00Z","end_at":"2036-06-02T00:00:00.500Z","targeting":{"countries":["fr"],'
          '"age_min":21},"frequency_cap":{"impressions":5,"per_hours":168},"max_conversion_value_micros":0}']),
        ("POST /v1/ads", "POST", "/v1/ads", ADMIN, ad_fields,
         [f'{{"campaign_id":{pcid},"format":"video","media_urls":["https://cdn.example/v.mp4"],'
          '"caption":"Run faster\\nand further","company":"Acme","product":"Shoe","description":"A fast shoe",'
          '"embedding":[0.1,-0.2,3e-3,1' + ",0" * 380 + '],"status":"paused"}',
          f'{{"campaign_id":{pcid},"format":"image","media_urls":["https://a.example/1.jpg",'
          '"data:image/png;base64,iVBORw0KGgo="],"caption":"","company":"Café 東京","product":"","description":"",'
          '"status":"paused"}']),
        ("PATCH /v1/ads/{id}", "PATCH", f"/v1/ads/{pad}", ADMIN, ad_fields[1:],
         ['{"status":"paused"}',
          '{"media_urls":["http://cdn.example/x.jpg"],"caption":"New","company":"Acme Inc","product":"Shoe 2",'
          '"description":"Better","embedding":[0.5,0.25' + ",0" * 382 + ']}']),
        ("PUT /v1/users/{id}", "PUT", "/v1/users/fuzzer", FEED, ["age", "gender", "country", "language", "interests"],
         ['{"age":30,"gender":"female","country":"us","language":"en","interests":["running","tea"]}', "{}"]),
        ("POST /v1/users/{id}/activity", "POST", "/v1/users/fuzzer/activity", FEED,
         ["type", "topics", "text", "ad_id", "seconds"],
         ['{"type":"view","topics":["Running"],"text":"hello there","ad_id":5,"seconds":12.5}', '{"type":"like"}']),
        ("POST /v1/decisions", "POST", "/v1/decisions", FEED, ["user_id", "context", "organic_count"],
         ['{"user_id":"fuzzer","organic_count":10,"context":{"device":"ios","hour":9,"session_position":4}}',
          '{"user_id":"u_1-x","organic_count":0}']),
        ("POST /v1/events", "POST", "/v1/events", FEED, ["type", "impression_token", "value_micros"],
         [f'{{"type":"impression","impression_token":"{token}"}}',
          f'{{"type":"click","impression_token":"{token}","value_micros":1000}}']),
    ]
    run = FuzzRun(args.port, server, timeout=30)
    mutator = Mutator(args.seed)
    print(f"\nfuzzing: {args.fuzz:,} mutated bodies per route, seed {args.seed}", flush=True)
    for route, method, path, key, fields, seeds in routes:
        seeds = [s.encode() for s in seeds]
        for i in range(args.fuzz):
            if run.crashed:
                break
            body = mutator.mutate(mutator.pick(seeds), mutator.pick(seeds), fields)
            run.send(route, i, method, path, body, key)
        print(f"  {route:<32} {dict(sorted(run.statuses.get(route, {}).items(), key=str))}", flush=True)
    route = "POST /v1/events (mutated tokens)"
    for i in range(args.fuzz):
        if run.crashed:
            break
        text = token
        while text == token:  # a mutation that changes nothing is not a mutated token
            text = mutator.mutate_token(token, mutator.pick([token, "AAAA.BBBB"]))
        event_type = mutator.pick(["impression", "click", "conversion", "hide"])
        body = json.dumps({"type": event_type, "impression_token": text}, ensure_ascii=bool(mutator.below(2))).encode()
        if run.send(route, i, "POST", "/v1/events", body, FEED) == 200:
            run.forged.append((i, text))
    print(f"  {route:<32} {dict(sorted(run.statuses.get(route, {}).items(), key=str))}", flush=True)
    # Last, as each body it accepts rotates the token secret (the events above need the first).
    route, seeds = "POST /v1/token-secret/rotate", [b"{}", b'{"grace_seconds":3600}']
    for i in range(args.fuzz):
        if run.crashed:
            break
        run.send(route, i, "POST", "/v1/token-secret/rotate", mutator.mutate(mutator.pick(seeds), mutator.pick(seeds), ["grace_seconds"]), ADMIN)
    print(f"  {route:<32} {dict(sorted(run.statuses.get(route, {}).items(), key=str))}", flush=True)
    return run


def idle_connection(port):
    """Seconds until the server closes a connection that sends nothing, or a half-sent request."""
    import socket
    results = []
    for first in (b"", b"POST /v1/decisions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.settimeout(30)
        started = time.monotonic()
        if first:
            sock.sendall(first)
        try:
            while sock.recv(4096):
                pass
            results.append(time.monotonic() - started)
        except socket.timeout:
            results.append(None)
        finally:
            sock.close()
    return results


def decision_latencies(port, user, n):
    """Milliseconds of n decisions for one user, sorted."""
    times = []
    for _ in range(n):
        _, _, seconds, _ = call(port, "POST", "/v1/decisions", f'{{"user_id":"{user}","organic_count":10}}', key=FEED)
        times.append(seconds * 1000)
    return sorted(times)


def abuse_self_serve(args, case):
    port = args.port
    p = lambda xs, q: xs[min(len(xs) - 1, int(q * len(xs)))]
    # An honest advertiser with one ad, and its decisions' latency.
    _, _, _, honest = call(port, "POST", "/v1/advertisers", '{"name":"Honest"}')
    _, _, _, hc = call(port, "POST", "/v1/campaigns", f'{{"advertiser_id":{honest["id"]},"name":"h","objective":"traffic",'
                       '"bid_micros":200000,"daily_budget_micros":100000000,"total_budget_micros":100000000}')
    call(port, "POST", "/v1/ads", f'{{"campaign_id":{hc["id"]},"format":"image","media_urls":["https://cdn.example/h.jpg"],'
         '"caption":"Honest","company":"Honest","product":"","description":""}')
    call(port, "PUT", "/v1/users/reader", '{"age":30,"country":"us","interests":["running"]}', key=FEED)
    time.sleep(2.0)
    before = decision_latencies(port, "reader", 1000)
    # A hostile advertiser fills its quota with top-bid ads that match nobody.
    _, _, _, hostile = call(port, "POST", "/v1/advertisers", '{"name":"Hostile"}')
    hid, hkey = hostile["id"], hostile["api_key"]
    started = time.monotonic()
    campaigns = []
    for i in range(QUOTA_CAMPAIGNS):
        status, _, _, c = call(port, "POST", "/v1/campaigns", f'{{"advertiser_id":{hid},"name":"nobody {i}","objective":"traffic",'
                               '"bid_micros":1000000000000,"daily_budget_micros":1000000000000,"total_budget_micros":1000000000000,'
                               '"targeting":{"interests":["no-one-has-this-interest"]}}', key=hkey)
        if status == 201:
            campaigns.append(c["id"])
    case(f"campaign {QUOTA_CAMPAIGNS + 1} past the quota", "POST", "/v1/campaigns",
         f'{{"advertiser_id":{hid},"name":"one more","objective":"traffic","bid_micros":1000,"daily_budget_micros":1000,'
         '"total_budget_micros":1000}', key=hkey)
    ads = 0
    for i in range(QUOTA_ADS):
        status, _, _, _ = call(port, "POST", "/v1/ads", f'{{"campaign_id":{campaigns[i % len(campaigns)]},"format":"image",'
                               '"media_urls":["https://cdn.example/n.jpg"],"caption":"nobody","company":"Hostile","product":"","description":""}', key=hkey)
        ads += status == 201
    case(f"ad {QUOTA_ADS + 1} past the quota", "POST", "/v1/ads",
         f'{{"campaign_id":{campaigns[0]},"format":"image","media_urls":["https://cdn.example/n.jpg"],"caption":"","company":"H",'
         '"product":"","description":""}', key=hkey)
    print(f"hostile advertiser: {len(campaigns)} campaigns, {ads:,} top-bid ads matching nobody, made in {time.monotonic() - started:.1f} s", flush=True)
    time.sleep(2.0)  # the catalog publishes and the rule-based order is rebuilt
    after = decision_latencies(port, "reader", 1000)
    print(f"an honest user's decisions (1,000 each, HTTP round trip): before p50 {p(before, .5):.2f} ms p99 {p(before, .99):.2f} ms; "
          f"with the hostile ads p50 {p(after, .5):.2f} ms p99 {p(after, .99):.2f} ms", flush=True)
    # A bot's clicks: too fast, then too many on one campaign.
    _, _, _, d = call(port, "POST", "/v1/decisions", '{"user_id":"reader","organic_count":10}', key=FEED)
    served = d.get("ads") or []
    if served:
        body = f'{{"type":"click","impression_token":"{served[0]["impression_token"]}"}}'
        status, _, _, answer = call(port, "POST", "/v1/events", body, key=FEED)
        print(f"{'a click 0 s after its decision':<44} {len(body):>9} B  {status}  invalid={answer.get('invalid')}", flush=True)
        _, _, _, report = call(port, "GET", f"/v1/reports/campaigns/{served[0]['campaign_id']}")
        print(f"  its campaign's report: clicks {report.get('clicks')}, invalid_clicks {report.get('invalid_clicks')}, "
              f"spend_micros {report.get('spend_micros')}", flush=True)
    # Key rotation: a new key, the old one revoked.
    _, _, _, made = call(port, "POST", f"/v1/advertisers/{hid}/keys", key=hkey)
    _, _, _, keys = call(port, "GET", f"/v1/advertisers/{hid}/keys", key=made["api_key"])
    old = keys["keys"][0]["key_id"]
    case("revoke the first key", "DELETE", f"/v1/advertisers/{hid}/keys/{old}", key=made["api_key"])
    case("the revoked key", "GET", f"/v1/advertisers/{hid}/campaigns", key=hkey)
    case("another advertiser's keys", "POST", f"/v1/advertisers/{honest['id']}/keys", key=made["api_key"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=".build/release/adserve")
    ap.add_argument("--port", type=int, default=18181)
    ap.add_argument("--fuzz", type=int, default=2000, help="mutated bodies per route (and mutated tokens); 0 skips")
    ap.add_argument("--seed", type=int, default=1, help="seed of the mutations")
    args = ap.parse_args()
    folder = tempfile.mkdtemp(prefix="adserve-abuse-")
    env = dict(os.environ, ADSERVE_ADMIN_KEY=ADMIN, ADSERVE_FEED_KEY=FEED, LOG_LEVEL="error")
    server = subprocess.Popen([args.binary, "serve", "--port", str(args.port), "--db", os.path.join(folder, "abuse.db"),
                               "--idle-timeout", f"{IDLE_TIMEOUT_S}s", "--content-encoder", "none", "--max-campaigns-per-advertiser", str(QUOTA_CAMPAIGNS), "--max-ads-per-advertiser", str(QUOTA_ADS)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worst = 0.0
    rows = []
    run = None
    died_during_run = False
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

        # 3. Self-serve and billing abuse.
        abuse_self_serve(args, case)
        silent, half = idle_connection(args.port)
        show = lambda x: "not closed in 30 s" if x is None else f"closed after {x:.1f} s"
        print(f"a connection that sends nothing: {show(silent)}; one that stops mid-body: {show(half)} "
              f"(--idle-timeout {IDLE_TIMEOUT_S}s)", flush=True)

        # 3. Fuzzing: a serving ad for a real token, and a campaign and ad of its own for PATCH.
        if args.fuzz > 0:
            _, _, _, ad = call(args.port, "POST", "/v1/ads",
                               f'{{"campaign_id":{cid},"format":"image","media_urls":["https://cdn.example/a.jpg"],'
                               '"caption":"Fuzz","company":"Acme","product":"Thing","description":"A thing"}')
            _, _, _, patched = call(args.port, "POST", "/v1/campaigns",
                                    f'{{"advertiser_id":{aid},"name":"patched","objective":"traffic","bid_micros":100000,'
                                    '"daily_budget_micros":1000000,"total_budget_micros":1000000,"status":"paused"}')
            pcid = patched["id"]
            _, _, _, patched_ad = call(args.port, "POST", "/v1/ads",
                                       f'{{"campaign_id":{pcid},"format":"image","media_urls":["https://cdn.example/p.jpg"],'
                                       '"caption":"","company":"Acme","product":"","description":""}')
            pad = patched_ad["id"]
            token = None
            for _ in range(50):  # the catalog publishes within 100 ms
                _, _, _, decision = call(args.port, "POST", "/v1/decisions", '{"user_id":"fuzzer","organic_count":10}', key=FEED)
                served = decision.get("ads") or []
                if served:
                    token = served[0]["impression_token"]
                    break
                time.sleep(0.1)
            if token is None:
                print(f"no ad was served (ad {ad.get('id')}); events are fuzzed from a forged token", flush=True)
                token = "AAAA.BBBB"
            run = fuzz(args, server, aid, pcid, pad, token)
        # 5. Guessing keys, last: the address is then locked out for a minute.
        for i in range(22):
            case(f"wrong key #{i + 1}", "GET", "/v1/campaigns/1", key=f"guess-{i:04d}-0123456789abcdef")
        case("the admin key, right after the guesses", "GET", "/v1/campaigns/1")
    finally:
        died_during_run = server.poll() is not None
        if not died_during_run:
            server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)
    crashed = died_during_run or server.returncode not in (0, -15, 143)
    print(f"requests: {len(rows)}, 5xx: {sum(1 for r in rows if r[2] >= 500)}, server exit: {server.returncode}, "
          f"worst single request: {worst:.3f} s")
    failed = crashed or any(r[2] >= 500 for r in rows)
    if run is not None:
        print("\n== fuzz summary ==")
        print(f"requests fuzzed: {run.sent:,} ({args.fuzz:,} per route and {args.fuzz:,} tokens, seed {args.seed})")
        for route, counts in run.statuses.items():
            print(f"  {route:<32} {sum(counts.values()):>7,}  " + "  ".join(f"{k}: {v:,}" for k, v in sorted(counts.items(), key=lambda kv: str(kv[0]))))
        print(f"5xx: {len(run.errors)}")
        for route, index, size, preview, status in run.errors[:10]:
            print(f"  {status} {route} #{index} ({size:,} B): {preview!r}")
        print(f"changed tokens accepted: {len(run.forged)}")
        for index, text in run.forged[:10]:
            print(f"  #{index}: {text[:120]!r}")
        print(f"connection failures: {len(run.failures)}")
        for route, index, size, preview, error in run.failures[:10]:
            print(f"  {route} #{index} ({size:,} B): {error}: {preview!r}")
        print(f"crashes: {1 if crashed else 0} (server {'exited during the run, code ' + str(server.returncode) if died_during_run else 'still running at the end'})")
        print(f"worst single request: {run.worst[0]:.3f} s, {run.worst[1]}")
        failed = failed or bool(run.errors) or bool(run.failures) or bool(run.forged) or run.crashed
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
