"""Revenue attributes and event dedup (docs/api.md) as an invariant: any shuffle and duplication of a
customer's order events gives the same subscriber attributes and the same set of events as the in-order
sequence."""

import json
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.engine import Engine
from normalizer import PushOrder
from normalizer.order_event import OrderEvent
from store import subscribers
from store.db import transaction
from tests._schema import migrated_database

EMAIL = "prop@example.com"


@st.composite
def order_histories(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Events of 1-4 orders in their natural order: placed, maybe fulfilled, growing refunds, maybe cancelled."""
    events: list[dict[str, Any]] = []
    for number in range(draw(st.integers(1, 4))):
        total = draw(st.integers(0, 100_000))
        currency = draw(st.sampled_from(["USD", "USD", "EUR", "GBP"]))
        base = {
            "orderId": f"o{number}",
            "totalCents": total,
            "currency": currency,
            "orderedAt": f"2026-06-0{number + 1}T12:00:00Z",
            "customer": {"email": EMAIL},
            "items": [{"productId": f"p{number}", "title": "Thing", "quantity": draw(st.integers(1, 3))}],
        }
        events.append({**base, "status": "placed"})
        if draw(st.booleans()):
            events.append({**base, "status": "fulfilled"})
        refunded = 0
        for _ in range(draw(st.integers(0, 2))):
            if refunded >= total:
                break
            refunded = draw(st.integers(refunded + 1, total))
            events.append({**base, "status": "refunded", "refundAmountCents": refunded})
        if draw(st.booleans()):
            events.append({**base, "status": "cancelled"})
    return events


def run(events: list[dict[str, Any]]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    with tempfile.TemporaryDirectory() as folder:
        conn = migrated_database(Path(folder) / "gateway.db")
        engine = Engine("USD", {"EUR": Decimal("1.08")})
        for arrival, event in enumerate(events, start=1):
            with transaction(conn):
                engine.apply(conn, OrderEvent("api", "api", PushOrder.model_validate(event), arrival), arrival)
        row = subscribers.get(conn, EMAIL)
        assert row is not None
        attributes = engine.revenue_attributes(row["ordersCount"], row["totalSpentCents"])
        stored = conn.execute("SELECT name, properties FROM events").fetchall()
        conn.close()
    return attributes, sorted((name, json.dumps(json.loads(props), sort_keys=True)) for name, props in stored)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=order_histories(), data=st.data())
def test_any_shuffle_and_duplication_converges(history: list[dict[str, Any]], data: st.DataObject) -> None:
    duplicates = data.draw(st.lists(st.sampled_from(history), max_size=len(history)))
    delivered = data.draw(st.permutations(history + duplicates))
    assert run(delivered) == run(history)


def test_in_order_figures_are_the_expected_ones() -> None:
    history = [
        {"orderId": "a", "totalCents": 10000, "currency": "USD", "customer": {"email": EMAIL}, "status": "placed"},
        {
            "orderId": "a",
            "totalCents": 10000,
            "currency": "USD",
            "customer": {"email": EMAIL},
            "status": "refunded",
            "refundAmountCents": 2500,
        },
        {"orderId": "b", "totalCents": 5000, "currency": "EUR", "customer": {"email": EMAIL}, "status": "placed"},
        {"orderId": "c", "totalCents": 7000, "currency": "USD", "customer": {"email": EMAIL}, "status": "placed"},
        {"orderId": "c", "totalCents": 7000, "currency": "USD", "customer": {"email": EMAIL}, "status": "cancelled"},
    ]
    attributes, events = run(history)
    assert attributes == {"ltv": 129.0, "totalSpent": 129.0, "ordersCount": 2, "aov": 64.5}
    assert [name for name, _ in events] == sorted(
        ["ecommerce.order_placed"] * 3 + ["ecommerce.order_refunded", "ecommerce.order_cancelled"]
    )
