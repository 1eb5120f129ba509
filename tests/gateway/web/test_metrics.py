"""`GET /metrics`: the series an operator alerts on, with bounded labels, guarded by `metrics_token` or loopback;
the same job series from a standalone `worker` process at its own `--metrics-port`."""

import re
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from adapters import REGISTRY
from gateway import metrics
from gateway.config import build_adapters, load
from gateway.metrics import scrape_allowed
from gateway.web.app import create_app
from tests.conftest import API_KEY, Harness, order, write_config
from tests.gateway._fake_platform import SECRET, FakePlatform, canonical, deliver
from tests.gateway._server import STARTUP_LIMIT_SECONDS, Process, Server

TOKEN = "metrics-token-0123456789"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape by (name, labels)."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(text: str, metric: str, **labels: str) -> float:
    return samples(text).get((metric, frozenset(labels.items())), 0.0)


@pytest.fixture
def shop(make_harness: Any, monkeypatch: pytest.MonkeyPatch) -> Harness:
    monkeypatch.setitem(REGISTRY, "testplatform", FakePlatform)
    harness: Harness = make_harness(
        sources={"shop": {"type": "testplatform", "secrets": [SECRET]}}, metrics_token=TOKEN
    )
    return harness


def scrape(harness: Harness, token: str = TOKEN) -> str:
    response = harness.client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def test_the_series_an_operator_alerts_on(shop: Harness) -> None:
    for i in range(3):
        assert shop.post_order(order(f"order-{i}", customer={"email": f"person-{i}@example.com"})).status_code == 202
    assert deliver(shop, canonical("w-1", mode="broken")).status_code == 200
    deliver(shop, canonical(), topic="customers/update")
    deliver(shop, canonical(), secret="forged")
    shop.post_order({"orderId": "incomplete"})
    before = scrape(shop)
    assert value(before, "commerce_gateway_jobs", status="queued") == 4
    assert value(before, "commerce_gateway_backlog_seconds") > 0
    shop.drain()
    text = scrape(shop)
    assert value(text, "commerce_gateway_jobs", status="dead") == 1
    assert value(text, "commerce_gateway_jobs", status="queued") == 0
    assert value(text, "commerce_gateway_backlog_seconds") == 0
    assert value(text, "commerce_gateway_jobs_processed_total", kind="order", outcome="done") == 3
    assert value(text, "commerce_gateway_jobs_processed_total", kind="webhook", outcome="dead") == 1
    assert value(text, "commerce_gateway_job_duration_seconds_count", kind="order") == 3
    assert value(text, "commerce_gateway_job_latency_seconds_count", kind="order") == 3
    assert value(text, "commerce_gateway_events_recorded_total", name="ecommerce.order_placed") == 3
    assert value(text, "commerce_gateway_disk_free_bytes") > 0
    # The group commit (durability: full): every 202 waited for a sync of the WAL begun after its commit.
    commits = value(text, "commerce_gateway_ingest_commits_total")
    assert value(text, "commerce_gateway_ingest_committed_requests_total") >= commits >= 4
    assert value(text, "commerce_gateway_wal_sync_seconds_count") >= 3
    assert value(text, "commerce_gateway_wal_sync_seconds_sum") > 0
    families = {family.name for family in text_string_to_metric_families(text)}
    assert {
        "commerce_gateway_automations_active",
        "commerce_gateway_segment_members",
        "commerce_gateway_destination_enabled",
        "commerce_gateway_destination_deliveries",
    } <= families
    assert value(text, "commerce_gateway_database_bytes") >= shop.config.database.stat().st_size > 0
    intake = {
        (source, outcome): value(text, "commerce_gateway_ingested_deliveries_total", source=source, outcome=outcome)
        for source in ("api", "shop")
        for outcome in ("queued", "ignored", "rejected")
    }
    assert intake == {
        ("api", "queued"): 3,
        ("api", "ignored"): 0,
        ("api", "rejected"): 1,
        ("shop", "queued"): 1,
        ("shop", "ignored"): 1,
        ("shop", "rejected"): 1,
    }
    assert value(text, "commerce_gateway_http_requests_total", route="/api/v1/orders", method="POST", status="202") == 3
    assert value(text, "commerce_gateway_http_requests_total", route="/webhooks/{source}", method="POST", status="401")
    assert value(text, "commerce_gateway_http_requests_total", route="/metrics", method="GET", status="200") == 1


def test_segment_sizes_and_active_automations_are_read_at_scrape_time(make_harness: Any) -> None:
    harness: Harness = make_harness(
        segments={"buyers": {"all": [{"attribute": "ordersCount", "gte": 1}]}}, metrics_token=TOKEN
    )
    harness.post_order(order("order-1"))
    harness.drain()
    text = scrape(harness)
    assert value(text, "commerce_gateway_segment_members", segment="buyers") == 1


def test_labels_stay_bounded(shop: Harness) -> None:
    shop.post_order(order("order-secret-77", customer={"email": "someone-private@example.com"}))
    shop.drain()
    shop.get("/api/v1/subscribers/someone-private@example.com")
    shop.get("/api/v1/orders/order-secret-77")
    shop.client.get("/no/such/path/someone-private@example.com")
    text = scrape(shop)
    assert "someone-private" not in text and "order-secret-77" not in text
    routes = {dict(labels)["route"] for (name, labels) in samples(text) if name.endswith("http_requests_total")}
    assert routes == {"/api/v1/orders", "/api/v1/subscribers/{email}", "/api/v1/orders/{order_id:path}", "unmatched"}
    # Every metric name follows Prometheus conventions: the prefix, counters in _total, times in _seconds.
    for family in text_string_to_metric_families(text):
        assert family.name.startswith("commerce_gateway_"), family.name
        if family.type == "histogram":
            assert family.name.endswith("_seconds"), family.name


