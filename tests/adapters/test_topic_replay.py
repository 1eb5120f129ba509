"""A signed body cannot be replayed under another topic. Shopify and WooCommerce sign the body, not the topic: a
captured order body resent as `shop/redact`, `orders/delete` or `order.deleted` verifies, so each of those
topics accepts only a body of its own shape (and a compliance body only for the shop that sent it). A mismatch is
acknowledged, ignored with its reason, counted, and never applied. Signature headers are not stored."""

import json
from typing import Any

import pytest

from tests.adapters import _shopify_deliveries as shopify
from tests.adapters import _woocommerce_deliveries as woo
from tests.conftest import Harness

ORDER = shopify.raw("orders_create.json")


def _placed_order(make_harness: Any, **options: Any) -> tuple[Harness, str, str]:
    harness = shopify.shop_harness(make_harness, **options)
    assert shopify.deliver(harness, "orders/create", ORDER).json()["queued"] is True
    harness.drain()
    payload = json.loads(ORDER)
    email = payload["customer"]["email"].lower()
    assert harness.attributes(email)["ordersCount"] == 1
    return harness, str(payload["id"]), email


def _ignored(harness: Harness, response: Any, reason: str) -> None:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and body["ignored"] is True
    assert reason in body["reason"]
    assert "queued" not in body and "jobId" not in body


def _jobs(harness: Harness) -> int:
    with harness.db() as conn:
        count: int = conn.execute("SELECT count(*) FROM jobs").fetchone()[0]
        return count


@pytest.mark.parametrize("topic", ["shop/redact", "customers/redact", "customers/data_request", "app/uninstalled"])
def test_an_order_body_under_a_compliance_topic_is_ignored_and_counted(make_harness: Any, topic: str) -> None:
    harness, order_id, email = _placed_order(make_harness)
    _ignored(harness, shopify.deliver(harness, topic, ORDER), topic)
    assert _jobs(harness) == 1
    harness.drain()
    # Nothing was erased: the order and the subscriber are still there.
    assert harness.get(f"/api/v1/orders/{order_id}", source=shopify.SOURCE).status_code == 200
    assert harness.attributes(email)["ordersCount"] == 1
    summary = next(s for s in harness.get("/api/v1/sources").json()["sources"] if s["name"] == shopify.SOURCE)
    assert summary["ignored"] == 1
    assert sum(summary["reasons"]["ignored"].values()) == 1


def test_an_order_body_under_orders_delete_cancels_nothing(make_harness: Any) -> None:
    harness, order_id, email = _placed_order(make_harness)
    _ignored(harness, shopify.deliver(harness, "orders/delete", ORDER), "id-only body")
    harness.drain()
    assert harness.get(f"/api/v1/orders/{order_id}", source=shopify.SOURCE).json()["cancelled"] is False
    # The real thing, the id-only body, still cancels it.
    real = json.dumps({"id": int(order_id)}).encode()
    assert shopify.deliver(harness, "orders/delete", real).json()["queued"] is True
    harness.drain()
    assert harness.get(f"/api/v1/orders/{order_id}", source=shopify.SOURCE).json()["cancelled"] is True
    assert harness.attributes(email)["ordersCount"] == 0


@pytest.mark.parametrize(
    ("topic", "fixture"),
    [
        ("customers/data_request", "customers_redact.json"),
        ("customers/redact", "customers_data_request.json"),
        ("shop/redact", "customers_redact.json"),
    ],
)
def test_a_compliance_body_under_another_compliance_topic_is_ignored(
    make_harness: Any, topic: str, fixture: str
) -> None:
    harness, _, email = _placed_order(make_harness)
    _ignored(harness, shopify.deliver(harness, topic, shopify.raw(fixture)), "fields of that topic")
    harness.drain()
    assert harness.attributes(email)["ordersCount"] == 1


@pytest.mark.parametrize("configured", [False, True])
def test_a_compliance_body_naming_another_shop_is_ignored(make_harness: Any, configured: bool) -> None:
    options = {"shop_domain": shopify.SHOP} if configured else {}
    harness, order_id, _ = _placed_order(make_harness, **options)
    other = json.dumps({"shop_id": 1, "shop_domain": "someone-else.myshopify.com"}).encode()
    _ignored(harness, shopify.deliver(harness, "shop/redact", other), "another shop")
    harness.drain()
    assert harness.get(f"/api/v1/orders/{order_id}", source=shopify.SOURCE).status_code == 200
    # The genuine body of this shop is applied.
    assert shopify.deliver(harness, "shop/redact", shopify.raw("shop_redact.json")).json()["queued"] is True
    harness.drain()
    assert harness.get(f"/api/v1/orders/{order_id}", source=shopify.SOURCE).status_code == 404


def test_a_woocommerce_order_body_under_order_deleted_cancels_nothing(make_harness: Any) -> None:
    harness: Harness = make_harness(sources={woo.SOURCE: {"type": "woocommerce", "secrets": [woo.SECRET]}})
    order = woo.fixture("guest-processing")
    body = json.dumps(order).encode()
    post = harness.client.post
    assert post(f"/webhooks/{woo.SOURCE}", content=body, headers=woo.woo_headers(body, "order.created")).json()[
        "queued"
    ]
    harness.drain()
    replayed = post(f"/webhooks/{woo.SOURCE}", content=body, headers=woo.woo_headers(body, "order.deleted"))
    _ignored(harness, replayed, "id-only body")
    harness.drain()
    assert harness.get(f"/api/v1/orders/{order['id']}", source=woo.SOURCE).json()["cancelled"] is False
    real = json.dumps({"id": order["id"]}).encode()
    assert post(f"/webhooks/{woo.SOURCE}", content=real, headers=woo.woo_headers(real, "order.deleted")).json()[
        "queued"
    ]
    harness.drain()
    assert harness.get(f"/api/v1/orders/{order['id']}", source=woo.SOURCE).json()["cancelled"] is True


def test_signature_headers_are_not_stored_with_the_job(make_harness: Any) -> None:
    harness: Harness = make_harness(
        sources={
            shopify.SOURCE: {"type": "shopify", "secrets": [shopify.SECRET]},
            woo.SOURCE: {"type": "woocommerce", "secrets": [woo.SECRET]},
        }
    )
    shopify.deliver(harness, "orders/create", ORDER)
    body = json.dumps(woo.fixture("guest-processing")).encode()
    harness.client.post(f"/webhooks/{woo.SOURCE}", content=body, headers=woo.woo_headers(body, "order.created"))
    with harness.db() as conn:
        stored = [json.loads(row[0]) for row in conn.execute("SELECT headers FROM jobs")]
    assert len(stored) == 2
    for headers in stored:
        assert not [name for name in headers if "hmac" in name or "signature" in name], headers
    assert stored[0]["x-shopify-topic"] == "orders/create"  # what translation needs is kept
    assert harness.drain() == 2
