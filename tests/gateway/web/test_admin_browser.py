"""The operator page in a real browser (Debian's chromium, driven by Playwright) against a real `serve`: log in,
read the overview, open the dead job, replay it, and watch it end done. Screenshots of each step are saved in the
test's temporary folder. Without chromium the test is skipped on a developer's machine; in CI it must run."""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.adapters._shopify_deliveries import SECRET, SOURCE, headers, raw
from tests.conftest import API_KEY, write_config
from tests.gateway._server import Server, wait_done

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 30_000  # a safety net for each wait on the page, not a timing assertion


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        message = "the operator page's browser test needs Debian's chromium: apt-get install -y chromium"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs it (.ci/run): there the test must run
        pytest.skip(message)
    return path


@pytest.fixture
def browser() -> Iterator[Any]:
    executable = chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def post_webhook(server: Server, topic: str, body: bytes) -> str:
    response = httpx.post(f"{server.url}/webhooks/{SOURCE}", content=body, headers=headers(topic, body), timeout=30)
    assert response.status_code == 200, response.text
    job_id: str = response.json()["jobId"]
    return job_id


def test_login_overview_dead_job_replay_done(tmp_path: Path, browser: Any) -> None:
    from playwright.sync_api import expect

    shots = tmp_path / "screenshots"
    shots.mkdir()
    config = write_config(
        tmp_path, sources={SOURCE: {"type": "shopify", "secrets": [SECRET]}}, worker={"max_attempts": 1}
    )
    with Server(config) as server, server.client() as client:
        # A refund that arrives before its order cannot be applied yet; with one attempt allowed it goes dead.
        refund = post_webhook(server, "refunds/create", raw("refunds_create.json"))
        assert wait_done(client, refund)["status"] == "dead"
        assert wait_done(client, post_webhook(server, "orders/create", raw("orders_create.json")))["status"] == "done"

        page = browser.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(f"{server.url}/admin")
        expect(page).to_have_url(f"{server.url}/admin/login")
        page.fill("#key", API_KEY)
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("Overview")
        expect(page.locator("#count-dead")).to_have_text("1")
        page.screenshot(path=shots / "1-overview.png", full_page=True)

        page.click("text=Dead jobs")
        expect(page.locator("h1")).to_have_text("Dead jobs")
        row = page.locator("tr", has_text=refund)
        expect(row).to_contain_text("has not arrived yet")
        page.screenshot(path=shots / "2-dead-jobs.png", full_page=True)

        page.click(f"text={refund}")
        expect(page.locator("#job-status")).to_have_text("dead")
        attempts = page.locator("#attempts tbody tr")
        expect(attempts).to_have_count(1)  # max_attempts is 1: its one attempt, dead
        expect(attempts.first).to_contain_text("dead")
        expect(attempts.first).to_contain_text("has not arrived yet")
        page.screenshot(path=shots / "3-dead-job.png", full_page=True)

        page.click("text=Replay this job")
        # The page reloads itself (no JavaScript: a meta refresh) while the job waits or runs.
        expect(page.locator("#job-status")).to_have_text("done")
        expect(page.locator("main")).to_contain_text("ecommerce.order_refunded")
        # The failed attempt stays in the trace; the replay's attempt, which succeeded, follows it.
        expect(attempts).to_have_count(2)
        expect(attempts.nth(0)).to_contain_text("has not arrived yet")
        expect(attempts.nth(1)).to_contain_text("done")
        expect(attempts.nth(1)).to_contain_text("replayed")
        page.screenshot(path=shots / "4-replayed-done.png", full_page=True)

        page.click("text=Overview")
        expect(page.locator("#count-dead")).to_have_text("0")
    assert sorted(shot.name for shot in shots.iterdir()) == [
        "1-overview.png",
        "2-dead-jobs.png",
        "3-dead-job.png",
        "4-replayed-done.png",
    ]