def test_the_token_is_required_when_configured(shop: Harness) -> None:
    assert shop.client.get("/metrics").status_code == 401
    wrong = shop.client.get("/metrics", headers={"Authorization": "Bearer not-the-token-at-all"})
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, "unauthorized")
    # The API key is not the metrics token.
    assert shop.client.get("/metrics", headers={"Authorization": f"Bearer {API_KEY}"}).status_code == 401


@pytest.mark.parametrize(("client", "status"), [("127.0.0.1", 200), ("::1", 200), ("192.0.2.7", 403), ("x", 403)])
def test_without_a_token_only_loopback_clients_may_scrape(tmp_path: Path, client: str, status: int) -> None:
    config = load(write_config(tmp_path))
    app = create_app(config, build_adapters(config), list(config.api_keys), run_worker=False)
    with TestClient(app, client=(client, 50000)) as http:
        response = http.get("/metrics")
    assert response.status_code == status
    if status == 403:
        assert response.json()["error"]["code"] == "forbidden"


def test_metrics_can_be_turned_off(make_harness: Any) -> None:
    harness: Harness = make_harness(metrics_enabled=False)
    assert harness.post_order(order()).status_code == 202
    assert harness.drain() == 1
    response = harness.client.get("/metrics")
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")


def test_scrape_rule() -> None:
    assert scrape_allowed(TOKEN, f"Bearer {TOKEN}", "192.0.2.7")
    assert scrape_allowed(TOKEN, f"bearer  {TOKEN}", None)
    assert not scrape_allowed(TOKEN, None, "127.0.0.1")  # a token, once set, is needed from loopback too
    assert not scrape_allowed(TOKEN, f"Basic {TOKEN}", "127.0.0.1")
    assert scrape_allowed(None, None, "127.0.0.53") and scrape_allowed(None, None, "::1")
    assert not scrape_allowed(None, None, "10.1.2.3") and not scrape_allowed(None, None, None)


def test_a_worker_process_answers_scrapes_of_its_own_jobs(tmp_path: Path) -> None:
    config = write_config(tmp_path, metrics_token=TOKEN, worker={"poll_seconds": 0.01})
    with Server(config, "--no-worker") as server, Process(config, "worker", "--metrics-port", "0") as worker:
        with server.client() as client:
            for i in range(5):
                assert client.post("/api/v1/orders", json=order(f"order-{i}")).status_code == 202
        deadline = time.monotonic() + STARTUP_LIMIT_SECONDS
        while not re.search(r"metrics on (http://\S+)", worker.stdout()):
            worker.check_alive()
            assert time.monotonic() < deadline, worker.stderr()
            time.sleep(0.02)
        url = re.search(r"metrics on (http://\S+)", worker.stdout()).group(1)  # type: ignore[union-attr]
        assert httpx.get(url).status_code == 401
        done = 0.0
        while done < 5:  # the worker's own counter, waited on until it has all five
            worker.check_alive()
            assert time.monotonic() < deadline, worker.stderr()
            text = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}).text
            done = value(text, "commerce_gateway_jobs_processed_total", kind="order", outcome="done")
        assert done == 5
        assert value(text, "commerce_gateway_job_latency_seconds_count", kind="order") == 5
        # serve's endpoint has the database-wide gauges; its own worker is off, so it processed nothing.
        served = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
        assert value(served, "commerce_gateway_jobs", status="queued") == 0
        assert value(served, "commerce_gateway_jobs_processed_total", kind="order", outcome="done") == 0


def test_active_automations_are_a_series_per_flow_even_at_zero(make_harness: Any) -> None:
    # A gauge that vanishes at 0 reads as "no data": an alert or a graph on a flow would go blank, not to 0.
    harness: Harness = make_harness(metrics_token=TOKEN, lifecycle={"checkout_abandoned_after": "1h"})
    checkout = {"checkoutId": "c-1", "customer": {"email": "buyer@example.com"}}
    assert harness.client.post("/api/v1/checkouts", headers=harness.headers, json=checkout).status_code == 202
    harness.drain()
    text = scrape(harness)
    active = {flow: value(text, "commerce_gateway_automations_active", flow=flow) for flow in ("checkout",)}
    assert active == {"checkout": 1}
    flows = {labels for (name, labels) in samples(text) if name == "commerce_gateway_automations_active"}
    assert flows == {frozenset({("flow", flow)}) for flow in ("replenishment", "back_in_stock", "checkout")}


def test_a_stalled_scraper_is_dropped_by_the_worker_metrics_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """A standalone worker's metrics endpoint gives each connection a thread: one that sends half a request and
    stalls is closed after the client timeout, instead of holding its thread and socket for good."""
    monkeypatch.setattr(metrics, "CLIENT_TIMEOUT_SECONDS", 0.2)
    server = metrics.serve_metrics(CollectorRegistry(), "127.0.0.1", 0, None)
    try:
        with socket.create_connection(server.server_address[:2], timeout=STARTUP_LIMIT_SECONDS) as stalled:
            stalled.sendall(b"GET /metrics HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\n")  # the headers never end
            assert stalled.recv(1024) == b""  # closed by the server, well before this socket's own timeout
        answer = httpx.get(f"http://127.0.0.1:{server.server_address[1]}/metrics", timeout=STARTUP_LIMIT_SECONDS)
        assert answer.status_code == 200
    finally:
        server.shutdown()
        server.server_close()
