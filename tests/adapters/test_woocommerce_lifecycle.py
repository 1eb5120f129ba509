"""WooCommerce feeds the lifecycle catalog: product.created and product.updated (REST v3 products), a
variation's own delivery updating that variant of its parent; restocks tell the waiters."""

from typing import Any

from tests.adapters._woocommerce_deliveries import deliver, fixture, woo_source
from tests.conftest import Harness
from tests.gateway.engine.lifecycle._support import automations, named

BUYER = "buyer@example.com"


def _send(harness: Harness, name: str, topic: str = "product.updated", **changes: Any) -> None:
    response = deliver(harness, {**fixture(name), **changes}, topic)
    assert response.status_code == 200 and response.json().get("queued") is True, response.text
    harness.drain()
    assert harness.job(response.json()["jobId"])["status"] == "done"


def _wait(harness: Harness, product_id: str, variant_id: str | None = None) -> None:
    body = {"productId": product_id, "variantId": variant_id, "customer": {"email": BUYER}}
    assert harness.client.post("/api/v1/back-in-stock", json=body, headers=harness.headers).status_code == 202
    harness.drain()


def test_a_simple_product_back_in_stock(make_harness: Any) -> None:
    harness: Harness = make_harness(sources=woo_source())
    _send(harness, "product-simple-outofstock", "product.created")
    assert harness.get("/api/v1/products/93").json() == {
        "productId": "93",
        "title": "Protein Powder – 1kg",
        "url": "https://shop.example.com/product/protein-powder-1kg/",
        "imageUrl": "https://shop.example.com/wp-content/uploads/2026/05/protein.jpg",
        "inStock": False,
        "replenishment": None,
    }
    _wait(harness, "93")
    assert [a["status"] for a in automations(harness, BUYER)] == ["active"]
    _send(harness, "product-simple-restocked")
    assert [e["productTitle"] for e in named(harness, "ecommerce.back_in_stock", BUYER)] == ["Protein Powder – 1kg"]
    # Sold out and restocked again (later deliveries: new modification times): no one is told twice.
    _send(harness, "product-simple-outofstock", date_modified_gmt="2026-06-14T08:00:00")
    _send(harness, "product-simple-restocked", date_modified_gmt="2026-06-15T08:00:00")
    assert len(named(harness, "ecommerce.back_in_stock", BUYER)) == 1


def test_a_variation_restocked_updates_its_parent(make_harness: Any) -> None:
    harness: Harness = make_harness(sources=woo_source())
    _send(harness, "product-variable", "product.created")
    _wait(harness, "200", "214")
    _send(harness, "product-variation-restocked")
    product = harness.get("/api/v1/products/200").json()
    assert product["title"] == "Hoodie" and product["inStock"] is False
    assert product["variants"] == [
        {"variantId": "214", "title": "Hoodie - Blue, L", "inStock": True, "inventoryQuantity": 6}
    ]
    [told] = named(harness, "ecommerce.back_in_stock", BUYER)
    assert (told["productId"], told["variantId"], told["variantTitle"]) == ("200", "214", "Hoodie - Blue, L")
