"""Hostile or odd input at the edges answers in the one error shape, never 500: huge timestamps, ids past SQLite's
integers, negative limits, repeated Authorization headers, JSON nested past the parser's depth."""

import json
import threading
from typing import Any

import pytest

from tests.adapters import _shopify_deliveries as shopify
from tests.adapters._custom_deliveries import stripe_header
from tests.adapters.test_custom_signatures import MAPPING, SCHEMES
from tests.adapters.test_custom_signatures import _sign as sign_custom
from tests.conftest import API_KEY, Harness, order

HUGE = 10**399  # 400 digits


@pytest.mark.parametrize("scheme", ["hmac-ts", "stripe"])
def test_a_400_digit_timestamp_is_refused_401(make_harness: Any, scheme: str) -> None:
    harness: Harness = make_harness(
        sources={
            "src": {"type": "custom", "secrets": ["new-secret-0123"], "signature": SCHEMES[scheme], "mapping": MAPPING}
        }
    )
    body = b'{"id": "A-1", "total": 1250, "currency": "USD", "email": "ann@example.com"}'
    headers = (
        {"Stripe-Signature": stripe_header(body, "new-secret-0123", timestamp=HUGE)}
        if scheme == "stripe"
        else sign_custom(scheme, body, ["new-secret-0123"], timestamp=HUGE)
    )
    response = harness.client.post("/webhooks/src", content=body, headers=headers)
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"after": str(10**23)}, "after"),
        ({"after": "-1"}, "after"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "1" * 5000}, "limit"),
    ],
)
def test_out_of_range_paging_parameters_are_422(harness: Harness, query: dict[str, str], field: str) -> None:
    harness.post_order(order())
    harness.drain()
    response = harness.get("/api/v1/subscribers/buyer@example.com/events", **query)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"
    assert [detail["field"] for detail in response.json()["error"]["details"]] == [field]
    if field == "limit":
        listed = harness.get("/api/v1/jobs", status="done", **query)
        assert listed.status_code == 422, listed.text


def test_a_limit_above_the_maximum_is_the_maximum(harness: Harness) -> None:
    for index in range(3):
        harness.post_order(order(f"order-{index}"))
    harness.drain()
    events = harness.get("/api/v1/subscribers/buyer@example.com/events", limit="5000").json()["events"]
    assert len(events) == 3
    assert len(harness.get("/api/v1/jobs", status="done", limit="5000").json()["jobs"]) == 3


def test_event_pages_end_at_a_size_budget(harness: Harness) -> None:
    blob = "x" * 300_000
    for index in range(5):
        assert harness.post_order(order(f"big-{index}", properties={"note": blob})).status_code == 202
    harness.drain()
    seen: list[int] = []
    pages = []
    after = 0
    while page := harness.get("/api/v1/subscribers/buyer@example.com/events", after=str(after)).json()["events"]:
        pages.append(len(page))
        seen += [event["id"] for event in page]
        after = page[-1]["id"]
    # Four events of 300 kB pass 1 MiB: the page ends there; every event is still reached, once, in order.
    assert pages == [4, 1]
    assert seen == sorted(set(seen)) and len(seen) == 5


