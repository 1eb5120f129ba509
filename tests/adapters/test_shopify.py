"""Shopify adapter: exact canonical orders per fixture, signatures and intake through the real app, options."""

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters import Command, Delivery, NotReady, TranslationError
from adapters.shopify import ORDER_TOPICS, ShopifyAdapter, ShopifyOptions
from gateway.config import ConfigError, load
from normalizer import CanonicalOrder
from tests.adapters._shopify_deliveries import (
    OLD_SECRET,
    ORDER_A,
    ORDER_B,
    POWDER,
    SECRET,
    SOURCE,
    deliver,
    headers,
    raw,
    shop_harness,
    sign,
)
from tests.conftest import write_config

REFUND_1 = "9007199254850001"
REFUND_2 = "9007199254850002"
JANE = {"email": "jane.buyer@example.com", "externalId": "9007199254741337", "firstName": "Jane", "lastName": "Buyer"}
USD_8850 = {"presentmentCurrency": "USD", "presentmentTotalCents": 8850}


def order_a(updated_at: str) -> dict[str, Any]:
    return {
        "orderId": ORDER_A,
        "orderNumber": "#1001",
        "totalCents": 8850,
        "currency": "USD",
        "orderedAt": "2026-06-01T12:00:00Z",
        "customer": JANE,
        "items": [POWDER],
        "properties": USD_8850,
        "updatedAt": updated_at,
    }


def implied(facts: dict[str, Any], *statuses: str, refunds: dict[str, int] | None = None) -> list[dict[str, Any]]:
    """The canonical orders one payload implies: the same facts under each status; the refund carries its money."""
    out = []
    for status in statuses:
        order = {**facts, "status": status}
        if status == "refunded":
            assert refunds is not None
            order |= {"refundAmountCents": sum(refunds.values()), "refunds": refunds}
        out.append(order)
    return out


class Lookup:
    def __init__(self, *orders: CanonicalOrder) -> None:
        self.orders = {order.orderId: order for order in orders}

    def order(self, order_id: str) -> CanonicalOrder | None:
        return self.orders.get(order_id)


STORED_A = CanonicalOrder(orderId=ORDER_A, totalCents=8850, currency="USD", customer=None)
STORED_B = CanonicalOrder(orderId=ORDER_B, totalCents=4500, currency="USD", customer=None)


def adapter(**options: Any) -> ShopifyAdapter:
    return ShopifyAdapter(SOURCE, ShopifyOptions(type="shopify", secrets=[SECRET], **options))


def delivery(topic: str, body: bytes, **extra: str) -> Delivery:
    names = {"x-shopify-topic": topic, **extra}
    return Delivery(SOURCE, names, body, datetime(2026, 6, 1, tzinfo=UTC))


def canonical(orders: list[CanonicalOrder]) -> list[dict[str, Any]]:
    # exclude_unset: what an adapter leaves out keeps what the ledger knows, so "not given" is part of the answer.
    return [order.model_dump(mode="json", exclude_unset=True) for order in orders]


