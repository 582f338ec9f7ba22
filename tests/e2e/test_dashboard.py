"""`shepherd ui` in a real browser (headless Chromium driven by Playwright) against local mode: during
a canary the endpoint page shows both variants, its timeline chart has points, and it updates by
itself when the rollout advances; after a rollback an on-call engineer walks the incident from the
endpoint list to the rollout's verdict; with local mode gone the page says what to run.

Screenshots go to the test's output folder; with ``SHEPHERD_DASHBOARD_SCREENSHOTS=docs`` the ones the
README shows are written there too (``dashboard.png``, ``dashboard-incident.png``...).

Needs Debian's `chromium` (`python3 dev.py test` installs it when it can); skipped, saying so, when
no Chromium is on the machine.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from shepherd_cli import bus_commands
from shepherd_cli.endpoint_view import endpoint_status
from shepherd_cli.local import simulation
from shepherd_cli.local.stack import LocalShepherd
from shepherd_cli.local.traffic_behaviour import Behaviour, set_behaviour
from shepherd_cli.target import Target, local_target
from shepherd_cli.ui import views
from shepherd_cli.ui.guard import new_token
from shepherd_cli.ui.server import build_server

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
QUIET = {"POWERTOOLS_LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}
MODEL, ENDPOINT = "dash-model", "dash-prod"
CHROMIUM = os.environ.get("SHEPHERD_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
# The flags a sandboxed, offline machine needs (no GPU, no calls home, root without a sandbox).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# A folder (docs) to write the README's screenshots to, besides the test's output folder.
SCREENSHOTS = os.environ.get("SHEPHERD_DASHBOARD_SCREENSHOTS")


TOKEN = new_token()  # the dashboards of this module's run, as `shepherd ui` draws one per run


def opened(url: str) -> str:
    """`url` as `shepherd ui` prints it: with the run's token, which the first answer sets as a cookie."""
    return f"{url}{'&' if '?' in url else '?'}token={TOKEN}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def local() -> Iterator[LocalShepherd]:
    with LocalShepherd.start(ROOT / "template.yaml", environment_overrides=QUIET) as running:
        # Simulated traffic, as `local up` sends by default: the canary judge compares v2 with v1 on it.
        simulation.attach(running, seed=5)
        yield running


@pytest.fixture(scope="module")
def target(local: LocalShepherd, tmp_path_factory: pytest.TempPathFactory) -> Target:
    found = local_target(local.endpoint_url, tmp_path_factory.mktemp("state") / "local.json")
    found.clock = lambda: local.pump.clock.now  # as `local up`'s state file gives it to the CLI
    return found


@pytest.fixture(scope="module")
def dashboard(target: Target) -> Iterator[str]:
    port = free_port()
    server = build_server(lambda: target, "127.0.0.1", port, TOKEN)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the dashboard did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium): the browser test cannot run")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def upload(local: LocalShepherd, version_folder: str, auc: float) -> None:
    s3, bucket = local.client("s3"), local.outputs["ArtifactBucketName"]
    manifest = f'{{"metrics": {{"auc": {auc}}}, "framework": "xgboost"}}'.encode()
    s3.put_object(Bucket=bucket, Key=f"models/{MODEL}/{version_folder}/manifest.json", Body=manifest)
    s3.put_object(
        Bucket=bucket,
        Key=f"models/{MODEL}/{version_folder}/model.tar.gz",
        Body=gzip.compress(b"w"),
        ChecksumAlgorithm="SHA256",
    )
    local.pump.run_until_idle()


def approve_and_promote(local: LocalShepherd, target: Target, version: int, strategy: dict[str, Any]) -> None:
    bus_commands.request_approval(target, MODEL, version, "approved", "offline metrics ok", "alice")
    local.pump.run_until_idle()
    bus_commands.request_promotion(
        target,
        model_name=MODEL,
        version=version,
        endpoint_name=ENDPOINT,
        strategy=strategy,
        alarms=(),
        instance_type="ml.m5.large",
        instance_count=1,
        by="bob",
        reason="dashboard test",
    )
    local.pump.run_until_idle()


