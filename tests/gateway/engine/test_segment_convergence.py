"""Segments under reordering: any shuffle and duplication of a subscriber's order events ends with the same
membership as the in-order sequence, and each transition is recorded once (entered and exited alternate)."""

import tempfile
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.engine import Engine
from normalizer import PushOrder
from normalizer.order_event import OrderEvent
from store import segments, subscribers
from store.db import transaction
from tests._schema import migrated_database
from tests.gateway.engine.test_convergence import EMAIL, order_histories

SEGMENTS: dict[str, Any] = {
    "big-spender": {"attribute": "totalSpent", "gte": 500},
    "p0-twice": {"purchased": {"productId": "p0", "atLeast": 2}},
    "p1-buyer": {"purchased": {"productId": "p1"}},
    "three-orders": {"orders": {"atLeast": 3}},
    "june": {"orders": {"withinDays": 10_000, "atLeast": 2}},
    "either": {"any": [{"segment": "p1-buyer"}, {"not": {"segment": "big-spender"}}]},
    "placed-twice": {"event": {"name": "ecommerce.order_placed", "atLeast": 2}},
}


def run(events: list[dict[str, Any]], chunks: Sequence[int] = ()) -> tuple[list[str], dict[str, int]]:
    """Each event applied in a transaction of its own, or with `chunks` (sizes) several in one, as the worker's
    chunks apply them: the segments evaluated once per chunk."""
    with tempfile.TemporaryDirectory() as folder:
        conn = migrated_database(Path(folder) / "gateway.db")
        engine = Engine("USD", {"EUR": Decimal("1.08")}, SEGMENTS)
        arrival = 0
        for size in _sizes(len(events), chunks):
            with transaction(conn):
                with engine.segments.gathering() as gathered:
                    for event in events[arrival : arrival + size]:
                        arrival += 1
                        engine.apply(conn, OrderEvent("api", "api", PushOrder.model_validate(event), arrival), arrival)
                engine.segments.settle(conn, gathered)
        subscriber_id = subscribers.find_id(conn, EMAIL)
        assert subscriber_id is not None
        recorded = conn.execute(
            "SELECT name, json_extract(properties, '$.segment') FROM events WHERE name LIKE 'segment.%' ORDER BY id"
        ).fetchall()
        (stored,) = conn.execute("SELECT segment_changes FROM subscribers WHERE id = ?", (subscriber_id,)).fetchone()
        listed = sorted(row[0] for row in conn.execute("SELECT segment FROM segment_members"))
        conn.close()
    changes = segments.parse_changes(stored)
    transitions: dict[str, int] = {}
    for name, segment in recorded:
        # Each transition once: a segment's events alternate, entered first.
        expected = "segment.entered" if transitions.get(segment, 0) % 2 == 0 else "segment.exited"
        assert name == expected, (segment, recorded)
        transitions[segment] = transitions.get(segment, 0) + 1
    assert transitions == changes
    members = sorted(name for name, count in changes.items() if count % 2)
    assert listed == members  # the listing's table agrees with the subscriber's own counts
    return members, transitions


def _sizes(total: int, chunks: Sequence[int]) -> Iterator[int]:
    done = 0
    for size in chunks:
        if done >= total:
            return
        yield size
        done += size
    while done < total:
        yield 1
        done += 1


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=order_histories(), data=st.data())
def test_any_shuffle_and_duplication_ends_with_the_same_membership(
    history: list[dict[str, Any]], data: st.DataObject
) -> None:
    duplicates = data.draw(st.lists(st.sampled_from(history), max_size=len(history)))
    delivered = data.draw(st.permutations(history + duplicates))
    assert run(delivered)[0] == run(history)[0]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=order_histories(), data=st.data())
def test_chunks_evaluated_once_end_with_the_same_membership(history: list[dict[str, Any]], data: st.DataObject) -> None:
    duplicates = data.draw(st.lists(st.sampled_from(history), max_size=len(history)))
    delivered = data.draw(st.permutations(history + duplicates))
    chunks = data.draw(st.lists(st.integers(min_value=1, max_value=6), max_size=len(delivered)))
    assert run(delivered, chunks)[0] == run(history)[0]


def test_the_in_order_membership_is_the_expected_one() -> None:
    base = {"currency": "USD", "customer": {"email": EMAIL}, "orderedAt": "2026-06-01T12:00:00Z"}
    history = [
        {**base, "orderId": "a", "totalCents": 40000, "items": [{"productId": "p0", "title": "T", "quantity": 1}]},
        {**base, "orderId": "b", "totalCents": 20000, "items": [{"productId": "p0", "title": "T", "quantity": 1}]},
        {**base, "orderId": "b", "totalCents": 20000, "status": "refunded"},
    ]
    members, transitions = run(history)
    # After b: 600 spent, p0 twice, two orders placed; b's full refund takes spend and p0 back down.
    assert members == ["either", "placed-twice"]
    assert transitions == {"big-spender": 2, "either": 3, "june": 2, "p0-twice": 2, "placed-twice": 1}