TRANSLATIONS = [
    pytest.param(
        "orders_create.json", "orders/create", implied(order_a("2026-06-01T12:00:02Z"), "placed"), id="create"
    ),
    pytest.param("orders_paid.json", "orders/paid", implied(order_a("2026-06-01T12:00:09Z"), "placed"), id="paid"),
    pytest.param(
        "orders_updated_refund.json",
        "orders/updated",
        implied(order_a("2026-06-03T08:00:02Z"), "placed", "refunded", refunds={REFUND_1: 2000}),
        id="partial-refund",
    ),
    pytest.param(
        "orders_cancelled.json",
        "orders/cancelled",
        implied(
            order_a("2026-06-04T06:00:03Z"), "placed", "refunded", "cancelled", refunds={REFUND_1: 2000, REFUND_2: 6850}
        ),
        id="cancelled-and-refunded",
    ),
    pytest.param(
        "orders_fulfilled.json",
        "orders/fulfilled",
        implied(
            {
                "orderId": ORDER_B,
                "orderNumber": "#1002",
                "totalCents": 4500,
                "currency": "USD",
                "orderedAt": "2026-06-05T12:00:00Z",
                "customer": JANE,
                "items": [
                    {
                        "productId": "9007199254760002",
                        "title": "Shaker Bottle",
                        "quantity": 3,
                        "variantId": "9007199254770002",
                        "priceCents": 1500,
                    }
                ],
                "properties": {"presentmentCurrency": "USD", "presentmentTotalCents": 4500},
                "updatedAt": "2026-06-05T16:30:05Z",
            },
            "placed",
            "fulfilled",
        ),
        id="fulfilled-no-sku",
    ),
    pytest.param(
        "orders_updated_multicurrency.json",
        "orders/updated",
        implied(
            {
                "orderId": "9007199254742001",
                "orderNumber": "#1003",
                # current_total_price 97.20 is net of the refund; EUR 10.00 refunded at the order's 1.08 = USD 10.80.
                "totalCents": 10800,
                "currency": "USD",
                "orderedAt": "2026-07-01T08:59:58Z",
                "customer": {
                    "email": "klaus@example.de",
                    "externalId": "9007199254741400",
                    "firstName": "Klaus",
                    "lastName": "Beispiel",
                },
                "items": [
                    {**POWDER, "priceCents": 5400},
                    {"productId": "custom:9007199254780003", "title": "Gift wrapping", "quantity": 1, "priceCents": 0},
                ],
                "properties": {"presentmentCurrency": "EUR", "presentmentTotalCents": 10000},
                "updatedAt": "2026-07-02T09:30:00Z",
            },
            "placed",
            "refunded",
            refunds={"9007199254850003": 1080},
        ),
        id="presentment-eur-custom-item",
    ),
    pytest.param(
        "orders_paid_jpy_guest.json",
        "orders/paid",
        implied(
            {
                "orderId": "9007199254743001",
                "orderNumber": "JP-1042",
                "totalCents": 4500,  # JPY has no minor unit: "4500" is 4500
                "currency": "JPY",
                "orderedAt": "2026-08-10T03:00:00Z",
                "customer": {"email": "hanako@example.jp"},
                "items": [
                    {
                        "productId": "9007199254760009",
                        "title": "Matcha Tin",
                        "quantity": 3,
                        "variantId": "9007199254770009",
                        "sku": "MATCHA-100",
                        "variantTitle": "100 g",
                        "priceCents": 1500,
                    }
                ],
                "properties": {"presentmentCurrency": "JPY", "presentmentTotalCents": 4500},
                "updatedAt": "2026-08-10T03:00:05Z",
            },
            "placed",
        ),
        id="jpy-guest-null-customer",
    ),
    pytest.param(
        "orders_fulfilled_pos_no_email.json",
        "orders/fulfilled",
        implied(
            {
                "orderId": "9007199254744001",
                "orderNumber": "#1004",
                "totalCents": 1200,
                "currency": "USD",
                "orderedAt": "2026-08-11T21:45:00Z",
                "customer": None,
                "items": [
                    {
                        "productId": "9007199254760010",
                        "title": "Protein Bar Box",
                        "quantity": 1,
                        "variantId": "9007199254770010",
                        "sku": "BAR-BOX-12",
                        "priceCents": 1200,
                    }
                ],
                "properties": {"presentmentCurrency": "USD", "presentmentTotalCents": 1200},
                "updatedAt": "2026-08-11T21:45:01Z",
            },
            "placed",
            "fulfilled",
        ),
        id="pos-no-email",
    ),
    pytest.param(
        "refunds_create.json",
        "refunds/create",
        [
            {
                "orderId": ORDER_A,
                "status": "refunded",
                "totalCents": 8850,
                "currency": "USD",
                "customer": None,
                # Only the successful refund transaction moved money; the declined attempt did not.
                "refundAmountCents": 2000,
                "refunds": {REFUND_1: 2000},
                "updatedAt": "1970-01-01T00:00:00Z",
            }
        ],
        id="refund-joined-to-stored-order",
    ),
    pytest.param(
        "orders_delete.json",
        "orders/delete",
        [
            {
                "orderId": ORDER_B,
                "status": "cancelled",
                "totalCents": 4500,
                "currency": "USD",
                "customer": None,
                "properties": {"deleted": True},
                "updatedAt": "1970-01-01T00:00:00Z",
            }
        ],
        id="delete-known-order",
    ),
]


