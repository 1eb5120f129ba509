"""Back in stock: a waiter registered before a restock is told once; a second restock tells no one already told;
a request for what is in stock fires at once; thousands of waiters are told in bounded batches."""

import time
from typing import Any

from gateway.engine import back_in_stock, catalog
from gateway.engine.timers import Timers
from normalizer import Customer
from normalizer.checkout import BackInStockRequest
from normalizer.timefmt import now_us
from store import timers
from store.db import transaction
from tests.conftest import Harness, order
from tests.gateway.engine.lifecycle._support import PROTEIN, automations, named, post_products, recent

VANILLA = "SKU-PROTEIN-1KG-VANILLA"
OUT = {
    "productId": PROTEIN,
    "title": "Protein Powder",
    "url": "https://shop.example.com/protein",
    "imageUrl": "https://shop.example.com/protein.jpg",
    "variants": [
        {"variantId": VANILLA, "title": "Vanilla", "inventoryQuantity": 0},
        {"variantId": "SKU-PROTEIN-1KG-CHOC", "title": "Chocolate", "inStock": True},
    ],
}


def _request(harness: Harness, email: str = "buyer@example.com", **fields: Any) -> Any:
    body = {"productId": PROTEIN, "variantId": VANILLA, "customer": {"email": email}, **fields}
    response = harness.client.post("/api/v1/back-in-stock", json=body, headers=harness.headers)
    assert response.status_code == 202, response.text
    harness.drain()
    return response.json()


def _stock(harness: Harness, quantity: int) -> dict[str, Any]:
    return post_products(
        harness, {"productId": PROTEIN, "variants": [{"variantId": VANILLA, "inventoryQuantity": quantity}]}
    )


def test_a_waiter_is_told_once_per_restock(harness: Harness) -> None:
    post_products(harness, OUT)
    answer = _request(harness, productTitle="Protein")
    assert answer["jobId"].startswith("commerce-bis-") and answer["queued"] is True
    assert harness.job(answer["jobId"])["status"] == "done"
    assert named(harness, "ecommerce.back_in_stock_requested") == [
        {"productId": PROTEIN, "variantId": VANILLA, "productTitle": "Protein", "variantTitle": None}
    ]
    [wait] = automations(harness)
    assert (wait["flow"], wait["key"], wait["status"]) == ("back_in_stock", VANILLA, "active")

    assert _stock(harness, 12) == {"success": True, "upserted": 1, "backInStockEventsTriggered": 1}
    harness.drain()
    told = {
        "productId": PROTEIN,
        "variantId": VANILLA,
        "productTitle": "Protein Powder",
        "variantTitle": "Vanilla",
        "url": "https://shop.example.com/protein",
        "imageUrl": "https://shop.example.com/protein.jpg",
    }
    assert named(harness, "ecommerce.back_in_stock") == [told]
    assert automations(harness)[0]["status"] == "fired"

    # Sold out and restocked again: no one who was told is told again.
    assert _stock(harness, 0)["backInStockEventsTriggered"] == 0
    assert _stock(harness, 3)["backInStockEventsTriggered"] == 0
    harness.drain()
    assert len(named(harness, "ecommerce.back_in_stock")) == 1


def test_a_request_for_what_is_in_stock_fires_at_once_and_a_repeat_starts_nothing(harness: Harness) -> None:
    post_products(harness, OUT)
    _request(harness)
    _request(harness)  # still waiting: nothing new
    assert [a["status"] for a in automations(harness)] == ["active"]
    assert len(named(harness, "ecommerce.back_in_stock_requested")) == 2
    _request(harness, email="other@example.com", variantId="SKU-PROTEIN-1KG-CHOC")
    assert [a["status"] for a in automations(harness, "other@example.com")] == ["fired"]
    assert named(harness, "ecommerce.back_in_stock", "other@example.com")[0]["variantTitle"] == "Chocolate"


def test_a_product_wait_and_an_unknown_product(harness: Harness) -> None:
    """A wait on a product (no variant) ends when any variant comes in stock; a product the catalog does not know
    yet is out of stock until it arrives."""
    _request(harness, variantId=None, productId="NEW-1")
    post_products(harness, {"productId": "NEW-1", "variants": [{"variantId": "NEW-1-A", "inStock": False}]})
    harness.drain()
    assert named(harness, "ecommerce.back_in_stock") == []
    answer = post_products(harness, {"productId": "NEW-1", "variants": [{"variantId": "NEW-1-A", "inStock": True}]})
    assert answer["backInStockEventsTriggered"] == 1
    harness.drain()
    assert [e["productId"] for e in named(harness, "ecommerce.back_in_stock")] == ["NEW-1"]


def test_buying_the_product_ends_the_wait(harness: Harness) -> None:
    post_products(harness, OUT)
    _request(harness)
    assert harness.post_order(order(orderedAt=recent().isoformat())).status_code == 202
    harness.drain()
    [wait] = [a for a in automations(harness) if a["flow"] == "back_in_stock"]
    assert (wait["status"], wait["reason"]) == ("stopped", "superseded")
    assert named(harness, "ecommerce.automation_stopped") == [
        {"flow": "back_in_stock", "key": VANILLA, "reason": "superseded", "orderId": "order-1001"}
    ]


def test_thousands_of_waiters_are_told_in_bounded_batches(harness: Harness) -> None:
    post_products(harness, OUT)
    waiters = 1000
    with transaction(harness.worker.conn) as conn:
        for number in range(waiters):
            customer = Customer(email=f"w{number}@example.com")
            subscriber_id = harness.worker.engine.upsert_subscriber(conn, customer, now_us(), [])
            wanted = BackInStockRequest(productId=PROTEIN, variantId=VANILLA, customer=customer)
            back_in_stock.request(conn, subscriber_id, wanted, f"job-{number}", now_us())
    assert _stock(harness, 5)["backInStockEventsTriggered"] == waiters
    # One timer firing tells one batch and sets itself again for the rest, so a firing transaction that is out
    # of time stops after a single batch.
    engine_timers: Timers = harness.worker.engine.timers
    with transaction(harness.worker.conn) as conn:
        fired, more = engine_timers.fire_due(conn, now_us(), time.monotonic(), harness.config.worker.retry_at)
        told = conn.execute("SELECT count(*) FROM events WHERE name = 'ecommerce.back_in_stock'").fetchone()[0]
        assert (fired, more, told) == (1, True, catalog.RESTOCK_BATCH)
        assert timers.next_due(conn) is not None
    harness.drain()
    with harness.db() as conn:
        told_each = conn.execute(
            "SELECT count(*), count(DISTINCT subscriber_id) FROM events WHERE name = 'ecommerce.back_in_stock'"
        ).fetchone()
        assert told_each == (waiters, waiters)
        assert conn.execute("SELECT count(*) FROM timers").fetchone()[0] == 0
