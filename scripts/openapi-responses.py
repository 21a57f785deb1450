#!/usr/bin/env python3
"""Every operation of openapi.yaml called on a live server with real objects, each answer checked
against the description by schemathesis (status declared, content type, headers, body schema,
no 5xx) — so a route's successful answers are checked, not only the errors a fuzzer reaches.

Usage: openapi-responses.py SPEC BASE_URL ADMIN_KEY
The server must have a model repository with at least two versions of the click model and a
simulation folder (`scripts/openapi-fuzz.sh` prepares both). Exits non-zero on any answer the
description does not allow, on any operation left uncalled, and on any that never answered 2xx.
"""
import sys
import time

import schemathesis

spec, base, admin = sys.argv[1:4]
schema = schemathesis.openapi.from_path(spec)
called = {}


def call(method, path, key=admin, path_parameters=None, query=None, body=None, expect=None):
    operation = schema[path][method]
    kwargs = {"path_parameters": path_parameters or {}, "query": query or {}, "headers": {"Authorization": f"Bearer {key}"} if key else {}}
    if body is not None:
        kwargs["body"] = body
        kwargs["media_type"] = "application/json"
    case = operation.Case(**kwargs)
    response = case.call(base_url=base)
    case.validate_response(response)  # raises on anything the description does not allow
    status = response.status_code
    if expect is not None and status != expect:
        raise SystemExit(f"{method} {path}: {status}, expected {expect}: {response.text[:300]}")
    called.setdefault(f"{method.upper()} {path}", []).append(status)
    try:
        return response.json()
    except ValueError:
        return response.text


call("GET", "/healthz", key=None, expect=200)
call("GET", "/openapi.yaml", key=None, expect=200)
call("GET", "/dashboard", key=None, expect=200)
call("GET", "/metrics", expect=200)
call("GET", "/v1/whoami", expect=200)

advertiser = call("POST", "/v1/advertisers", body={"name": "Checked"}, expect=201)
aid, advertiser_key = advertiser["id"], advertiser["api_key"]
call("GET", "/v1/whoami", key=advertiser_key, expect=200)
key = call("POST", "/v1/advertisers/{id}/keys", path_parameters={"id": aid}, expect=201)
call("GET", "/v1/advertisers/{id}/keys", path_parameters={"id": aid}, expect=200)
call("DELETE", "/v1/advertisers/{id}/keys/{key_id}", path_parameters={"id": aid, "key_id": key["key_id"]}, expect=200)

campaign = call("POST", "/v1/campaigns", key=advertiser_key, expect=201, body={
    "advertiser_id": aid, "name": "Checked", "objective": "traffic", "bid_micros": 500000, "daily_budget_micros": 20000000,
    "total_budget_micros": 100000000, "targeting": {"countries": ["us"]}, "frequency_cap": {"impressions": 5, "per_hours": 24}})
cid = campaign["id"]
call("GET", "/v1/campaigns/{id}", path_parameters={"id": cid}, expect=200)
call("PATCH", "/v1/campaigns/{id}", path_parameters={"id": cid}, body={"name": "Checked again"}, expect=200)
call("GET", "/v1/advertisers/{id}/campaigns", path_parameters={"id": aid}, expect=200)
ad = call("POST", "/v1/ads", key=advertiser_key, expect=201, body={
    "campaign_id": cid, "format": "image", "media_urls": ["https://cdn.example/a.jpg"], "caption": "Run", "company": "Checked",
    "product": "Shoe", "description": "A shoe"})
adid = ad["id"]
call("GET", "/v1/ads/{id}", path_parameters={"id": adid}, expect=200)
call("PATCH", "/v1/ads/{id}", path_parameters={"id": adid}, body={"caption": "Run faster"}, expect=200)
call("GET", "/v1/campaigns/{id}/ads", path_parameters={"id": cid}, expect=200)

call("PUT", "/v1/users/{id}", path_parameters={"id": "checked-user"}, expect=200,
     body={"age": 30, "gender": "female", "country": "us", "language": "en", "interests": ["running"]})
call("GET", "/v1/users/{id}", path_parameters={"id": "checked-user"}, expect=200)
call("POST", "/v1/users/{id}/activity", path_parameters={"id": "checked-user"}, body={"type": "view", "topics": ["running"], "seconds": 12}, expect=202)

decision = None
for _ in range(100):
    decision = call("POST", "/v1/decisions", body={"user_id": "checked-user", "context": {"device": "ios", "hour": 9}, "organic_count": 10}, expect=200)
    if decision["ads"]:
        break
    time.sleep(0.1)
placed = decision["ads"][0]
call("POST", "/v1/events", body={"type": "impression", "impression_token": placed["impression_token"]}, expect=200)
time.sleep(1.1)  # sooner, a click is invalid traffic
call("POST", "/v1/events", body={"type": "click", "impression_token": placed["impression_token"]}, expect=200)
call("GET", "/v1/decisions/{decision_id}/explain", path_parameters={"decision_id": decision["decision_id"]}, expect=200)
call("GET", "/v1/decisions/{decision_id}/why", path_parameters={"decision_id": decision["decision_id"]}, query={"ad_id": placed["ad_id"]}, expect=200)
call("GET", "/v1/reports/campaigns/{id}", path_parameters={"id": cid}, expect=200)
call("GET", "/v1/reports/ads/{id}", path_parameters={"id": adid}, expect=200)
call("GET", "/v1/reports/campaigns/{id}/losses", path_parameters={"id": cid}, expect=200)
call("GET", "/v1/reports/campaigns/{id}/pacing", path_parameters={"id": cid}, expect=200)
call("GET", "/v1/reports/campaigns/{id}/pacing", path_parameters={"id": cid}, query={"day": "2026-13-40"}, expect=400)

models = call("GET", "/v1/models", expect=200)["models"]
clicks = sorted(m["version"] for m in models if m["target"] == "click")
assert len(clicks) >= 2, f"the server's repository needs two click models, has {clicks}"
call("POST", "/v1/models/{version}/promote", path_parameters={"version": clicks[0]}, expect=200)
call("POST", "/v1/models/{version}/promote", path_parameters={"version": clicks[1]}, expect=200)
call("POST", "/v1/models/rollback", body={"target": "click"}, expect=200)

call("GET", "/v1/simulation", expect=200)
charts = call("GET", "/v1/simulation/charts", expect=200)["charts"]
call("GET", "/v1/simulation/charts/{name}", path_parameters={"name": charts[0]}, expect=200)
call("POST", "/v1/token-secret/rotate", body={"grace_seconds": 60}, expect=200)

operations = {f"{method.upper()} {path}" for path, methods in schema.raw_schema["paths"].items() for method in methods
              if method in ("get", "put", "post", "patch", "delete")}
missing = operations - set(called)
if missing:
    raise SystemExit(f"operations never called: {sorted(missing)}")
print(f"every operation answered as described: {len(operations)} operations, {sum(len(v) for v in called.values())} calls, all 2xx where expected")
