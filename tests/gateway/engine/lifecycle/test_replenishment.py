"""Replenishment reminders: started by a placed order's items with a rule, due at orderedAt + days x quantity -
leadDays, superseded by a newer order of the key, stopped by their own order's cancel or full refund."""

from datetime import datetime
from typing import Any

from normalizer.timefmt import parse_instant, to_micros
from tests.conftest import Harness, order
from tests.gateway.engine.lifecycle._support import (
    DAY,
    PROTEIN,
    active,
    automations,
    iso,
    named,
    post_products,
    recent,
)

RULE = {"days": 30, "leadDays": 5}


def _protein(harness: Harness, **rule: Any) -> None:
    post_products(harness, {"productId": PROTEIN, "title": "Protein Powder", "replenishment": rule or RULE})


def _place(harness: Harness, order_id: str, ordered_at: datetime, **fields: Any) -> None:
    assert harness.post_order(order(order_id, orderedAt=iso(ordered_at), **fields)).status_code == 202
    harness.drain()


def test_the_worked_example_is_due_55_days_after_the_order(harness: Harness) -> None:
    """The seed's protein powder: 30 days, leadDays 5, quantity 2 -> due 2 x 30 - 5 = 55 days after orderedAt."""
    _protein(harness)
    placed = recent()
    _place(harness, "order-1001", placed)
    [reminder] = automations(harness)
    assert reminder == {
        "flow": "replenishment",
        "key": PROTEIN,
        "status": "active",
        "startedAt": reminder["startedAt"],
        "dueAt": iso(placed + 55 * DAY),
        "firedAt": None,
        "stoppedAt": None,
        "reason": None,
        "orderId": "order-1001",
    }
    # Nothing before its time; at its time, exactly one event with the reminder's facts.
    due = to_micros(placed + 55 * DAY)
    assert harness.worker.fire_timers(due - 1) == 0
    assert harness.worker.fire_timers(due) == 1
    assert harness.worker.fire_timers(due + 1) == 0
    assert named(harness, "ecommerce.replenishment_due") == [
        {
            "productId": PROTEIN,
            "variantId": "SKU-PROTEIN-1KG-VANILLA",
            "title": "Protein Powder",
            "variantTitle": "Vanilla",
            "quantity": 2,
            "orderId": "order-1001",
            "orderedAt": iso(placed),
            "dueAt": iso(placed + 55 * DAY),
        }
    ]
    [fired] = automations(harness)
    assert fired["status"] == "fired" and fired["firedAt"] is not None


def test_a_due_time_already_past_fires_at_once(harness: Harness) -> None:
    _protein(harness)
    _place(harness, "order-1001", recent(days_ago=60))  # due 55 days after: 5 days ago
    [reminder] = automations(harness)
    assert reminder["status"] == "fired"
    assert len(named(harness, "ecommerce.replenishment_due")) == 1


def test_a_newer_order_supersedes_and_a_duplicate_starts_nothing(harness: Harness) -> None:
    _protein(harness)
    first, second = recent(days_ago=3), recent(days_ago=1)
    _place(harness, "order-1", first)
    _place(harness, "order-2", second)
    _place(harness, "order-2", second)  # a platform retry
    [current] = active(harness)
    assert current["orderId"] == "order-2" and current["dueAt"] == iso(second + 55 * DAY)
    reasons = [(a["orderId"], a["status"], a["reason"]) for a in automations(harness)]
    assert reasons == [("order-2", "active", None), ("order-1", "stopped", "superseded")]
    assert named(harness, "ecommerce.automation_stopped") == [
        {"flow": "replenishment", "key": PROTEIN, "reason": "superseded", "orderId": "order-2"}
    ]


def test_an_older_order_arriving_late_supersedes_nothing(harness: Harness) -> None:
    _protein(harness)
    _place(harness, "order-2", recent(days_ago=1))
    _place(harness, "order-1", recent(days_ago=3))
    [current] = active(harness)
    assert current["orderId"] == "order-2"
    assert named(harness, "ecommerce.automation_stopped") == []


def test_cancel_and_full_refund_stop_only_their_own_orders_reminder(harness: Harness) -> None:
    _protein(harness)
    _place(harness, "order-1", recent(days_ago=3))
    _place(harness, "order-1", recent(days_ago=3), status="refunded", refundAmountCents=100)  # partial
    assert [a["orderId"] for a in active(harness)] == ["order-1"]
    _place(harness, "order-1", recent(days_ago=3), status="cancelled")
    assert active(harness) == []
    assert named(harness, "ecommerce.automation_stopped") == [
        {"flow": "replenishment", "key": PROTEIN, "reason": "order_cancelled", "orderId": "order-1"}
    ]
    _place(harness, "order-2", recent(days_ago=1))
    _place(harness, "order-2", recent(days_ago=1), status="refunded")  # no amount: refunded in full
    assert active(harness) == []
    assert named(harness, "ecommerce.automation_stopped")[-1]["reason"] == "order_refunded"


def test_match_by_variant_keeps_one_reminder_per_variant(harness: Harness) -> None:
    _protein(harness, days=30, matchBy="variant")
    placed = recent()
    vanilla = order()["items"][0]
    chocolate = {**vanilla, "variantId": "SKU-PROTEIN-1KG-CHOC", "variantTitle": "Chocolate", "quantity": 1}
    _place(harness, "order-1", placed, items=[vanilla, chocolate])
    due = {a["key"]: a["dueAt"] for a in active(harness)}
    assert due == {"SKU-PROTEIN-1KG-VANILLA": iso(placed + 60 * DAY), "SKU-PROTEIN-1KG-CHOC": iso(placed + 30 * DAY)}


def test_config_rules_win_over_the_catalog(make_harness: Any) -> None:
    harness = make_harness(lifecycle={"historical_after": "36500d", "replenishment": {PROTEIN: {"days": 10}}})
    _protein(harness)  # the API says 30 days, lead 5
    placed = recent()
    _place(harness, "order-1", placed)
    assert [a["dueAt"] for a in active(harness)] == [iso(placed + 20 * DAY)]


def test_products_without_a_rule_start_nothing(harness: Harness) -> None:
    _place(harness, "order-1", recent())
    post_products(harness, {"productId": PROTEIN, "replenishment": None})
    _place(harness, "order-2", recent())
    assert automations(harness) == []


def test_the_api_shows_the_newest_first(harness: Harness) -> None:
    _protein(harness)
    _place(harness, "order-1", recent(days_ago=2))
    _place(harness, "order-2", recent(days_ago=1))
    started = [parse_instant(a["startedAt"]) for a in automations(harness)]
    assert started == sorted(started, reverse=True)
