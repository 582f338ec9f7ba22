"""`shepherd ui` in a real browser (headless Chromium driven by Playwright) against local mode during
a canary: the endpoint page shows both variants, its timeline chart has points, and it updates by
itself when the rollout advances. Screenshots go to the test's output folder.

Needs Debian's `chromium` (`python3 dev.py test` installs it when it can); skipped, saying so, when
no Chromium is on the machine.
"""

from __future__ import annotations

import gzip
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shepherd_cli import operations
from shepherd_cli.local import simulation
from shepherd_cli.local.stack import LocalShepherd
from shepherd_cli.target import Target, local_target
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
SCREENSHOT = os.environ.get("SHEPHERD_DASHBOARD_SCREENSHOT")  # also save the endpoint page here (docs)


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
    server = build_server(lambda: target, "127.0.0.1", port)
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
    operations.request_approval(target, MODEL, version, "approved", "offline metrics ok", "alice")
    local.pump.run_until_idle()
    operations.request_promotion(
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
    status = operations.endpoint_status(target, ENDPOINT)
    assert status["rollout"]["phase"] == "SHIFTING" and status["rollout"]["current_percent"] == 10, status
    return status


def test_the_endpoint_page_follows_a_canary(local, canary, dashboard, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1200, "height": 1100})
    page.goto(f"{dashboard}/endpoints/{ENDPOINT}")

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
    if SCREENSHOT:
        page.screenshot(path=SCREENSHOT, full_page=True)
    page.close()


def test_models_history_and_rollout_pages(canary, dashboard, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(f"{dashboard}/models")
    section = page.locator(f'section[data-model="{MODEL}"]')
    assert section.locator("table.versions tbody tr").count() == 2
    # AUC by version: both versions plotted
    assert section.locator(".metric-chart").get_attribute("data-points") == "2"
    page.screenshot(path=str(tmp_path / "models.png"), full_page=True)

    page.goto(f"{dashboard}/history?name={MODEL}")
    text = page.locator("#history").inner_text()
    assert "REGISTERED -> APPROVED" in text and "APPROVED -> DEPLOYING" in text

    page.goto(f"{dashboard}/endpoints/{ENDPOINT}")
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

    assert httpx.post(f"{dashboard}/api/endpoints/{ENDPOINT}").status_code == 405
    missing = httpx.get(f"{dashboard}/api/endpoints/nowhere")
    assert missing.status_code == 404 and "no endpoint nowhere" in missing.json()["error"]
