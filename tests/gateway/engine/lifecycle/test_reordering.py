"""Stops are exact under reordering: any shuffle and duplication of one subscriber's orders, cancels and refunds
ends with the same active reminders, due at the same times, as the in-order sequence."""

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config import LifecycleConfig
from gateway.engine import Engine
from gateway.engine.lifecycle import Lifecycle
from normalizer import PushOrder
from normalizer.order_event import OrderEvent
from normalizer.timefmt import to_micros
from store import automation_counts, automations, catalog, subscribers, timers
from store.automations import REPLENISHMENT, TIMED
from store.db import transaction
from tests._schema import migrated_database

EMAIL = "prop@example.com"
NOW = to_micros(datetime(2026, 6, 1, tzinfo=UTC))
FOREVER = 2**62  # µs: a time by which every timer is due
# P's rule is the catalog's (read through the worker's in-memory rules), Q's the config's.
CATALOG_RULE = {"days": 30, "leadDays": 5}
RULES = {"Q": {"days": 7, "matchBy": "variant"}}


@st.composite
def histories(draw: st.DrawFn) -> list[dict[str, Any]]:
    """1-5 orders of products P and Q (some on the same day: ties are ordered by orderId), each placed, maybe
    partly refunded, maybe refunded in full, maybe cancelled; in the order they happened."""
    events: list[dict[str, Any]] = []
    for number in range(draw(st.integers(1, 5))):
        items = []
        if draw(st.booleans()):
            items.append({"productId": "P", "title": "P", "quantity": draw(st.integers(1, 3))})
        if draw(st.booleans()):
            variant = draw(st.sampled_from(["Q-small", "Q-large"]))
            items.append({"productId": "Q", "variantId": variant, "title": "Q", "quantity": draw(st.integers(1, 2))})
        base = {
            "orderId": f"o{number}",
            "totalCents": 1000,
            "currency": "USD",
            "orderedAt": f"2026-05-{draw(st.integers(10, 14))}T12:00:00Z",
            "customer": {"email": EMAIL},
            "items": items,
        }
        events.append({**base, "status": "placed"})
        if draw(st.booleans()):
            events.append({**base, "status": "refunded", "refundAmountCents": 400})
        if draw(st.integers(0, 3)) == 0:
            events.append({**base, "status": "refunded", "refundAmountCents": 1000})
        if draw(st.integers(0, 3)) == 0:
            events.append({**base, "status": "cancelled"})
    return events


def run(events: list[dict[str, Any]]) -> set[tuple[str, str, int | None]]:
    """The active reminders after `events`, as (key, orderId, dueAt)."""
    with tempfile.TemporaryDirectory() as folder:
        conn = migrated_database(Path(folder) / "gateway.db")
        engine = Engine("USD", {})
        settings = LifecycleConfig.model_validate({"historical_after": "36500d", "replenishment": RULES})
        Lifecycle.register(engine, settings)
        with transaction(conn):
            catalog.put(conn, {"productId": "P", "title": "P", "replenishment": CATALOG_RULE}, "api", NOW)
        for arrival, event in enumerate(events, start=1):
            with transaction(conn):
                order = PushOrder.model_validate(event)
                engine.apply(conn, OrderEvent("api", "api", order, arrival), NOW + arrival)
        subscriber_id = subscribers.find_id(conn, EMAIL)
        active = [] if subscriber_id is None else automations.active(conn, subscriber_id, REPLENISHMENT)
        # What the worker will fire, whenever it runs: the reminders set to fire, and any other timer.
        to_fire = [due for flow in TIMED for due in automations.due(conn, flow, FOREVER, 1000)]
        other_timers = timers.due(conn, FOREVER, 1000)
        kept = automation_counts.active(conn)
        conn.close()
    assert kept == ({"replenishment": len(active)} if active else {})  # the metrics gauge's count
    # Every active reminder is set to fire once, at its due time, and nothing else is left to fire.
    assert sorted(to_fire) == sorted((row.id, row.due_at) for row in active)
    assert other_timers == []
    return {(row.key, row.order_id, row.due_at) for row in active}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories(), data=st.data())
def test_any_shuffle_and_duplication_ends_with_the_same_reminders(
    history: list[dict[str, Any]], data: st.DataObject
) -> None:
    duplicates = data.draw(st.lists(st.sampled_from(history), max_size=len(history)))
    delivered = data.draw(st.permutations(history + duplicates))
    assert run(delivered) == run(history)


def test_the_in_order_sequence_is_what_a_merchant_expects() -> None:
    def placed(order_id: str, day: int, quantity: int = 1) -> dict[str, Any]:
        return {
            "orderId": order_id,
            "totalCents": 1000,
            "currency": "USD",
            "orderedAt": f"2026-05-{day}T12:00:00Z",
            "customer": {"email": EMAIL},
            "items": [{"productId": "P", "title": "P", "quantity": quantity}],
            "status": "placed",
        }

    day = 86_400 * 1_000_000
    may_12 = to_micros(datetime(2026, 5, 12, 12, tzinfo=UTC))
    # The newer order's reminder stands; cancelling it leaves none (the older one was superseded for good).
    assert run([placed("a", 10), placed("b", 12, 2)]) == {("P", "b", may_12 + 55 * day)}
    assert run([placed("a", 10), placed("b", 12), {**placed("b", 12), "status": "cancelled"}]) == set()
