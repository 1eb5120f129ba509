"""Lists and traces: every job newest first with its times and what it produced, paged by cursor and filtered
by status and source; ignored and rejected deliveries counted per reason and logged at info; `jobs list` and
`--version` on the command line."""

import json
import logging
import os
import subprocess
import sys
from typing import Any

import pytest

from adapters import REGISTRY
from gateway.cli import main, version
from tests.conftest import Harness, order
from tests.gateway._fake_platform import SECRET, FakePlatform, canonical, deliver


@pytest.fixture
def shop(make_harness: Any, monkeypatch: pytest.MonkeyPatch) -> Harness:
    monkeypatch.setitem(REGISTRY, "testplatform", FakePlatform)
    harness: Harness = make_harness(
        sources={"shop": {"type": "testplatform", "secrets": [SECRET]}}, worker={"max_attempts": 1}
    )
    return harness


def _mixed(shop: Harness) -> dict[str, str]:
    """One job in each of done, dead and queued, from two sources; returns their ids by what they are."""
    done = shop.post_order(order("order-1")).json()["jobId"]
    dead = deliver(shop, canonical("w-1", mode="broken")).json()["jobId"]
    shop.drain()
    queued = deliver(shop, canonical("w-2")).json()["jobId"]
    return {"done": done, "dead": dead, "queued": queued}


def _jobs(shop: Harness, **params: Any) -> dict[str, Any]:
    response = shop.get("/api/v1/jobs", **params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def test_every_status_newest_first_with_times_and_what_each_produced(shop: Harness) -> None:
    ids = _mixed(shop)
    page = _jobs(shop)
    assert [job["jobId"] for job in page["jobs"]] == [ids["queued"], ids["dead"], ids["done"]]
    assert page["nextCursor"] is None
    assert page["counts"] == {"queued": 1, "processing": 0, "failed": 0, "dead": 1}
    queued, dead, done = page["jobs"]
    assert (queued["status"], queued["finishedAt"], queued["produced"]) == (
        "queued",
        None,
        {"orders": [], "events": []},
    )
    assert queued["nextAttemptAt"] >= queued["receivedAt"]
    assert dead["status"] == "dead" and dead["error"] == "TranslationError: unexpected shape: no line_items"
    assert dead["finishedAt"] >= dead["receivedAt"] and dead["nextAttemptAt"] is None
    assert done["produced"] == {
        "orders": [{"source": "api", "orderId": "order-1"}],
        "events": ["ecommerce.order_placed"],
    }
    # The single read has the same fields, and the job's failed attempts (the lists leave them out).
    assert shop.job(ids["done"]) == {**done, "failedAttempts": []}
    [attempt] = shop.job(ids["dead"])["failedAttempts"]
    assert attempt == {
        "attempt": 1,
        "at": dead["finishedAt"],
        "error": dead["error"],
        "outcome": "dead",
        "nextAttemptAt": None,
    }


def test_a_webhook_job_produced_the_orders_and_events_it_recorded(shop: Harness) -> None:
    job_id = deliver(shop, canonical("w-9")).json()["jobId"]
    shop.drain()
    produced = shop.job(job_id)["produced"]
    assert produced == {"orders": [{"source": "shop", "orderId": "w-9"}], "events": ["ecommerce.order_placed"]}


def test_filters_by_status_and_source(shop: Harness) -> None:
    ids = _mixed(shop)
    assert [job["jobId"] for job in _jobs(shop, status="dead")["jobs"]] == [ids["dead"]]
    assert [job["jobId"] for job in _jobs(shop, source="shop")["jobs"]] == [ids["queued"], ids["dead"]]
    assert [job["jobId"] for job in _jobs(shop, source="shop", status="queued")["jobs"]] == [ids["queued"]]
    assert [job["jobId"] for job in _jobs(shop, source="api", status="done")["jobs"]] == [ids["done"]]
    assert _jobs(shop, source="nowhere")["jobs"] == []


@pytest.mark.parametrize("source", [None, "api"])
def test_pages_follow_the_cursor_to_the_end(shop: Harness, source: str | None) -> None:
    accepted = [shop.post_order(order(f"order-{i}")).json()["jobId"] for i in range(7)]
    shop.drain()
    accepted += [shop.post_order(order(f"order-{i}", status="cancelled")).json()["jobId"] for i in range(2)]
    seen, cursor = [], None
    while True:
        params = {"limit": 4, **({"cursor": cursor} if cursor else {}), **({"source": source} if source else {})}
        page = _jobs(shop, **params)
        seen += [job["jobId"] for job in page["jobs"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == accepted[::-1]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "lost"}, "status"),
        ({"limit": "0"}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"cursor": "-1"}, "cursor"),
    ],
)
def test_bad_list_parameters_are_422_naming_the_field(shop: Harness, params: dict[str, str], field: str) -> None:
    response = shop.get("/api/v1/jobs", **params)
    assert response.status_code == 422
    assert [detail["field"] for detail in response.json()["error"]["details"]] == [field]


