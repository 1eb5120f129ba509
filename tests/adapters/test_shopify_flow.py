"""Shopify end to end through the real app: an order's life delivered out of order and duplicated."""

import json
import uuid
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.adapters._shopify_deliveries import ORDER_A, ORDER_B, POWDER, SOURCE, deliver, raw, shop_harness
from tests.conftest import Harness

JANE = "jane.buyer@example.com"


def queued(response: Any) -> str:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["queued"] is True, body
    job_id: str = body["jobId"]
    return job_id


def figures(harness: Harness) -> tuple[int, float, float, float]:
    attributes = harness.attributes(JANE)
    return attributes["ordersCount"], attributes["totalSpent"], attributes["ltv"], attributes["aov"]


def order(harness: Harness, order_id: str) -> dict[str, Any]:
    response = harness.get(f"/api/v1/orders/{order_id}", source=SOURCE)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def test_order_life_out_of_order_and_duplicated(make_harness: Any) -> None:
    harness = shop_harness(make_harness)

    # The partial refund arrives before anything of its order: it waits instead of failing.
    refund_job = queued(deliver(harness, "refunds/create", raw("refunds_create.json"), "d-refund"))
    harness.drain()
    job = harness.job(refund_job)
    assert (job["status"], job["attempts"]) == ("failed", 1)
    assert job["error"] == (
        "waiting: refund 9007199254850001 belongs to order 9007199254740993, which has not arrived yet"
    )

    # orders/paid comes next, twice with the same delivery id.
    queued(deliver(harness, "orders/paid", raw("orders_paid.json"), "d-paid"))
    assert deliver(harness, "orders/paid", raw("orders_paid.json"), "d-paid").json() == {
        "success": True,
        "duplicate": True,
    }
    harness.drain()
    assert figures(harness) == (1, 88.5, 88.5, 88.5)

    # The refund's retry finds its order now.
    harness.make_retries_due()
    harness.drain()
    job = harness.job(refund_job)
    assert (job["status"], job["attempts"], job["error"], job["warnings"]) == ("done", 2, None, [])
    assert figures(harness) == (1, 68.5, 68.5, 68.5)

    # orders/updated carries the same refund: counted once. The late orders/create (older updated_at) comes
    # twice, under two delivery ids, and changes nothing.
    queued(deliver(harness, "orders/updated", raw("orders_updated_refund.json"), "d-updated"))
    queued(deliver(harness, "orders/create", raw("orders_create.json"), "d-create"))
    queued(deliver(harness, "orders/create", raw("orders_create.json"), "d-create-retry"))
    harness.drain()
    assert figures(harness) == (1, 68.5, 68.5, 68.5)

    # The customer's second order: orders/fulfilled, and the orders/updated Shopify sends with it.
    queued(deliver(harness, "orders/fulfilled", raw("orders_fulfilled.json"), "d-fulfilled"))
    queued(deliver(harness, "orders/updated", raw("orders_fulfilled.json"), "d-fulfilled-updated"))
    harness.drain()
    assert figures(harness) == (2, 113.5, 113.5, 56.75)

    # The first order is cancelled and the rest refunded: delivered twice, and once more as orders/updated.
    queued(deliver(harness, "orders/cancelled", raw("orders_cancelled.json"), "d-cancelled"))
    assert deliver(harness, "orders/cancelled", raw("orders_cancelled.json"), "d-cancelled").json()["duplicate"]
    queued(deliver(harness, "orders/updated", raw("orders_cancelled.json"), "d-cancelled-updated"))
    harness.drain()
    assert figures(harness) == (1, 45.0, 45.0, 45.0)

    subscriber = harness.subscriber(JANE)
    assert (subscriber["externalId"], subscriber["firstName"], subscriber["lastName"]) == (
        "9007199254741337",
        "Jane",
        "Buyer",
    )
    assert order(harness, ORDER_A) == {
        "source": SOURCE,
        "orderId": ORDER_A,
        "orderNumber": "#1001",
        "status": "cancelled",
        "totalCents": 8850,
        "refundedCents": 8850,
        "currency": "USD",
        "cancelled": True,
        "fulfilled": False,
        "email": JANE,
        "items": [POWDER],
        "orderedAt": "2026-06-01T12:00:00.000Z",
    }
    assert order(harness, ORDER_B)["status"] == "fulfilled"

    events = harness.events(JANE)
    assert [(e["name"], e["properties"]["orderId"], e["properties"].get("refundAmountCents")) for e in events] == [
        ("ecommerce.order_placed", ORDER_A, None),
        ("ecommerce.order_refunded", ORDER_A, 2000),
        ("ecommerce.order_placed", ORDER_B, None),
        ("ecommerce.order_fulfilled", ORDER_B, None),
        ("ecommerce.order_refunded", ORDER_A, 8850),
        ("ecommerce.order_cancelled", ORDER_A, None),
    ]
    # refunds/create knew no name, items or time: the event takes them from the stored order.
    assert events[1]["properties"] == {
        "provider": "shopify",
        "source": SOURCE,
        "orderId": ORDER_A,
        "orderNumber": "#1001",
        "status": "refunded",
        "totalCents": 8850,
        "currency": "USD",
        "orderedAt": "2026-06-01T12:00:00.000Z",
        "lineItems": [POWDER],
        "refundAmountCents": 2000,
    }
    assert events[0]["properties"]["presentmentCurrency"] == "USD"
    assert events[0]["properties"]["presentmentTotalCents"] == 8850


def _changed(fixture: str, **fields: Any) -> bytes:
    payload = json.loads(raw(fixture))
    payload.update(fields)
    return json.dumps(payload).encode()