def settle(local: LocalShepherd, seconds: int = 60, rounds: int = 4) -> None:
    for _ in range(rounds):
        local.pump.advance(seconds)


@pytest.fixture(scope="module")
def canary(local: LocalShepherd, target: Target) -> dict[str, Any]:
    """v1 live, then v2 as a 10% canary baking for 10 minutes."""
    upload(local, "run-1", 0.81)
    approve_and_promote(local, target, 1, {"type": "all_at_once", "post_deploy_watch_seconds": 0})
    settle(local)
    upload(local, "run-2", 0.86)
    approve_and_promote(local, target, 2, {"type": "canary", "canary_percent": 10, "bake_seconds": 600})
    settle(local)
    status = endpoint_status(target, ENDPOINT)
    assert status["rollout"]["phase"] == "SHIFTING" and status["rollout"]["current_percent"] == 10, status
    return status


def test_the_endpoint_page_follows_a_canary(local, canary, dashboard, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1200, "height": 1100})
    page.goto(opened(f"{dashboard}/endpoints/{ENDPOINT}"))

    # Given a 10% canary: both variants, with their roles and weights
    rows = page.locator("tr.variant")
    assert rows.count() == 2
    roles = {rows.nth(i).get_attribute("data-variant"): rows.nth(i).get_attribute("data-role") for i in range(2)}
    assert roles == {f"{MODEL}-v1": "serving", f"{MODEL}-v2": "candidate"}
    assert "10.0%" in page.locator(f'tr[data-variant="{MODEL}-v2"]').inner_text()
    assert page.locator("#phase").inner_text() == "SHIFTING"
    assert "s of 600 s left" in page.locator("#bake").inner_text()
    # the timeline chart has points (start, the 10% shift, now) and a canvas drawn by uPlot
    assert int(page.locator("#timeline-chart").get_attribute("data-points")) >= 3
    assert page.locator("#timeline-chart canvas").count() == 1
    page.screenshot(path=str(tmp_path / "endpoint-canary.png"), full_page=True)

    # When the bake ends, the controller moves v2 to 100%; the open page notices by itself
    updates_before = int(page.locator("body").get_attribute("data-updates"))
    settle(local, 300, 3)
    page.wait_for_function("document.getElementById('phase').textContent !== 'SHIFTING'", timeout=15_000)
    assert int(page.locator("body").get_attribute("data-updates")) > updates_before
    assert page.locator("#phase").inner_text() in ("WATCHING", "RETIRING", "COMPLETED")
    assert "100.0%" in page.locator(f'tr[data-variant="{MODEL}-v2"]').inner_text()
    assert "10% -> 100%" in page.locator("#markers").inner_text()
    page.screenshot(path=str(tmp_path / "endpoint-promoted.png"), full_page=True)
    page.close()


def screenshot(page: Any, tmp_path: Path, name: str) -> None:
    page.screenshot(path=str(tmp_path / name), full_page=True)
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / name), full_page=True)