@pytest.mark.parametrize(("fixture", "topic", "expected"), TRANSLATIONS)
def test_translation(fixture: str, topic: str, expected: list[dict[str, Any]]) -> None:
    translation = adapter().translate(delivery(topic, raw(fixture)), Lookup(STORED_A, STORED_B))
    if topic in ORDER_TOPICS:  # every order fixture completed the same checkout, which its orders name
        expected = [{**order, "checkoutId": "c1f4e5d6a7b8c9d0e1f2a3b4c5d6e7f8"} for order in expected]
    assert canonical(translation.orders) == expected
    assert translation.warnings == []
    assert translation.commands == []


def test_no_email_order_has_no_customer_and_the_engine_warns(make_harness: Any) -> None:
    harness = shop_harness(make_harness)
    response = deliver(harness, "orders/fulfilled", raw("orders_fulfilled_pos_no_email.json"))
    harness.drain()
    job = harness.job(response.json()["jobId"])
    assert job["status"] == "done"
    # placed and fulfilled both lack the email; the job says so once.
    assert job["warnings"] == ["order 9007199254744001 has no customer email: recorded in the ledger, no subscriber"]
    stored = harness.get("/api/v1/orders/9007199254744001", source=SOURCE).json()
    assert (stored["status"], stored["totalCents"], stored["email"]) == ("fulfilled", 1200, None)


def test_refund_before_its_order_is_not_ready() -> None:
    with pytest.raises(NotReady, match="order 9007199254740993, which has not arrived yet"):
        adapter().translate(delivery("refunds/create", raw("refunds_create.json")), Lookup())


def test_refund_adds_to_the_refunds_the_ledger_already_holds() -> None:
    stored = CanonicalOrder(orderId=ORDER_A, totalCents=8850, currency="USD", customer=None, refunds={"1": 500})
    translation = adapter().translate(delivery("refunds/create", raw("refunds_create.json")), Lookup(stored))
    [order] = translation.orders
    assert (order.refunds, order.refundAmountCents) == ({"1": 500, REFUND_1: 2000}, 2500)


def test_delete_of_an_order_never_received_is_acknowledged() -> None:
    translation = adapter().translate(delivery("orders/delete", raw("orders_delete.json")), Lookup())
    assert translation.orders == []
    assert translation.warnings == [f"order {ORDER_B} was deleted before the gateway received it: nothing to do"]


def test_orders_edited_payload_carries_no_totals() -> None:
    body = json.dumps({"order_edit": {"id": 9007199254999001, "order_id": int(ORDER_A), "line_items": {}}})
    translation = adapter().translate(delivery("orders/edited", body.encode()), Lookup())
    assert translation.orders == []
    assert translation.warnings == ["orders/edited carries no totals: the orders/updated sent with it brings them"]


