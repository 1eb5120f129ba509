"""Historical data never emails anyone: orders older than `lifecycle.historical_after` when processed, and
everything `backfill` queues, are recorded with `historical: true` and start and stop no automation."""

import copy
import json
import logging
import sqlite3
from decimal import Decimal
from typing import Any

from gateway import cli
from tests.adapters._woocommerce_deliveries import SECRET, SOURCE, fixture
from tests.conftest import Harness, order
from tests.gateway.commands.test_backfill import KEY, KEY_SECRET, Store, store  # noqa: F401 (the fake store fixture)
from tests.gateway.engine.lifecycle._support import PROTEIN, automations, iso, named, post_products, recent

RULE = {"days": 30, "leadDays": 5}


def test_an_order_older_than_historical_after_starts_nothing(make_harness: Any) -> None:
    harness: Harness = make_harness(lifecycle={"historical_after": "30d"})
    post_products(harness, {"productId": PROTEIN, "replenishment": RULE})
    assert harness.post_order(order("recent", orderedAt=iso(recent(days_ago=2)))).status_code == 202
    assert harness.post_order(order("old", orderedAt=iso(recent(days_ago=45)))).status_code == 202
    assert harness.post_order(order("old", orderedAt=iso(recent(days_ago=45)), status="cancelled")).status_code == 202
    harness.drain()
    flags = {
        (e["name"], e["properties"]["orderId"]): e["properties"].get("historical")
        for e in harness.events("buyer@example.com")
    }
    assert flags == {
        ("ecommerce.order_placed", "recent"): None,
        ("ecommerce.order_placed", "old"): True,
        ("ecommerce.order_cancelled", "old"): True,
    }
    assert [(a["orderId"], a["status"]) for a in automations(harness)] == [("recent", "active")]


def _orders(count: int, customers: int) -> list[dict[str, Any]]:
    """`count` REST v3 orders of the protein powder (product 93) over `customers` customers; most of them old,
    the last tenth placed this week."""
    orders = []
    for number in range(count):
        payload = copy.deepcopy(fixture("guest-processing"))
        payload["id"] = 10_000 + number
        payload["number"] = str(10_000 + number)
        payload["billing"]["email"] = f"history-{number % customers}@example.com"
        payload["total"] = f"{10 + number % 90}.50"
        placed = recent(days_ago=2) if number >= count * 0.9 else recent(days_ago=400 + number)
        payload["date_created_gmt"] = payload["date_modified_gmt"] = placed.strftime("%Y-%m-%dT%H:%M:%S")
        orders.append(payload)
    return orders


def test_a_backfill_of_500_orders_creates_no_automation_and_revenue_is_exact(
    make_harness: Any,
    store: Store,  # noqa: F811
) -> None:
    api = {"url": store.url, "consumer_key": KEY, "consumer_secret": KEY_SECRET}
    harness: Harness = make_harness(
        sources={SOURCE: {"type": "woocommerce", "secrets": [SECRET], "api": api}},
        lifecycle={"historical_after": "30d", "replenishment": {"93": RULE}},
    )
    # A customer's live reminder, which no historical order may stop.
    body = order("live", orderedAt=iso(recent(days_ago=1)), customer={"email": "history-0@example.com"})
    body["items"] = [{"productId": "93", "title": "Protein Powder", "quantity": 1}]
    assert harness.post_order(body).status_code == 202
    harness.drain()
    orders = _orders(500, customers=50)
    store.pages = [orders[start : start + 100] for start in range(0, 500, 100)]

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        config = harness.config.database.parent.parent / "config.yaml"
        assert cli.main(["--config", str(config), "backfill", SOURCE, "--since", "2020-01-01"]) == 0
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)

    with sqlite3.connect(harness.config.database) as conn:
        assert conn.execute(
            "SELECT count(*) FROM jobs WHERE job_id LIKE 'commerce-backfill-%' AND status = 'done'"
        ).fetchone() == (500,)
        assert conn.execute("SELECT count(*), sum(status = 'active') FROM automations").fetchone() == (1, 1)
        properties = [
            json.loads(p) for (p,) in conn.execute("SELECT properties FROM events WHERE source = ?", (SOURCE,))
        ]
    assert len(properties) == 500 and all(p["historical"] is True for p in properties)
    assert named(harness, "ecommerce.automation_stopped", "history-0@example.com") == []
    for customer in range(50):
        mine = [o for o in orders if o["billing"]["email"] == f"history-{customer}@example.com"]
        spent = sum(Decimal(o["total"]) for o in mine) + (Decimal("88.50") if customer == 0 else 0)
        attributes = harness.attributes(f"history-{customer}@example.com")
        assert (attributes["ordersCount"], Decimal(str(attributes["totalSpent"]))) == (
            len(mine) + (customer == 0),
            spent,
        )