def test_models_history_and_rollout_pages(canary, dashboard, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(opened(f"{dashboard}/models"))
    section = page.locator(f'section[data-model="{MODEL}"]')
    assert section.locator("table.versions tbody tr").count() == 2
    # AUC by version: both versions plotted
    assert section.locator(".metric-chart").get_attribute("data-points") == "2"
    page.screenshot(path=str(tmp_path / "models.png"), full_page=True)

    page.goto(opened(f"{dashboard}/history?name={MODEL}"))
    text = page.locator("#history").inner_text()
    assert "REGISTERED -> APPROVED" in text and "APPROVED -> DEPLOYING" in text

    page.goto(opened(f"{dashboard}/endpoints/{ENDPOINT}"))
    page.locator("#rollouts a").first.click()
    page.wait_for_selector("#timeline-chart canvas")
    assert "Canary report" in page.content()
    # The canary report: v2's judged step with its verdict per metric, and baseline vs candidate charts.
    analysis = page.locator("#analysis").inner_text()
    assert "Step 1 (10%)" in analysis and "latency_p99" in analysis and "errors_5xx" in analysis
    assert "FAIL" not in analysis  # v2 is v1's twin: PASS after the bake, INCONCLUSIVE before 5 minutes
    assert page.locator("#analysis .chart canvas").count() >= 2  # latency p50 and p99 per minute
    page.screenshot(path=str(tmp_path / "rollout-analysis.png"), full_page=True)
    page.close()


def test_the_dashboard_is_read_only_and_says_what_is_missing(dashboard, canary):
    import httpx

    cookies = {f"shepherd_ui_{dashboard.rsplit(':', 1)[1]}": TOKEN}  # as the printed address sets it
    assert httpx.post(f"{dashboard}/api/endpoints/{ENDPOINT}", cookies=cookies).status_code == 405
    missing = httpx.get(f"{dashboard}/api/endpoints/nowhere", cookies=cookies)
    assert missing.status_code == 404 and "no endpoint nowhere" in missing.json()["error"]


def run_until(local: LocalShepherd, target: Target, done: Any, minutes: int) -> dict[str, Any]:
    """Advance the simulated clock a minute at a time until ``done(status)``; the status then."""
    for _ in range(minutes):
        status = endpoint_status(target, ENDPOINT)
        if done(status):
            return status
        local.pump.advance(60)
    raise AssertionError(f"not done after {minutes} simulated minutes: {status['rollout']}")


@pytest.fixture(scope="module")
def incident(local: LocalShepherd, target: Target, canary: dict[str, Any]) -> dict[str, Any]:
    """After v2: v3, 40% slower, rolled back by the canary judge; then v4, healthy, as a 10% canary.
    The endpoint's current rollout (v4's) has no incident: the one to find is v3's."""
    run_until(local, target, lambda status: status["rollout"]["phase"] == "COMPLETED", 30)
    upload(local, "run-3", 0.87)
    set_behaviour(local.client("ssm"), MODEL, 3, Behaviour.of(latency_ms=56, p99_ms=112))
    approve_and_promote(local, target, 3, {"type": "canary", "canary_percent": 10, "bake_seconds": 600})
    rolled_back = run_until(local, target, lambda status: status["rollout"]["phase"] == "ROLLED_BACK", 40)
    upload(local, "run-4", 0.85)
    approve_and_promote(local, target, 4, {"type": "canary", "canary_percent": 10, "bake_seconds": 1200})
    settle(local, 60, 12)  # past the judge's warm-up: the current step's verdict has numbers
    status = endpoint_status(target, ENDPOINT)
    assert status["rollout"]["version"] == 4 and status["rollout"]["phase"] == "SHIFTING", status["rollout"]
    return {"rolled_back": rolled_back["rollout"], "current": status["rollout"]}


def test_an_on_call_engineer_walks_an_incident(incident, dashboard, browser, tmp_path):
    v3 = incident["rolled_back"]
    page = browser.new_page(viewport={"width": 1200, "height": 1000})

    # The endpoint list: the version serving now (v2: v4 takes only 10%), and the latest incident.
    page.goto(opened(f"{dashboard}/endpoints"))
    row = page.locator(f'tr[data-endpoint="{ENDPOINT}"]')
    assert row.locator("td.serving").inner_text().startswith(f"{MODEL} v2")
    assert "90.0%" in row.locator("td.serving").inner_text()
    assert "v3 → v2" in row.inner_text()
    screenshot(page, tmp_path, "dashboard-endpoints.png")

    # The endpoint: who serves, the current rollout's verdict per metric, and v3's incident listed,
    # though the current rollout (v4's) has none.
    row.locator("a").first.click()
    page.wait_for_selector("#incidents li.incident")
    assert f"Serving now: {MODEL} v2" in page.locator("#serving").inner_text()
    verdict = page.locator("#verdict").inner_text()
    assert "latency_p99" in verdict and "errors_5xx" in verdict, verdict
    assert re.search(r"latency_p50\s+\w+\s+\d+(\.\d+)? ms\s+\d+(\.\d+)? ms\s+[+-]\d+\.\d%", verdict), verdict
    assert not re.search(r"\b0\.\d{3}(?!\d|%| ms)", verdict), verdict  # +x% and %, never a bare 0.528
    incidents = page.locator("#incidents li.incident")
    assert incidents.count() == 1
    first = incidents.first.inner_text()
    assert "v3 rolled back to v2 by the canary judge" in first and "after the judge's verdict" in first, first
    # charts: traffic, requests, error rate, latency and instances, each drawn
    for chart in ("timeline", "requests", "errors", "latency", "instances"):
        assert int(page.locator(f"#{chart}-chart").get_attribute("data-points")) >= 2, chart
        assert page.locator(f"#{chart}-chart canvas").count() == 1, chart
    # each variant's latest minute in its unit: latency in ms (not CloudWatch's microseconds), errors in %
    latency = page.locator("#latency-chart").get_attribute("data-latest")
    assert re.fullmatch(rf"{MODEL}-v2: \d{{2,3}}(\.\d)? ms; {MODEL}-v4: \d{{2,3}}(\.\d)? ms", latency), latency
    errors = page.locator("#errors-chart").get_attribute("data-latest")
    assert re.fullmatch(rf"{MODEL}-v2: \d+\.\d+%; {MODEL}-v4: \d+\.\d+%", errors), errors
    screenshot(page, tmp_path, "dashboard.png")

    # Its latest incident -> the rollout's canary report: v3 failed on latency, in ms and percent.
    incidents.first.locator("a").click()
    page.wait_for_selector("#analysis table")
    assert v3["rollout_id"] in page.locator("h1").inner_text()
    assert "ROLLED_BACK" in page.locator("main").inner_text()
    analysis = page.locator("#analysis").inner_text()
    assert "FAIL" in analysis and "ms" in analysis and re.search(r"\+\d+(\.\d)?%", analysis), analysis
    assert "canary judge" in page.locator("#incident").inner_text()
    screenshot(page, tmp_path, "dashboard-incident.png")

    # The version page of v3: artifact, checksum, approvals, where it served (never), its rollout.
    page.goto(opened(f"{dashboard}/models/{MODEL}/versions/3"))
    assert "model.tar.gz" in page.locator("#artifact").inner_text()
    assert "SHA256" in page.locator("#artifact").inner_text()
    assert "APPROVED by alice" in page.locator("#approvals").inner_text()
    assert v3["rollout_id"] in page.locator("#rollouts").inner_text()
    assert "never took" in page.locator("#served").inner_text()
    page.goto(opened(f"{dashboard}/models/{MODEL}/versions/2"))
    served = page.locator("#served tr.served")
    assert served.count() == 1 and "serving now" in served.first.inner_text()
    screenshot(page, tmp_path, "dashboard-version.png")
    page.close()


def test_the_history_is_paginated(incident, dashboard, browser, monkeypatch):
    monkeypatch.setattr(views, "HISTORY_PAGE_SIZE", 20)  # four rollouts' history is 40-odd entries
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(opened(f"{dashboard}/history"))
    assert page.locator("#history tbody tr").count() == 20
    pages = re.search(r"page 1 of (\d+) \((\d+) entries\)", page.locator(".pager").first.inner_text())
    assert pages is not None and int(pages.group(1)) >= 2, page.locator(".pager").first.inner_text()
    newest = page.locator("#history tbody tr").first.inner_text()
    page.locator(".pager a[rel=next]").first.click()
    assert "page 2 of" in page.locator(".pager").first.inner_text()
    assert 0 < page.locator("#history tbody tr").count() <= 20
    assert page.locator("#history tbody tr").first.inner_text() != newest
    page.close()


def test_with_local_mode_gone_the_page_says_what_to_run(target, browser):
    gone = replace(target, endpoint_url=f"http://127.0.0.1:{free_port()}", _clients={})
    server = build_server(lambda: gone, "127.0.0.1", port := free_port(), TOKEN)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        page = browser.new_page()
        response = page.goto(opened(f"http://127.0.0.1:{port}/endpoints/{ENDPOINT}"))
        assert response is not None and response.status == 503
        assert "Local mode is not running" in page.locator("h1").inner_text()
        assert "shepherd local up" in page.locator("#problem pre").inner_text()
        page.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