def test_stale_update_never_overwrites_newer_facts(make_harness: Any) -> None:
    harness = shop_harness(make_harness)
    queued(deliver(harness, "orders/updated", raw("orders_updated_refund.json")))
    # An older state of the order (before an edit that Shopify reported later) arrives last.
    older = _changed("orders_create.json", current_total_price="99.00", name="#1001-old")
    queued(deliver(harness, "orders/create", older))
    harness.drain()
    stored = order(harness, ORDER_A)
    assert (stored["totalCents"], stored["orderNumber"], stored["refundedCents"]) == (8850, "#1001", 2000)
    assert figures(harness) == (1, 68.5, 68.5, 68.5)


def test_refund_then_order_update_with_it_counts_once(make_harness: Any) -> None:
    harness = shop_harness(make_harness)
    queued(deliver(harness, "orders/create", raw("orders_create.json")))
    harness.drain()
    queued(deliver(harness, "orders/updated", raw("orders_updated_refund.json")))
    queued(deliver(harness, "refunds/create", raw("refunds_create.json")))
    harness.drain()
    assert figures(harness) == (1, 68.5, 68.5, 68.5)
    assert [e["name"] for e in harness.events(JANE)] == ["ecommerce.order_placed", "ecommerce.order_refunded"]


def test_delete_cancels_a_known_order(make_harness: Any) -> None:
    harness = shop_harness(make_harness)
    queued(deliver(harness, "orders/create", raw("orders_create.json")))
    queued(deliver(harness, "orders/fulfilled", raw("orders_fulfilled.json")))
    harness.drain()
    assert figures(harness) == (2, 133.5, 133.5, 66.75)
    job = queued(deliver(harness, "orders/delete", raw("orders_delete.json")))
    harness.drain()
    assert harness.job(job)["warnings"] == []
    assert figures(harness) == (1, 88.5, 88.5, 88.5)
    assert order(harness, ORDER_B)["status"] == "cancelled"
    last = harness.events(JANE)[-1]
    assert (last["name"], last["properties"]["orderId"], last["properties"]["deleted"]) == (
        "ecommerce.order_cancelled",
        ORDER_B,
        True,
    )


def test_multicurrency_and_jpy_orders_keep_their_currency(make_harness: Any) -> None:
    harness = make_harness(
        sources={SOURCE: {"type": "shopify", "secrets": ["shpss_test_app_secret_0123456789"]}},
        fx_rates={"JPY": "0.0065"},
    )
    queued(deliver(harness, "orders/updated", raw("orders_updated_multicurrency.json")))
    queued(deliver(harness, "orders/paid", raw("orders_paid_jpy_guest.json")))
    harness.drain()
    # USD shop, EUR buyer: 108.00 charged, 10.80 refunded.
    assert harness.attributes("klaus@example.de")["totalSpent"] == 97.2
    # JPY 4500 at 0.0065 USD per yen.
    assert harness.attributes("hanako@example.jp")["totalSpent"] == 29.25
    refunded = harness.events("klaus@example.de")[-1]["properties"]
    assert (refunded["refundAmountCents"], refunded["presentmentCurrency"], refunded["presentmentTotalCents"]) == (
        1080,
        "EUR",
        10000,
    )


DELIVERIES = [
    ("orders/create", "orders_create.json"),
    ("orders/paid", "orders_paid.json"),
    ("refunds/create", "refunds_create.json"),
    ("orders/updated", "orders_updated_refund.json"),
    ("orders/cancelled", "orders_cancelled.json"),
    ("orders/fulfilled", "orders_fulfilled.json"),
    ("orders/updated", "orders_fulfilled.json"),
]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order_of_arrival=st.permutations(range(len(DELIVERIES))), repeated=st.sets(st.integers(0, 6), max_size=3))
def test_any_order_of_arrival_converges(
    make_harness: Any, tmp_path: Path, order_of_arrival: list[int], repeated: set[int]
) -> None:
    # Each example gets its own database: a Shopify retry (same delivery id) and a re-send (new id) included.
    folder = tmp_path / uuid.uuid4().hex
    harness = make_harness(
        database=str(folder / "gateway.db"),
        sources={SOURCE: {"type": "shopify", "secrets": ["shpss_test_app_secret_0123456789"]}},
    )
    for index in order_of_arrival:
        topic, fixture = DELIVERIES[index]
        deliver(harness, topic, raw(fixture), f"d-{index}")
        if index in repeated:
            deliver(harness, topic, raw(fixture), f"d-{index}")
            deliver(harness, topic, raw(fixture), f"d-{index}-again")
        harness.drain()
    harness.make_retries_due()
    harness.drain()
    assert figures(harness) == (1, 45.0, 45.0, 45.0)
    stored = order(harness, ORDER_A)
    assert (stored["status"], stored["totalCents"], stored["refundedCents"], stored["orderNumber"]) == (
        "cancelled",
        8850,
        8850,
        "#1001",
    )
    events = [
        (e["name"], e["properties"]["orderId"], e["properties"].get("refundAmountCents")) for e in harness.events(JANE)
    ]
    assert len(events) == len(set(events))
    assert {event for event in events if event[0] != "ecommerce.order_refunded"} == {
        ("ecommerce.order_placed", ORDER_A, None),
        ("ecommerce.order_cancelled", ORDER_A, None),
        ("ecommerce.order_placed", ORDER_B, None),
        ("ecommerce.order_fulfilled", ORDER_B, None),
    }
    # Refund events only ever grow: a late payload never announces less than what was already refunded.
    refunds = [event[2] for event in events if event[0] == "ecommerce.order_refunded"]
    assert refunds == sorted(refunds) and refunds[-1] == 8850