def test_ignored_and_rejected_deliveries_are_counted_per_reason_and_logged(
    shop: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.web")
    payload = canonical(customer={"email": "secret-person@example.com"})
    deliver(shop, payload, topic="customers/update")
    deliver(shop, payload, topic="customers/update")
    deliver(shop, payload, secret="forged")
    deliver(shop, payload)
    deliver(shop, payload)  # a duplicate
    shop.post_order({"orderId": "x"})  # refused by validation
    shop.client.post("/api/v1/orders", content=b"{}")  # no key
    sources = {source["name"]: source for source in shop.get("/api/v1/sources").json()["sources"]}
    assert {k: sources["shop"][k] for k in ("received", "queued", "duplicate", "ignored", "rejected")} == {
        "received": 4,
        "queued": 1,
        "duplicate": 1,
        "ignored": 2,
        "rejected": 1,
    }
    assert sources["shop"]["reasons"] == {
        "ignored": {"topic 'customers/update' is not handled": 2},
        "rejected": {"no matching signature": 1},
    }
    assert sources["api"]["rejected"] == 2
    assert sources["api"]["reasons"]["rejected"] == {"validation_error": 1, "unauthorized": 1}
    refused = [r for r in caplog.records if r.getMessage() in ("delivery ignored", "delivery rejected")]
    assert [(r.levelname, r.source, r.reason) for r in refused][:3] == [  # type: ignore[attr-defined]
        ("INFO", "shop", "topic 'customers/update' is not handled"),
        ("INFO", "shop", "topic 'customers/update' is not handled"),
        ("INFO", "shop", "no matching signature"),
    ]
    assert "secret-person" not in caplog.text


def test_cli_lists_dead_jobs_and_prints_its_version(shop: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    ids = _mixed(shop)
    config = str(shop.config.database.parent.parent / "config.yaml")
    assert main(["--config", config, "jobs", "list", "--status", "dead"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["JOB", "STATUS", "SOURCE", "TRY", "RECEIVED", "ERROR"]
    assert len(lines) == 2 and lines[1].split()[:4] == [ids["dead"], "dead", "shop", "1"]
    assert "TranslationError: unexpected shape" in lines[1]
    assert main(["jobs", "list", "--json", "--config", config]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [job["jobId"] for job in listed] == [ids["queued"], ids["dead"], ids["done"]]
    assert listed == _jobs(shop)["jobs"]
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"commerce-gateway {version()}" != "commerce-gateway unknown"


def test_cli_output_into_a_reader_that_went_away_is_no_traceback(harness: Harness) -> None:
    # `commerce-gateway jobs list | head -1`: the reader closes the pipe after the first line.
    harness.post_order(order())
    config = str(harness.config.database.parent.parent / "config.yaml")
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        listed = subprocess.run(
            [sys.executable, "-m", "gateway", "jobs", "list", "--config", config],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert listed.returncode == 1
    assert "Traceback" not in listed.stderr and "BrokenPipeError" not in listed.stderr, listed.stderr
