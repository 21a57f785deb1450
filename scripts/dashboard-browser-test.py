#!/usr/bin/env python3
"""The dashboard in a real browser: headless Chromium driven by Selenium.

Starts a server on a fresh store, then, as its users would:
  - an advertiser logs in with their key, is refused a campaign without a name (with the API's
    own message), creates a campaign and an ad, edits the campaign (and is refused a bad bid),
    pauses and resumes the ad;
  - the feed backend (this script, over HTTP) asks for a decision and reports an impression
    and a click on it;
  - the advertiser's delivery totals and charts change to one impression and one click;
  - the ads team logs in with the admin key and sees the decision in serving health, and a small
    simulation's arms, their comparison with intervals and its charts.
Fails on any step that does not happen, and on any error the page logged (a script error, a
blocked resource). Screenshots of each step go to the artifacts folder.

Usage: scripts/dashboard-browser-test.py [--binary .build/debug/adserve] [--artifacts artifacts/dashboard]
Needs chromium and chromium-driver (Debian) and selenium (PyPI).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from free_port import free_port

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ADMIN = "browser-admin-key-0123456789"
FEED = "browser-feed-key-0123456789"


def call(base, method, path, key, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        raise SystemExit(f"{method} {path}: {error.code} {error.read().decode()}")


def start_server(binary, work, simulation, env, log):
    """Starts `serve` on a free port and waits for /healthz; a second port is tried if the first
    was taken between the pick and the bind. Exits with the server's log if it never answers."""
    for attempt in range(3):
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([binary, "serve", "--db", os.path.join(work, "adserve.db"), "--port", str(port),
                                   "--content-encoder", "none", "--reserve-cpc-micros", "500000", "--simulation", simulation],
                                  env=env, stdout=log, stderr=subprocess.STDOUT)
        for _ in range(300):
            if server.poll() is not None:
                break
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=1):
                    pass
                # Answered — by our server only if it is still running (another listener may hold the port).
                if server.poll() is None:
                    return server, base
                break
            except OSError:
                time.sleep(0.1)
        if server.poll() is None:
            server.kill()
            server.wait()
        log.flush()
        print(f"the server did not start on port {port} (attempt {attempt + 1})", file=sys.stderr)
    print(open(os.path.join(work, "server.log")).read()[-3000:], file=sys.stderr)
    raise SystemExit("the server did not start")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=".build/debug/adserve")
    parser.add_argument("--artifacts", default="artifacts/dashboard")
    args = parser.parse_args()
    os.makedirs(args.artifacts, exist_ok=True)
    work = tempfile.mkdtemp()
    env = dict(os.environ, ADSERVE_ADMIN_KEY=ADMIN, ADSERVE_FEED_KEY=FEED)
    log = open(os.path.join(work, "server.log"), "w")
    # A small simulation for the ads team's page (two arms, two days).
    simulation = os.path.join(work, "simulation")
    subprocess.run([args.binary, "simulate", "--users", "1000", "--ads", "200", "--days", "2", "--arms", "baseline,random", "--out", simulation],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # The one ad wins alone, so under second price it pays the reserve: at the campaign's bid (the
    # form's 0.50), a click is charged.
    server, base = start_server(args.binary, work, simulation, env, log)
    driver = None
    step = 0

    def shot(name):
        nonlocal step
        step += 1
        path = os.path.join(args.artifacts, f"{step:02d}-{name}.png")
        driver.save_screenshot(path)
        print(f"  screenshot {path}")

    try:
        advertiser = call(base, "POST", "/v1/advertisers", ADMIN, {"name": "Acme Running"})

        options = webdriver.ChromeOptions()
        options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
        for flag in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1600"]:
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")), options=options)
        wait = WebDriverWait(driver, 15)
        text = lambda element_id: driver.find_element(By.ID, element_id).text
        visible = lambda element_id: driver.find_element(By.ID, element_id).is_displayed()

        print("an advertiser logs in")
        driver.get(base + "/dashboard")
        shot("login")
        driver.find_element(By.ID, "key").send_keys(advertiser["api_key"])
        driver.find_element(By.ID, "login-button").click()
        wait.until(lambda d: visible("advertiser"))
        assert "Acme Running" in text("who"), text("who")
        shot("advertiser")

        print("a campaign without a name is refused with the API's message")
        form = driver.find_element(By.ID, "campaign-form")
        form.find_element(By.NAME, "name").clear()
        driver.find_element(By.ID, "create-campaign").click()
        wait.until(lambda d: text("campaign-error") != "")
        assert text("campaign-error").startswith("name: "), text("campaign-error")
        shot("campaign-refused")

        print("the advertiser creates a campaign and an ad")
        form.find_element(By.NAME, "name").send_keys("Spring sale")
        driver.find_element(By.ID, "create-campaign").click()
        wait.until(lambda d: visible("campaign") and "Spring sale" in text("campaign-title"))
        assert "Spring sale" in text("campaigns")
        ad_form = driver.find_element(By.ID, "ad-form")
        for name, value in [("caption", "Run faster"), ("company", "Acme"), ("product", "Shoe"), ("description", "A fast shoe")]:
            ad_form.find_element(By.NAME, name).send_keys(value)
        driver.find_element(By.ID, "create-ad").click()
        wait.until(lambda d: "Run faster" in text("ads"))
        totals = driver.find_element(By.ID, "campaign-totals")
        assert totals.get_attribute("data-impressions") == "0" and totals.get_attribute("data-clicks") == "0"
        shot("campaign-and-ad")

        print("the advertiser edits the campaign (a bad bid is refused with the API's message) and pauses and resumes the ad")
        edit = driver.find_element(By.ID, "edit-campaign-form")
        wait.until(lambda d: edit.find_element(By.NAME, "name").get_attribute("value") == "Spring sale")
        edit.find_element(By.NAME, "daily").clear()
        edit.find_element(By.NAME, "daily").send_keys("30")
        driver.find_element(By.ID, "save-campaign").click()
        wait.until(lambda d: "30.00" in text("campaigns"))
        edit.find_element(By.NAME, "bid").clear()
        edit.find_element(By.NAME, "bid").send_keys("abc")
        driver.find_element(By.ID, "save-campaign").click()
        wait.until(lambda d: text("edit-campaign-error").startswith("bid_micros: "))
        edit.find_element(By.NAME, "bid").clear()
        edit.find_element(By.NAME, "bid").send_keys("0.50")
        driver.find_element(By.CSS_SELECTOR, "#ads button[data-status='paused']").click()
        wait.until(lambda d: "paused" in text("ads"))
        driver.find_element(By.CSS_SELECTOR, "#ads button[data-status='active']").click()
        wait.until(lambda d: "paused" not in text("ads"))
        shot("campaign-edited")

        print("the feed backend decides, and reports an impression and a click")
        token = None
        for _ in range(100):
            decision = call(base, "POST", "/v1/decisions", FEED, {"user_id": "browser-user", "organic_count": 10})
            if decision["ads"]:
                token = decision["ads"][0]["impression_token"]
                break
            time.sleep(0.1)
        assert token, "the new ad was never served"
        call(base, "POST", "/v1/events", FEED, {"type": "impression", "impression_token": token})
        time.sleep(1.2)  # a click sooner than a second after the decision is invalid traffic
        clicked = call(base, "POST", "/v1/events", FEED, {"type": "click", "impression_token": token})
        assert "invalid" not in clicked, clicked

        print("the advertiser's totals and charts change")
        wait.until(lambda d: totals.get_attribute("data-impressions") == "1" and totals.get_attribute("data-clicks") == "1")
        series = json.loads(driver.find_element(By.ID, "chart-delivery").get_attribute("data-series"))
        assert series["impressions"][-1] == 1 and series["clicks"][-1] == 1, series
        assert int(totals.get_attribute("data-spend-micros")) > 0, "the click was not charged"
        shot("delivery")

        print("the ads team sees the decision in serving health")
        driver.find_element(By.ID, "logout").click()
        wait.until(lambda d: visible("login"))
        driver.find_element(By.ID, "key").send_keys(ADMIN)
        driver.find_element(By.ID, "login-button").click()
        wait.until(lambda d: visible("ops") and (driver.find_element(By.ID, "ops-totals").get_attribute("data-decisions") or "0") != "0")
        wait.until(lambda d: "POST /v1/decisions" in text("latency"))
        assert "click" in text("events")
        # This server has no model repository: the table says so (promote and roll back are
        # tested through the API in DashboardTests).
        wait.until(lambda d: "No models" in text("models"))
        shot("serving-health")

        print("the ads team sees the simulation's arms, their comparison and its charts")
        wait.until(lambda d: "random vs baseline" in text("sim-comparisons") and "baseline" in text("sim-arms"))
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#sim-charts img")) == 5 and all(
            d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img) for img in d.find_elements(By.CSS_SELECTOR, "#sim-charts img")))
        driver.execute_script("document.getElementById('sim-title').scrollIntoView()")
        shot("simulation")

        # Network entries are the answers the API gave (the refused campaign's 400): expected.
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE" and entry.get("source") != "network"]
        assert not errors, f"the page logged errors: {errors}"
        print("dashboard browser test passed")
    except Exception:
        if driver:
            shot("failure")
            print("browser log:", driver.get_log("browser"), file=sys.stderr)
        log.flush()
        print(open(os.path.join(work, "server.log")).read()[-3000:], file=sys.stderr)
        raise
    finally:
        if driver:
            driver.quit()
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