@pytest.mark.parametrize(
    ("fixture", "topic", "command"),
    [
        (
            "customers_redact.json",
            "customers/redact",
            Command(
                "erase_customer",
                {
                    "email": "jane.buyer@example.com",
                    "customerId": "9007199254741337",
                    "orderIds": [ORDER_A, ORDER_B],
                },
            ),
        ),
        (
            "customers_data_request.json",
            "customers/data_request",
            Command(
                "data_request",
                {"email": "jane.buyer@example.com", "customerId": "9007199254741337", "requestId": 9007199254910001},
            ),
        ),
        ("shop_redact.json", "shop/redact", Command("erase_source", {"shopDomain": "gateway-demo.myshopify.com"})),
        (
            "app_uninstalled.json",
            "app/uninstalled",
            Command("app_uninstalled", {"shopDomain": "gateway-demo.myshopify.com"}),
        ),
    ],
)
def test_compliance_topics_become_commands(fixture: str, topic: str, command: Command) -> None:
    translation = adapter().translate(delivery(topic, raw(fixture)), Lookup())
    assert translation.orders == []
    assert translation.commands == [command]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[1, 2]", "the body is not a JSON object"),
        (b"{not json", "the body is not JSON"),
        (
            b'{"id": 1.5e20, "currency": "USD"}',
            "orders/create payload has an unexpected shape: id must be an integer id",
        ),
        (b'{"id": 7, "currency": "USD"}', "orders/create payload has an unexpected shape: missing field 'total_price'"),
        (
            b'{"id": 7, "currency": "USD", "total_price": "1.005"}',
            "orders/create payload has an unexpected shape: total_price: more decimals than USD allows",
        ),
        (  # 10**15 + 1 cents: past the limit that keeps every sum of amounts exact
            b'{"id": 7, "currency": "USD", "total_price": "10000000000000.01"}',
            "orders/create payload has an unexpected shape: total_price: amount is over the limit of"
            " 1,000,000,000,000,000 minor units",
        ),
        (  # refused before it becomes an integer of a billion digits
            b'{"id": 7, "currency": "USD", "total_price": "1e999999999"}',
            "orders/create payload has an unexpected shape: total_price: amount is over the limit of"
            " 1,000,000,000,000,000 minor units",
        ),
    ],
)
def test_unexpected_shapes_are_translation_errors(body: bytes, message: str) -> None:
    with pytest.raises(TranslationError) as caught:
        adapter().translate(delivery("orders/create", body), Lookup())
    assert str(caught.value) == message


# Signatures and intake through the real app.

BAD_SIGNATURE = {
    "success": False,
    "error": {
        "code": "unauthorized",
        "message": "The webhook signature does not match any secret of this source.",
        "details": [],
    },
}


def job_count(harness: Any) -> int:
    with harness.db() as conn:
        count: int = conn.execute("SELECT count(*) FROM jobs").fetchone()[0]
    return count


def test_valid_signature_is_queued_and_processed(make_harness: Any) -> None:
    harness = shop_harness(make_harness)
    response = deliver(harness, "orders/create", raw("orders_create.json"))
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True and body["queued"] is True and body["jobId"].startswith("commerce-webhook-")
    harness.drain()
    assert harness.job(body["jobId"])["status"] == "done"
    assert harness.job(body["jobId"])["topic"] == "orders/create"
    assert harness.attributes("jane.buyer@example.com") == {
        "ltv": 88.5,
        "totalSpent": 88.5,
        "ordersCount": 1,
        "aov": 88.5,
    }


def _post(harness: Any, body: bytes, names: dict[str, str]) -> Any:
    return harness.client.post(f"/webhooks/{SOURCE}", content=body, headers=names)


MISSING = "The webhook's signature header is missing or malformed."
MISMATCH = "The webhook signature does not match any secret of this source."


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        pytest.param(
            lambda h, body: {**h, "X-Shopify-Hmac-Sha256": sign(body, "another-secret")}, MISMATCH, id="wrong-secret"
        ),
        pytest.param(
            lambda h, body: {k: v for k, v in h.items() if k != "X-Shopify-Hmac-Sha256"}, MISSING, id="missing"
        ),
        pytest.param(lambda h, body: {**h, "X-Shopify-Hmac-Sha256": "not base64 at all!"}, MISMATCH, id="not-base64"),
        pytest.param(
            lambda h, body: {**h, "X-Shopify-Hmac-Sha256": hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()},
            MISMATCH,
            id="hex-not-base64",
        ),
        pytest.param(
            lambda h, body: {**h, "X-Shopify-Hmac-Sha256": base64.b64encode(b"short").decode()},
            MISMATCH,
            id="wrong-length",
        ),
        pytest.param(lambda h, body: {**h, "X-Shopify-Hmac-Sha256": ""}, MISSING, id="empty"),
    ],
)
def test_bad_signatures_are_401_and_store_nothing(make_harness: Any, tamper: Any, message: str) -> None:
    harness = shop_harness(make_harness)
    body = raw("orders_create.json")
    response = _post(harness, body, tamper(headers("orders/create", body), body))
    # The answer says which check failed: no signature header at all, or a signature that matches no secret.
    assert (response.status_code, response.json()) == (
        401,
        {**BAD_SIGNATURE, "error": {**BAD_SIGNATURE["error"], "message": message}},
    )
    assert job_count(harness) == 0


