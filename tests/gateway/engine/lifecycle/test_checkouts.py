"""Checkouts: the first sighting records checkout_started and starts the abandonment timer; later posts update
it and restart the timer without a new event; the timer ending with the checkout open records
checkout_abandoned with the latest data; a placed order closes open checkouts."""

from datetime import timedelta
from typing import Any

from normalizer.timefmt import parse_instant, to_micros
from tests.conftest import Harness, order
from tests.gateway.engine.lifecycle._support import automations, named, recent

ITEM = {"productId": "SKU-PROTEIN-1KG", "title": "Protein Powder", "quantity": 1, "priceCents": 4425}


def _checkout(harness: Harness, checkout_id: str = "chk-1", **fields: Any) -> dict[str, Any]:
    body = {
        "checkoutId": checkout_id,
        "totalCents": 4425,
        "currency": "usd",
        "checkoutUrl": "https://shop.example.com/checkouts/chk-1",
        "customer": {"email": "Buyer@Example.com", "firstName": "Jane"},
        "items": [ITEM],
        "properties": {"cartToken": "c-77"},
        **fields,
    }
    response = harness.client.post("/api/v1/checkouts", json=body, headers=harness.headers)
    assert response.status_code == 202, response.text
    answer: dict[str, Any] = response.json()
    assert answer["jobId"].startswith("commerce-checkout-") and answer["checkoutId"] == checkout_id
    harness.drain()
    return answer


def _due(harness: Harness) -> int:
    """The checkout's due time as the API shows it (to the millisecond: the stored µs may be up to 999 more)."""
    [checkout] = [a for a in automations(harness) if a["flow"] == "checkout"]
    return to_micros(parse_instant(checkout["dueAt"]))


def test_abandonment_fires_with_the_latest_data_after_the_last_update(harness: Harness) -> None:
    _checkout(harness)
    started = named(harness, "ecommerce.checkout_started")
    assert started == [
        {
            "cartToken": "c-77",
            "checkoutId": "chk-1",
            "checkoutUrl": "https://shop.example.com/checkouts/chk-1",
            "items": [ITEM],
            "totalCents": 4425,
            "currency": "USD",
        }
    ]
    first_due = _due(harness)
    assert harness.worker.fire_timers(first_due - 1) == 0  # not yet
    _checkout(harness, totalCents=8850, items=[{**ITEM, "quantity": 2}])
    assert len(named(harness, "ecommerce.checkout_started")) == 1
    second_due = _due(harness)
    assert second_due > first_due
    assert harness.worker.fire_timers(second_due - 1) == 0
    assert harness.worker.fire_timers(second_due + 999) == 1
    [abandoned] = named(harness, "ecommerce.checkout_abandoned")
    assert abandoned["totalCents"] == 8850 and abandoned["items"][0]["quantity"] == 2
    # Abandoned once: a later post changes nothing.
    _checkout(harness)
    assert harness.worker.fire_timers(second_due + 10 * 3_600_000_000) == 0
    assert len(named(harness, "ecommerce.checkout_abandoned")) == 1


def test_the_abandonment_delay_is_configured(make_harness: Any) -> None:
    harness = make_harness(lifecycle={"historical_after": "36500d", "checkout_abandoned_after": "30m"})
    _checkout(harness)
    [checkout] = automations(harness)
    delay = parse_instant(checkout["dueAt"]) - parse_instant(checkout["startedAt"])
    assert timedelta(minutes=29) < delay <= timedelta(minutes=30)


def test_a_placed_order_closes_every_open_checkout(harness: Harness) -> None:
    _checkout(harness, "chk-1")
    _checkout(harness, "chk-2")
    assert harness.post_order(order(orderedAt=recent().isoformat())).status_code == 202
    harness.drain()
    assert {(a["key"], a["status"], a["reason"]) for a in automations(harness) if a["flow"] == "checkout"} == {
        ("chk-1", "stopped", "superseded"),
        ("chk-2", "stopped", "superseded"),
    }
    assert harness.worker.fire_timers(_far_future()) == 0
    assert named(harness, "ecommerce.checkout_abandoned") == []


def _far_future() -> int:
    return to_micros(recent(days_ago=-30))
