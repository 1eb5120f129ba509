"""`commerce-gateway backfill` against a real HTTP server on 127.0.0.1 serving REST v3 order pages."""

import base64
import copy
import io
import json
import logging
import sqlite3
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from gateway import cli
from tests.adapters._woocommerce_deliveries import SECRET, SOURCE, deliver, fixture

KEY, KEY_SECRET = "ck_0123456789abcdef", "cs_fedcba9876543210"


def _pending() -> dict[str, Any]:
    payload = copy.deepcopy(fixture("variations"))
    payload.update(id=1004, number="1004", status="pending", date_modified_gmt="2026-06-09T08:00:00")
    return payload


PAGES = [
    [fixture("guest-processing"), fixture("completed-two-partial-refunds"), fixture("refunded-full")],
    [fixture("variations"), fixture("jpy-store"), _pending()],
]


class Store:
    """What the fake store serves and what it was asked."""

    def __init__(self) -> None:
        self.pages: list[list[dict[str, Any]]] = PAGES
        self.requests: list[dict[str, list[str]]] = []
        self.fail_page: int | None = None
        self.url = ""


@pytest.fixture
def store() -> Iterator[Store]:
    state = Store()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            state.requests.append(query)
            expected = "Basic " + base64.b64encode(f"{KEY}:{KEY_SECRET}".encode()).decode()
            page = int(query.get("page", ["1"])[0])
            if parts.path != "/wp-json/wc/v3/orders":
                self._send(404, {"code": "rest_no_route"})
            elif self.headers.get("Authorization") != expected:
                self._send(
                    401, {"code": "woocommerce_rest_cannot_view", "message": "Sorry, you cannot list resources."}
                )
            elif page == state.fail_page:
                self._send(500, {"code": "internal_server_error"})
            else:
                orders = state.pages[page - 1] if page <= len(state.pages) else []
                total = sum(len(p) for p in state.pages)
                self._send(200, orders, {"X-WP-Total": str(total), "X-WP-TotalPages": str(len(state.pages))})

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(raw)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


def _harness(make_harness: Any, store: Store, key_secret: str = KEY_SECRET) -> Any:
    api = {"url": store.url, "consumer_key": KEY, "consumer_secret": key_secret}
    return make_harness(
        sources={SOURCE: {"type": "woocommerce", "secrets": [SECRET], "api": api}},
        fx_rates={"EUR": 1.08, "JPY": "0.0064"},
    )


def _cli(*args: str) -> int:
    # The CLI sets up JSON logging on the root logger, onto a stream pytest closes after the test.
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return cli.main(list(args))
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def _backfill(harness: Any, *extra: str) -> int:
    config = harness.config.database.parent.parent / "config.yaml"
    return _cli("--config", str(config), "backfill", SOURCE, "--since", "2026-06-01", *extra)


def _snapshot(harness: Any) -> dict[str, list[Any]]:
    with sqlite3.connect(harness.config.database) as conn:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
            for table in ("orders", "events", "subscribers", "jobs")
        }


def test_backfill_pages_through_the_store_and_applies_every_order(make_harness: Any, store: Store, capsys: Any) -> None:
    harness = _harness(make_harness, store)
    assert _backfill(harness) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:3] == [
        "fetched 6 order(s) in 2 page(s)",
        "queued 6, already recorded 0",
        "jobs: 6 done; 1 with warnings:",
    ]
    # The job with warnings is named, with what it warns (no personal data in a warning).
    [(job_id, warning)] = [line.strip().split(": ", 1) for line in out[3:]]
    assert harness.job(job_id)["warnings"] == [warning]
    assert [query["page"] for query in store.requests] == [["1"], ["2"]]
    assert store.requests[0] == {
        "modified_after": ["2026-06-01T00:00:00"],
        "dates_are_gmt": ["true"],
        "per_page": ["100"],
        "page": ["1"],
        "orderby": ["id"],
        "order": ["asc"],
    }
    with harness.db() as conn:
        rows = conn.execute("SELECT order_id, total_cents, refunded_cents FROM orders ORDER BY id").fetchall()
    assert sorted(rows) == [
        ("1003", 10000, 0),
        ("5001", 4500, 0),
        ("727", 8850, 0),
        ("801", 12000, 1750),
        ("902", 4500, 4500),
    ]
    assert harness.attributes("jane@example.com") == {"ltv": 102.5, "totalSpent": 102.5, "ordersCount": 1, "aov": 102.5}
    # 4500 JPY at 0.0064 USD = 28.80
    assert harness.attributes("yuki@example.jp")["totalSpent"] == 28.8
    assert harness.get("/api/v1/orders/1004", source=SOURCE).status_code == 404  # pending: not an order yet


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_progress_bar(make_harness: Any, store: Store, monkeypatch: Any) -> None:
    harness = _harness(make_harness, store)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert _backfill(harness) == 0
    bar = terminal.getvalue().split("\r")[-1]
    assert bar.startswith("backfill woo: 100%")
    assert "| 6/6 [" in bar