def test_a_changed_body_fails_its_signature(make_harness: Any) -> None:
    harness = shop_harness(make_harness)
    body = raw("orders_create.json")
    changed = body.replace(b'"88.50"', b'"8.50"', 1)
    response = _post(harness, changed, headers("orders/create", body))
    assert (response.status_code, response.json()) == (401, BAD_SIGNATURE)
    assert job_count(harness) == 0


def test_rotation_accepts_old_and_new_secret(make_harness: Any) -> None:
    harness = make_harness(sources={SOURCE: {"type": "shopify", "secrets": [SECRET, OLD_SECRET]}})
    body = raw("orders_create.json")
    assert deliver(harness, "orders/create", body, secret=OLD_SECRET).json()["queued"] is True
    assert deliver(harness, "orders/paid", raw("orders_paid.json"), secret=SECRET).json()["queued"] is True
    assert _post(harness, body, headers("orders/create", body, secret="third")).status_code == 401
    assert job_count(harness) == 2


def test_lower_cased_headers_are_accepted(make_harness: Any) -> None:
    harness = shop_harness(make_harness)
    body = raw("orders_create.json")
    names = {key.lower(): value for key, value in headers("orders/create", body, "lower-1").items()}
    assert _post(harness, body, names).json()["queued"] is True
    assert _post(harness, body, names).json() == {"success": True, "duplicate": True}


def test_unprefixed_headers_are_accepted(make_harness: Any) -> None:
    harness = shop_harness(make_harness)
    body = raw("orders_create.json")
    response = deliver(harness, "orders/create", body, "unprefixed-1", prefix="shopify-")
    assert response.json()["queued"] is True
    assert deliver(harness, "orders/create", body, "unprefixed-1", prefix="shopify-").json()["duplicate"] is True
    harness.drain()
    assert harness.job(response.json()["jobId"])["topic"] == "orders/create"
    assert harness.attributes("jane.buyer@example.com")["ordersCount"] == 1


def test_same_webhook_id_is_a_duplicate(make_harness: Any) -> None:
    harness = shop_harness(make_harness)
    body = raw("orders_create.json")
    assert deliver(harness, "orders/create", body, "w-1").json()["queued"] is True
    assert deliver(harness, "orders/create", body, "w-1").json() == {"success": True, "duplicate": True}
    assert job_count(harness) == 1


def test_unhandled_topic_is_ignored_and_not_stored(make_harness: Any) -> None:
    harness = shop_harness(make_harness)
    body = b'{"id": 9007199254999999, "title": "Summer"}'
    response = deliver(harness, "collections/update", body)
    assert response.json() == {"success": True, "ignored": True, "reason": "topic collections/update is not handled"}
    assert job_count(harness) == 0


def test_other_shop_is_ignored_when_the_domain_is_set(make_harness: Any) -> None:
    harness = shop_harness(make_harness, shop_domain="Other-Shop.myshopify.com")
    response = deliver(harness, "orders/create", raw("orders_create.json"))
    assert response.json() == {
        "success": True,
        "ignored": True,
        "reason": "delivery from shop gateway-demo.myshopify.com; this source is other-shop.myshopify.com",
    }
    assert job_count(harness) == 0


def test_test_notification_is_recorded_not_processed(make_harness: Any) -> None:
    harness = shop_harness(make_harness)
    response = deliver(harness, "orders/create", raw("test_notification.json"))
    body = response.json()
    assert body["recorded"] is True and body["reason"] == "test notification: recorded, not processed"
    assert harness.drain() == 0
    job = harness.job(body["jobId"])
    assert (job["status"], job["warnings"]) == ("done", ["test notification: recorded, not processed"])
    assert harness.get("/api/v1/subscribers/jon@example.com").status_code == 404