def test_a_slow_read_does_not_hold_other_requests(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    from store import events

    harness.post_order(order())
    harness.drain()
    started, release = threading.Event(), threading.Event()
    order_of_things: list[str] = []
    original = events.for_subscriber

    def slow(*args: Any, **kwargs: Any) -> Any:
        started.set()
        release.wait(timeout=30)
        order_of_things.append("read finished")
        return original(*args, **kwargs)

    monkeypatch.setattr(events, "for_subscriber", slow)
    answers: list[int] = []
    reader = threading.Thread(
        target=lambda: answers.append(harness.get("/api/v1/subscribers/buyer@example.com/events").status_code)
    )
    reader.start()
    assert started.wait(timeout=30)
    # While the read is still running, other requests, reads included, are answered.
    assert harness.client.get("/healthz").status_code == 200
    assert harness.post_order(order("order-2")).status_code == 202
    assert harness.get("/api/v1/subscribers/buyer@example.com").status_code == 200
    order_of_things.append("others answered")
    release.set()
    reader.join(timeout=30)
    assert order_of_things == ["others answered", "read finished"]
    assert answers == [200]


ROUTES = [
    ("POST", "/api/v1/orders"),
    ("GET", "/api/v1/jobs"),
    ("GET", "/api/v1/jobs/commerce-order-x"),
    ("POST", "/api/v1/jobs/commerce-order-x/replay"),
    ("GET", "/api/v1/orders/order-1001"),
    ("GET", "/api/v1/subscribers/buyer@example.com"),
    ("GET", "/api/v1/subscribers/buyer@example.com/events"),
    ("GET", "/api/v1/subscribers/buyer@example.com/export"),
    ("GET", "/api/v1/sources"),
    ("GET", "/api/v1/segments"),
    ("GET", "/metrics"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize("first_valid", [True, False])
def test_two_authorization_headers_are_401_on_every_route(
    harness: Harness, method: str, path: str, first_valid: bool
) -> None:
    harness.post_order(order())
    harness.drain()
    valid, other = f"Bearer {API_KEY}", "Bearer someone-elses-key-000000"
    pair = [valid, other] if first_valid else [other, valid]
    headers = [("Authorization", value) for value in pair] + [("Content-Type", "application/json")]
    response = harness.client.request(method, path, headers=headers, content=json.dumps(order()))
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "unauthorized"


def _nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def test_push_order_nested_past_the_parsers_depth_is_400_saying_so(harness: Harness) -> None:
    response = harness.post_order(_nested(5000))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_json"
    assert "deeper" in error["message"] and "200" in error["message"]


def test_a_signed_webhook_nested_past_the_depth_is_400_and_stores_nothing(make_harness: Any) -> None:
    harness = shopify.shop_harness(make_harness)
    body = b'{"id": 1, "test": true, "x": ' + b"[" * 3000 + b"]" * 3000 + b"}"
    response = shopify.deliver(harness, "orders/create", body)
    assert response.status_code == 400, response.text
    assert "deeper" in response.json()["error"]["message"]
    # Brackets inside strings are text, not nesting.
    text = json.dumps({"id": 2, "note": "[" * 3000}).encode()
    assert shopify.deliver(harness, "orders/create", text).json()["queued"] is True
    with harness.db() as conn:
        assert conn.execute("SELECT count(*) FROM jobs").fetchone()[0] == 1


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"cursor": "\u00b2"}, "cursor"),  # a digit to `str.isdigit`, not to `int`
        ({"cursor": "\u0661\u0662"}, "cursor"),  # Arabic-Indic digits: not a cursor this API returns
        ({"limit": "\u00b2"}, "limit"),
        ({"limit": "\u0661"}, "limit"),
    ],
)
def test_segment_members_refuse_digits_of_other_scripts_422(
    make_harness: Any, query: dict[str, str], field: str
) -> None:
    harness: Harness = make_harness(segments={"buyers": {"orders": {"atLeast": 1}}})
    harness.post_order(order())
    harness.drain()
    response = harness.get("/api/v1/segments/buyers/members", **query)
    assert response.status_code == 422, response.text
    assert [detail["field"] for detail in response.json()["error"]["details"]] == [field]


def test_a_destination_replay_body_is_read_like_every_other(make_harness: Any) -> None:
    # Nested past the parser's depth: a 400 saying so, not a RecursionError's 500; over max_body_bytes: 413.
    harness: Harness = make_harness(max_body_bytes=8192)
    path = "/api/v1/destinations/crm/replay"
    deep = harness.client.post(path, headers=harness.headers, content=b"[" * 4000 + b"]" * 4000)
    assert deep.status_code == 400, deep.text
    assert deep.json()["error"]["code"] == "invalid_json"
    large = json.dumps({"status": "dead", "since": "2026-01-01T00:00:00Z", "x": "y" * 8192})
    too_large = harness.client.post(path, headers=harness.headers, content=large)
    assert too_large.status_code == 413, too_large.text
    assert too_large.json()["error"]["code"] == "payload_too_large"