def test_running_backfill_twice_changes_nothing(make_harness: Any, store: Store, capsys: Any) -> None:
    harness = _harness(make_harness, store)
    assert _backfill(harness) == 0
    before = _snapshot(harness)
    capsys.readouterr()
    assert _backfill(harness) == 0
    assert capsys.readouterr().out.splitlines() == [
        "fetched 6 order(s) in 2 page(s)",
        "queued 0, already recorded 6",
        "jobs: none; 0 with warnings",
    ]
    assert _snapshot(harness) == before


def test_backfill_after_a_delivered_webhook_counts_nothing_twice(make_harness: Any, store: Store) -> None:
    harness = _harness(make_harness, store)
    deliver(harness, fixture("completed-two-partial-refunds"), "order.created")
    harness.drain()
    events = harness.events("jane@example.com")
    assert _backfill(harness) == 0
    assert harness.events("jane@example.com") == events
    assert harness.attributes("jane@example.com")["totalSpent"] == 102.5


def test_only_queueing_leaves_processing_to_the_worker(make_harness: Any, store: Store, capsys: Any) -> None:
    harness = _harness(make_harness, store)
    assert _backfill(harness, "--no-process") == 0
    assert capsys.readouterr().out.splitlines()[-1] == "jobs: 6 queued; 0 with warnings"
    assert harness.drain() == 6
    assert harness.attributes("jane@example.com")["totalSpent"] == 102.5


def test_refused_credentials_fail_without_showing_them(make_harness: Any, store: Store, capsys: Any) -> None:
    harness = _harness(make_harness, store, key_secret="cs_wrong_secret_value")
    assert _backfill(harness) == 1
    captured = capsys.readouterr()
    assert (
        "commerce-gateway backfill: page 1: the store refused the API key (HTTP 401): check"
        f" sources.{SOURCE}.api.consumer_key and sources.{SOURCE}.api.consumer_secret, and that the key has Read"
        " permission (WooCommerce > Settings > Advanced > REST API)"
    ) in captured.err
    assert "cs_wrong_secret_value" not in captured.err + captured.out
    with harness.db() as conn:
        assert conn.execute("SELECT count(*) FROM jobs").fetchone()[0] == 0


def test_a_failed_page_keeps_what_came_before_and_a_rerun_completes(
    make_harness: Any, store: Store, capsys: Any
) -> None:
    harness = _harness(make_harness, store)
    store.fail_page = 2
    assert _backfill(harness) == 1
    assert "page 2: the store answered HTTP 500" in capsys.readouterr().err
    assert harness.attributes("jane@example.com")["totalSpent"] == 102.5
    store.fail_page = None
    assert _backfill(harness) == 0
    assert capsys.readouterr().out.splitlines()[1] == "queued 3, already recorded 3"


def test_a_source_without_an_api_block_is_refused(make_harness: Any, capsys: Any) -> None:
    harness = make_harness(sources={SOURCE: {"type": "woocommerce", "secrets": [SECRET]}})
    assert _backfill(harness) == 1
    assert "sources.woo.api is not configured" in capsys.readouterr().err


def test_since_must_be_a_date(make_harness: Any, store: Store, capsys: Any) -> None:
    harness = _harness(make_harness, store)
    config = harness.config.database.parent.parent / "config.yaml"
    assert _cli("--config", str(config), "backfill", SOURCE, "--since", "last tuesday") == 1
    assert "--since 'last tuesday' is not a date" in capsys.readouterr().err
    assert store.requests == []