def test_test_notification_is_processed_when_the_source_asks(make_harness: Any) -> None:
    harness = shop_harness(make_harness, process_test_webhooks=True)
    assert deliver(harness, "orders/create", raw("test_notification.json")).json()["queued"] is True
    harness.drain()
    assert harness.attributes("jon@example.com")["totalSpent"] == 398.0


def test_a_nested_test_flag_is_not_a_test_notification() -> None:
    body = json.dumps({"id": 1, "test": False, "transactions": [{"test": True}]}).encode()
    assert adapter().intake(delivery("orders/create", body)).action == "queue"


def test_intake_falls_back_to_the_body_hash_without_a_webhook_id() -> None:
    intake = adapter().intake(delivery("orders/create", b"{}"))
    assert intake.dedup_key == "body:" + hashlib.sha256(b"{}").hexdigest()


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"type": "shopify"}, "sources.my-shop.secrets: Field required"),
        ({"type": "shopify", "secrets": []}, "sources.my-shop.secrets: List should have at least 1 item"),
        ({"type": "shopify", "secrets": [" "]}, "sources.my-shop.secrets: each secret must be"),
        (
            {"type": "shopify", "secrets": ["s"], "proces_test_webhooks": True},
            "sources.my-shop.proces_test_webhooks: unknown key",
        ),
    ],
)
def test_options_are_validated_at_start(tmp_path: Path, source: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(write_config(tmp_path, sources={SOURCE: source}))
    assert str(caught.value).startswith(message)


def test_older_payload_repeats_the_refunds_so_far_instead_of_a_smaller_refund() -> None:
    stored = CanonicalOrder(
        orderId=ORDER_A, totalCents=8850, currency="USD", customer=None, refunds={REFUND_1: 2000, REFUND_2: 6850}
    )
    translation = adapter().translate(delivery("orders/updated", raw("orders_updated_refund.json")), Lookup(stored))
    refunded = translation.orders[-1]
    assert (refunded.status, refunded.refundAmountCents, refunded.refunds) == ("refunded", 8850, {REFUND_1: 2000})


def test_three_decimal_currency_scales_by_its_exponent() -> None:
    payload = json.loads(raw("orders_paid_jpy_guest.json"))
    payload.update({"currency": "KWD", "current_total_price": "12.345", "total_price_set": None})
    payload["line_items"][0]["price"] = "4.115"
    translation = adapter().translate(delivery("orders/paid", json.dumps(payload).encode()), Lookup())
    [placed] = translation.orders
    assert (placed.totalCents, placed.currency, placed.items[0].priceCents) == (12345, "KWD", 4115)
    assert placed.properties == {"presentmentCurrency": "JPY"}


@pytest.mark.parametrize(
    ("allocations", "price_cents"),
    [
        pytest.param([], 4425, id="no-discount"),
        # 2 x 44.25 = 88.50, less 5.01 (a line discount and a share of an order code) = 83.49: 41.745 a unit.
        pytest.param(
            [
                {"amount": "3.00", "amount_set": {"shop_money": {"amount": "3.00", "currency_code": "USD"}}},
                {"amount": "2.01", "discount_application_index": 1},
            ],
            4174,
            id="rounded-half-even",
        ),
        pytest.param([{"amount": "100.00"}], 0, id="free"),
    ],
)
def test_item_price_is_the_unit_price_paid_after_discounts(allocations: list[Any], price_cents: int) -> None:
    """priceCents means one thing from every platform: Shopify's `price` is before discounts (WooCommerce's is
    after), so the line's discount allocations are taken off."""
    payload = json.loads(raw("orders_create.json"))
    [line] = payload["line_items"]
    assert (line["price"], line["quantity"]) == ("44.25", 2)
    line["discount_allocations"] = allocations
    translation = adapter().translate(delivery("orders/create", json.dumps(payload).encode()), Lookup())
    assert [item.priceCents for order in translation.orders for item in order.items] == [price_cents]
