"""Shopify feeds the lifecycle engine: products/create and products/update fill the catalog (and restock
variants), checkouts/create and checkouts/update start and update checkouts, and an order's checkout_token
closes that checkout. Genuinely signed deliveries of the documented payloads."""

import json
from typing import Any

from tests.adapters._shopify_deliveries import deliver, raw, shop_harness
from tests.conftest import Harness
from tests.gateway.engine.lifecycle._support import automations, named

PRODUCT = "7654321098765432101"
VANILLA, CHOCOLATE = "43210987654321001", "43210987654321002"
TOKEN = "c1f4e5d6a7b8c9d0e1f2a3b4c5d6e7f8"
BUYER = "jane.buyer@example.com"


def _send(harness: Harness, topic: str, body: bytes) -> dict[str, Any]:
    response = deliver(harness, topic, body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    assert answer.get("queued") is True, answer
    harness.drain()
    return harness.job(answer["jobId"])


def test_a_product_update_fills_the_catalog(make_harness: Any) -> None:
    harness = shop_harness(make_harness)
    assert _send(harness, "products/update", raw("products_update.json"))["status"] == "done"
    product = harness.get(f"/api/v1/products/{PRODUCT}").json()
    assert product == {
        "productId": PRODUCT,
        "title": "Protein Powder",
        "url": "https://gateway-demo.myshopify.com/products/protein-powder-1kg",
        "imageUrl": "https://cdn.shopify.com/s/files/1/0000/0001/products/protein.jpg?v=1714568400",
        "variants": [
            {"variantId": VANILLA, "title": "Vanilla", "inventoryQuantity": 12},
            {"variantId": CHOCOLATE, "title": "Chocolate", "inventoryQuantity": 0},
        ],
        "replenishment": None,
    }


def test_a_variant_restocked_on_shopify_tells_its_waiters(make_harness: Any) -> None:
    harness = shop_harness(make_harness)
    _send(harness, "products/create", raw("products_update.json"))
    request = {"productId": PRODUCT, "variantId": CHOCOLATE, "customer": {"email": BUYER}}
    assert harness.client.post("/api/v1/back-in-stock", json=request, headers=harness.headers).status_code == 202
    harness.drain()
    assert [a["status"] for a in automations(harness, BUYER)] == ["active"]
    restocked = json.loads(raw("products_update.json"))
    restocked["variants"][1]["inventory_quantity"] = 5
    _send(harness, "products/update", json.dumps(restocked).encode())
    assert named(harness, "ecommerce.back_in_stock", BUYER) == [
        {
            "productId": PRODUCT,
            "variantId": CHOCOLATE,
            "productTitle": "Protein Powder",
            "variantTitle": "Chocolate",
            "url": "https://gateway-demo.myshopify.com/products/protein-powder-1kg",
            "imageUrl": "https://cdn.shopify.com/s/files/1/0000/0001/products/protein.jpg?v=1714568400",
        }
    ]


def test_a_checkout_starts_and_its_order_closes_it(make_harness: Any) -> None:
    harness = shop_harness(make_harness)
    _send(harness, "checkouts/create", raw("checkouts_create.json"))
    [started] = named(harness, "ecommerce.checkout_started", BUYER)
    assert started == {
        "checkoutId": TOKEN,
        "checkoutUrl": "https://acme-nutrition.myshopify.com/78901234/checkouts/ac/"
        "c1f4e5d6a7b8c9d0e1f2a3b4c5d6e7f8/recover?key=5f1e2d3c4b5a",
        "items": [
            {
                "productId": PRODUCT,
                "title": "Protein Powder",
                "quantity": 2,
                "variantId": VANILLA,
                "sku": "PROT-1KG-VAN",
                "variantTitle": "Vanilla",
                "priceCents": 4425,
            }
        ],
        "totalCents": 8850,
        "currency": "USD",
    }
    assert harness.subscriber(BUYER)["firstName"] == "Jane"
    # The order that completed it (orders/create carries the same checkout_token) closes this checkout only.
    _send(harness, "orders/create", raw("orders_create.json"))
    [checkout] = [a for a in automations(harness, BUYER) if a["flow"] == "checkout"]
    assert (checkout["key"], checkout["status"], checkout["reason"]) == (TOKEN, "stopped", "superseded")
    assert named(harness, "ecommerce.checkout_abandoned", BUYER) == []


def test_a_completed_checkout_closes_and_an_older_update_is_ignored(make_harness: Any) -> None:
    harness = shop_harness(make_harness)
    _send(harness, "checkouts/create", raw("checkouts_create.json"))
    older = json.loads(raw("checkouts_create.json"))
    older["updated_at"] = "2026-06-10T11:41:00-04:00"
    older["total_price"] = "44.25"
    assert _send(harness, "checkouts/update", json.dumps(older).encode())["warnings"] == [
        f"checkout {TOKEN}: an older update than the one held, ignored"
    ]
    _send(harness, "checkouts/update", raw("checkouts_update_completed.json"))
    [checkout] = automations(harness, BUYER)
    assert (checkout["status"], checkout["reason"]) == ("stopped", "superseded")
    assert len(named(harness, "ecommerce.checkout_started", BUYER)) == 1


def test_a_checkout_without_an_email_is_acknowledged_with_a_warning(make_harness: Any) -> None:
    harness = shop_harness(make_harness)
    job = _send(harness, "checkouts/create", raw("checkouts_create_no_email.json"))
    assert job["status"] == "done"
    assert job["warnings"] == ["checkout d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4 has no usable email yet: nothing started"]
    with harness.db() as conn:
        assert conn.execute("SELECT count(*) FROM automations").fetchone()[0] == 0


def test_an_inventory_level_update_is_acknowledged_and_changes_nothing(make_harness: Any) -> None:
    """One location's count of an inventory item names no product or variant: answered `ignored`, so Shopify
    does not retry, and the catalog is left as products/update stated it."""
    harness = shop_harness(make_harness)
    _send(harness, "products/update", raw("products_update.json"))
    response = deliver(harness, "inventory_levels/update", raw("inventory_levels_update.json"))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["success"] is True and answer["ignored"] is True and "queued" not in answer
    variants = harness.get(f"/api/v1/products/{PRODUCT}").json()["variants"]
    assert [variant["inventoryQuantity"] for variant in variants] == [12, 0]
