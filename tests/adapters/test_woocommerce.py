"""WooCommerce webhooks through the real app: signatures, the ping, topics, status mapping, fixtures."""

import copy
import itertools
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters import Delivery
from adapters.woocommerce import WooCommerceAdapter, WooCommerceOptions
from gateway.config import ConfigError, load
from normalizer import CanonicalOrder
from tests.adapters._woocommerce_deliveries import (
    SECRET,
    SOURCE,
    deliver,
    encode,
    fixture,
    sign,
    woo_headers,
    woo_source,
)
from tests.conftest import write_config

JANE = {"email": "jane@example.com", "externalId": "12", "firstName": "Jane", "lastName": "Doe"}
SHOES = {"productId": "120", "title": "Running Shoes", "quantity": 1, "sku": "RUN-SHOE", "priceCents": 10000}
SOCKS = {"productId": "121", "title": "Socks (3 pack)", "quantity": 2, "sku": "SOCK-3", "priceCents": 1000}
ORDER_801 = {
    "orderId": "801",
    "orderNumber": "801",
    "totalCents": 12000,
    "currency": "USD",
    "orderedAt": "2026-06-03T09:00:00Z",
    "customer": JANE,
    "items": [SHOES, SOCKS],
    "updatedAt": "2026-06-10T16:45:30Z",
    "refunds": {"810": 1000, "805": 750},
}

EXPECTED: dict[str, list[dict[str, Any]]] = {
    "guest-processing": [
        {
            "orderId": "727",
            "orderNumber": "727",
            "status": "placed",
            "totalCents": 8850,
            "currency": "USD",
            "orderedAt": "2026-06-01T12:03:11Z",
            "customer": {"email": "guest.buyer@example.com", "firstName": "Ana", "lastName": "Souza"},
            "items": [
                {
                    "productId": "93",
                    "title": "Protein Powder \u2013 1kg",
                    "quantity": 2,
                    "sku": "PROT-1KG",
                    "priceCents": 3500,
                },
                {"productId": "94", "title": "Shaker & Scoop", "quantity": 1, "priceCents": 1000},
            ],
            "updatedAt": "2026-06-01T12:03:15Z",
            "refunds": {},
        }
    ],
    "completed-two-partial-refunds": [
        {**ORDER_801, "status": "placed"},
        {**ORDER_801, "status": "fulfilled"},
        {**ORDER_801, "status": "refunded", "refundAmountCents": 1750},
    ],
    "refunded-full": [
        {
            "orderId": "902",
            "orderNumber": "902",
            "status": "refunded",
            "totalCents": 4500,
            "currency": "USD",
            "orderedAt": "2026-06-04T06:15:00Z",
            "customer": {"email": "sam@example.com", "externalId": "31", "firstName": "Sam", "lastName": "Lee"},
            "items": [{"productId": "130", "title": "Yoga Mat", "quantity": 1, "sku": "YOGA-MAT", "priceCents": 4500}],
            "refundAmountCents": 4500,
            "updatedAt": "2026-06-06T07:00:00Z",
            "refunds": {"910": 4500},
        }
    ],
    "variations": [
        {
            "orderId": "1003",
            "orderNumber": "1003",
            "status": "placed",
            "totalCents": 10000,
            "currency": "USD",
            "orderedAt": "2026-06-07T18:30:00Z",
            "customer": {"email": "li@example.com", "externalId": "45", "firstName": "Li", "lastName": "Wei"},
            "items": [
                # 80.00 after the coupon over 3 hoodies: `price` 26.666666666666668, rounded half-even.
                {
                    "productId": "200",
                    "variantId": "214",
                    "title": "Hoodie - Blue, L",
                    "quantity": 3,
                    "sku": "HOODIE-BLUE-L",
                    "priceCents": 2667,
                },
                {
                    "productId": "210",
                    "variantId": "219",
                    "title": 'T-Shirt "Classic" - Red, M',
                    "quantity": 1,
                    "sku": "TSHIRT-RED-M",
                    "priceCents": 1500,
                },
            ],
            "updatedAt": "2026-06-07T18:30:09Z",
            "refunds": {},
        }
    ],
    "jpy-store": [
        {
            "orderId": "5001",
            "orderNumber": "5001",
            "status": "placed",
            # "4500.00" from a store set to 2 decimals is 4500 yen: JPY's ISO 4217 exponent is 0.
            "totalCents": 4500,
            "currency": "JPY",
            "orderedAt": "2026-06-08T01:00:00Z",
            "customer": {"email": "yuki@example.jp", "externalId": "77", "firstName": "Yuki", "lastName": "Tanaka"},
            "items": [
                {"productId": "300", "title": "Matcha Tin 100g", "quantity": 3, "sku": "MATCHA-100", "priceCents": 1500}
            ],
            "updatedAt": "2026-06-08T01:00:01Z",
            "refunds": {},
        }
    ],
}

LEDGER: dict[str, dict[str, Any]] = {
    "guest-processing": {"orderId": "727", "status": "placed", "totalCents": 8850, "refundedCents": 0},
    "completed-two-partial-refunds": {
        "orderId": "801",
        "status": "refunded",
        "totalCents": 12000,
        "refundedCents": 1750,
    },
    "refunded-full": {"orderId": "902", "status": "refunded", "totalCents": 4500, "refundedCents": 4500},
    "variations": {"orderId": "1003", "status": "placed", "totalCents": 10000, "refundedCents": 0},
    "jpy-store": {"orderId": "5001", "status": "placed", "totalCents": 4500, "refundedCents": 0},
}


_examples = itertools.count()


class NoOrders:
    def order(self, order_id: str) -> CanonicalOrder | None:
        return None


def adapter(*secrets: str) -> WooCommerceAdapter:
    return WooCommerceAdapter(SOURCE, WooCommerceOptions(type="woocommerce", secrets=list(secrets or [SECRET])))


def delivery(body: bytes, topic: str = "order.updated") -> Delivery:
    headers = {k.lower(): v for k, v in woo_headers(body, topic).items()}
    return Delivery(source=SOURCE, headers=headers, body=body, received_at=datetime.now(UTC))


@pytest.fixture
def woo(make_harness: Any) -> Any:
    return make_harness(sources=woo_source(), fx_rates={"EUR": 1.08, "JPY": "0.0064"})


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_translates_to_exact_canonical_orders(name: str) -> None:
    body = encode(fixture(name))
    translation = adapter().translate(delivery(body), NoOrders())
    assert translation.warnings == []
    assert [order.model_dump(mode="json", exclude_unset=True) for order in translation.orders] == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_delivered_signed_lands_in_the_ledger(woo: Any, name: str) -> None:
    response = deliver(woo, fixture(name), "order.created")
    assert response.status_code == 200, response.text
    assert response.json()["queued"] is True
    woo.drain()
    job = woo.job(response.json()["jobId"])
    assert (job["status"], job["warnings"]) == ("done", [])
    ledger = woo.get(f"/api/v1/orders/{LEDGER[name]['orderId']}", source=SOURCE).json()
    expected = EXPECTED[name][0]
    assert {key: ledger[key] for key in LEDGER[name]} == LEDGER[name]
    assert ledger["currency"] == expected["currency"]
    assert ledger["email"] == expected["customer"]["email"]
    assert ledger["items"] == expected["items"]
    assert ledger["orderedAt"] == expected["orderedAt"].replace("Z", ".000Z")


def test_completed_order_with_partial_refunds_gives_exact_events_and_figures(woo: Any) -> None:
    deliver(woo, fixture("completed-two-partial-refunds"))
    woo.drain()
    events = woo.events("jane@example.com")
    assert [(e["name"], e["properties"].get("refundAmountCents")) for e in events] == [
        ("ecommerce.order_placed", None),
        ("ecommerce.order_fulfilled", None),
        ("ecommerce.order_refunded", 1750),
    ]
    assert events[0]["properties"]["provider"] == "woocommerce"
    assert events[0]["properties"]["source"] == SOURCE
    attributes = woo.attributes("jane@example.com")
    assert (attributes["ordersCount"], attributes["totalSpent"], attributes["aov"]) == (1, 102.5, 102.5)


# -- verification and the ping ------------------------------------------------------------------------------


def test_bad_signature_is_401_and_stores_nothing(woo: Any) -> None:
    body = encode(fixture("guest-processing"))
    headers = woo_headers(body, secret="not-the-secret")
    response = woo.client.post(f"/webhooks/{SOURCE}", content=body, headers=headers)
    assert response.status_code == 401
    assert response.json()["success"] is False
    with woo.db() as conn:
        assert conn.execute("SELECT count(*) FROM jobs").fetchone()[0] == 0


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda body, headers: (body + b" ", headers), id="body-changed"),
        pytest.param(lambda body, headers: (body, {**headers, "X-WC-Webhook-Signature": "%%%"}), id="not-base64"),
        pytest.param(lambda body, headers: (body, {**headers, "X-WC-Webhook-Signature": ""}), id="empty"),
        pytest.param(
            lambda body, headers: (body, {k: v for k, v in headers.items() if k != "X-WC-Webhook-Signature"}),
            id="missing",
        ),
    ],
)
def test_one_change_to_a_signed_request_is_refused(woo: Any, tamper: Any) -> None:
    body = encode(fixture("guest-processing"))
    body, headers = tamper(body, woo_headers(body))
    assert woo.client.post(f"/webhooks/{SOURCE}", content=body, headers=headers).status_code == 401


def test_every_secret_of_the_source_is_tried(make_harness: Any) -> None:
    harness = make_harness(sources={SOURCE: {"type": "woocommerce", "secrets": ["old-secret", SECRET]}})
    assert deliver(harness, fixture("guest-processing"), secret="old-secret").status_code == 200
    assert deliver(harness, fixture("variations"), secret=SECRET).status_code == 200


def test_secret_with_html_entities_signs_as_wordpress_decodes_it() -> None:
    # WooCommerce signs with wp_specialchars_decode(secret); the admin may show the stored, encoded form.
    body = encode(fixture("guest-processing"))
    stored = adapter("a&amp;b&lt;c")
    headers = {"x-wc-webhook-signature": sign(body, "a&b<c"), "x-wc-webhook-topic": "order.updated"}
    stored.verify(Delivery(SOURCE, headers, body, datetime.now(UTC)))


def test_ping_is_answered_200_and_writes_nothing(woo: Any) -> None:
    # The ping is unsigned: anyone may send it, any number of times, so it must cost no row.
    headers = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "WooCommerce/9.4.2 Hookshot"}
    for _ in range(20):
        response = woo.client.post(f"/webhooks/{SOURCE}", content=b"webhook_id=17", headers=headers)
        assert response.status_code == 200
        assert response.json() == {"success": True, "ignored": True, "reason": "WooCommerce ping for webhook 17"}
    assert woo.drain() == 0
    with woo.db() as conn:
        assert conn.execute("SELECT count(*) FROM jobs").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 0


@pytest.mark.parametrize(
    "body",
    [
        b"webhook_id=17&topic=order.created",
        b"webhook_id=",
        b"webhook_id=abc",
        b'{"webhook_id": 17}',
        b"webhook_id=17\n",
    ],
)
def test_unsigned_requests_other_than_the_exact_ping_are_refused(woo: Any, body: bytes) -> None:
    response = woo.client.post(f"/webhooks/{SOURCE}", content=body, headers=woo_headers(body, secret=None))
    assert response.status_code == 401


# -- topics and duplicates ----------------------------------------------------------------------------------


@pytest.mark.parametrize("topic", ["product.deleted", "customer.updated", "coupon.deleted", "action.woocommerce_x"])
def test_unhandled_topics_are_acknowledged_and_ignored(woo: Any, topic: str) -> None:
    response = deliver(woo, {"id": 5, "name": "Something"}, topic)
    assert response.status_code == 200
    assert response.json() == {"success": True, "ignored": True, "reason": f"topic {topic} is not handled"}
    with woo.db() as conn:
        assert conn.execute("SELECT count(*) FROM jobs").fetchone()[0] == 0


def test_identical_repeat_with_a_new_delivery_id_is_a_duplicate(woo: Any) -> None:
    first = deliver(woo, fixture("guest-processing"), "order.created")
    second = deliver(woo, fixture("guest-processing"), "order.created")
    assert first.json()["queued"] is True
    assert second.status_code == 200
    assert second.json() == {"success": True, "duplicate": True}
    # The same body under another topic is another delivery.
    assert deliver(woo, fixture("guest-processing"), "order.updated").json()["queued"] is True


# -- status mapping -----------------------------------------------------------------------------------------


def _status(name: str, status: str, modified: str, **changes: Any) -> dict[str, Any]:
    payload = copy.deepcopy(fixture(name))
    payload.update(status=status, date_modified_gmt=modified, **changes)
    return payload


@pytest.mark.parametrize("status", ["pending", "failed", "checkout-draft"])
def test_unpaid_statuses_are_not_orders_until_paid(woo: Any, status: str) -> None:
    response = deliver(woo, _status("variations", status, "2026-06-07T18:29:00"), "order.created")
    woo.drain()
    job = woo.job(response.json()["jobId"])
    assert job["status"] == "done"
    assert job["warnings"] == [f"order 1003 is {status}: not an order yet, nothing recorded"]
    assert woo.get("/api/v1/orders/1003", source=SOURCE).status_code == 404
    assert woo.get("/api/v1/subscribers/li@example.com").status_code == 404
    deliver(woo, fixture("variations"))
    woo.drain()
    assert [e["name"] for e in woo.events("li@example.com")] == ["ecommerce.order_placed"]
    assert woo.attributes("li@example.com")["ordersCount"] == 1


def test_cancelled_status_cancels(woo: Any) -> None:
    deliver(woo, fixture("variations"))
    deliver(woo, _status("variations", "cancelled", "2026-06-08T09:00:00"))
    woo.drain()
    assert woo.get("/api/v1/orders/1003", source=SOURCE).json()["status"] == "cancelled"
    assert [e["name"] for e in woo.events("li@example.com")] == ["ecommerce.order_placed", "ecommerce.order_cancelled"]
    assert (woo.attributes("li@example.com")["ordersCount"], woo.attributes("li@example.com")["totalSpent"]) == (0, 0)


@pytest.mark.parametrize("how", ["deleted", "trash"])
def test_deleting_or_trashing_a_known_order_cancels_it(woo: Any, how: str) -> None:
    deliver(woo, fixture("variations"))
    woo.drain()
    if how == "deleted":
        response = deliver(woo, {"id": 1003}, "order.deleted")
    else:
        response = deliver(woo, _status("variations", "trash", "2026-06-09T10:00:00"))
    woo.drain()
    assert woo.job(response.json()["jobId"])["warnings"] == []
    ledger = woo.get("/api/v1/orders/1003", source=SOURCE).json()
    assert (ledger["status"], ledger["totalCents"], ledger["orderNumber"]) == ("cancelled", 10000, "1003")
    assert len(ledger["items"]) == 2  # a bare {"id"} does not wipe what the ledger knows
    assert woo.events("li@example.com")[-1]["name"] == "ecommerce.order_cancelled"
    assert woo.attributes("li@example.com")["ordersCount"] == 0


def test_trashing_is_versioned_by_the_store_time_not_the_arrival_time(woo: Any) -> None:
    deliver(woo, fixture("variations"))
    deliver(woo, _status("variations", "trash", "2026-06-09T10:00:00"))
    woo.drain()
    # Edited after the trash (the store's clock): a newer fact, even though it arrives after "now" on ours.
    deliver(woo, _status("variations", "trash", "2026-06-09T11:00:00", total="90.00"))
    deliver(woo, _status("variations", "processing", "2026-06-09T11:30:00", total="90.00"), "order.restored")
    woo.drain()
    ledger = woo.get("/api/v1/orders/1003", source=SOURCE).json()
    assert (ledger["totalCents"], ledger["cancelled"]) == (9000, True)


@pytest.mark.parametrize("how", ["deleted", "trash"])
def test_deleting_an_unknown_order_is_a_warning_only(woo: Any, how: str) -> None:
    if how == "deleted":
        response = deliver(woo, {"id": 4242}, "order.deleted")
        order_id = "4242"
    else:
        response = deliver(woo, _status("variations", "trash", "2026-06-09T10:00:00"))
        order_id = "1003"
    woo.drain()
    job = woo.job(response.json()["jobId"])
    verb = "deleted" if how == "deleted" else "trashed"
    assert (job["status"], job["warnings"]) == (
        "done",
        [f"order {order_id} was {verb} before the gateway saw it: nothing to cancel"],
    )
    assert woo.get(f"/api/v1/orders/{order_id}", source=SOURCE).status_code == 404


def test_restored_order_takes_its_current_status(woo: Any) -> None:
    response = deliver(woo, _status("refunded-full", "completed", "2026-06-09T10:00:00", refunds=[]), "order.restored")
    woo.drain()
    assert woo.job(response.json()["jobId"])["status"] == "done"
    ledger = woo.get("/api/v1/orders/902", source=SOURCE).json()
    assert (ledger["status"], ledger["fulfilled"], ledger["refundedCents"]) == ("fulfilled", True, 0)


@pytest.mark.parametrize(
    ("email", "warning"),
    [
        ("deleted@site.invalid", "order 727: the customer's personal data was erased: no subscriber"),
        ("", "order 727 has no billing email: no subscriber"),
        ("not-an-address", "order 727 has billing details the gateway cannot use (email): no subscriber"),
    ],
)
def test_orders_without_a_usable_email_complete_with_a_warning(woo: Any, email: str, warning: str) -> None:
    payload = copy.deepcopy(fixture("guest-processing"))
    payload["billing"].update(email=email, first_name="[deleted]", last_name="[deleted]")
    response = deliver(woo, payload)
    woo.drain()
    job = woo.job(response.json()["jobId"])
    assert job["status"] == "done"
    assert job["warnings"] == [warning, "order 727 has no customer email: recorded in the ledger, no subscriber"]
    ledger = woo.get("/api/v1/orders/727", source=SOURCE).json()
    assert (ledger["email"], ledger["totalCents"]) == (None, 8850)


def test_unmapped_plugin_status_is_a_warning(woo: Any) -> None:
    response = deliver(woo, _status("variations", "shipped-to-partner", "2026-06-08T09:00:00"))
    woo.drain()
    assert woo.job(response.json()["jobId"])["warnings"] == [
        "order 1003 has status 'shipped-to-partner', which the gateway does not map"
    ]


def test_unexpected_shape_ends_dead_and_keeps_the_body(woo: Any) -> None:
    response = deliver(woo, {"id": 1, "status": "processing", "currency": "USD"})  # no total
    woo.drain()
    job = woo.job(response.json()["jobId"])
    assert job["status"] == "dead"
    assert job["error"].startswith("TranslationError: order 1: unexpected shape")
    with woo.db() as conn:
        assert conn.execute("SELECT length(body) > 0 FROM jobs").fetchone()[0] == 1


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (
            {"line_items": [{"id": 1, "name": "Mat", "product_id": 5, "quantity": 0, "price": 5}]},
            "invalid canonical order: quantity: Input should be greater than or equal to 1",
        ),
        (
            {"line_items": [{"id": 1, "name": "Mat", "product_id": 5, "quantity": 1, "price": [5]}]},
            "TranslationError: order 1003: unexpected shape (InvalidOperation (its message is left out",
        ),
        ({"refunds": [{"id": 9}]}, "TranslationError: order 1003: unexpected shape (missing field 'total')"),
    ],
)
def test_malformed_parts_end_dead_with_a_reason(woo: Any, change: dict[str, Any], error: str) -> None:
    response = deliver(woo, {**fixture("variations"), **change})
    woo.drain()
    job = woo.job(response.json()["jobId"])
    assert job["status"] == "dead"
    assert job["error"].startswith(error)


def test_more_decimals_than_the_currency_allows_ends_dead(woo: Any) -> None:
    response = deliver(woo, _status("jpy-store", "processing", "2026-06-08T02:00:00", total="4500.50"))
    woo.drain()
    job = woo.job(response.json()["jobId"])
    assert (job["status"], job["error"]) == (
        "dead",
        "TranslationError: order 5001: more decimals than JPY allows",
    )


# -- end to end ---------------------------------------------------------------------------------------------


def _order_2001(status: str, modified: str, total: str, refunds: list[dict[str, Any]]) -> dict[str, Any]:
    payload = copy.deepcopy(fixture("completed-two-partial-refunds"))
    payload.update(
        id=2001,
        number="2001",
        status=status,
        total=total,
        date_created_gmt="2026-07-01T10:00:00",
        date_modified_gmt=modified,
        refunds=refunds,
    )
    payload["line_items"] = [
        dict(payload["line_items"][0], total=total, subtotal=total, price=int(total.split(".")[0]))
    ]
    return payload


def test_end_to_end_ping_created_completed_partial_refund_refunded(woo: Any) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    assert woo.client.post(f"/webhooks/{SOURCE}", content=b"webhook_id=17", headers=headers).status_code == 200

    created = _order_2001("processing", "2026-07-01T10:00:05", "55.00", [])
    assert deliver(woo, created, "order.created").json()["queued"] is True
    assert deliver(woo, created, "order.created").json() == {"success": True, "duplicate": True}
    woo.drain()
    assert woo.attributes("jane@example.com")["totalSpent"] == 55.0

    # Shipping was added when the order was completed: 60.00.
    deliver(woo, _order_2001("completed", "2026-07-02T08:00:00", "60.00", []))
    # A delivery built before the completion arrives late: it must not bring back the old total.
    deliver(woo, _order_2001("processing", "2026-07-01T10:30:00", "55.00", []))
    woo.drain()
    assert woo.get("/api/v1/orders/2001", source=SOURCE).json()["totalCents"] == 6000

    partial = [{"id": 2101, "reason": "Damaged box", "total": "-15.00"}]
    deliver(woo, _order_2001("completed", "2026-07-03T09:00:00", "60.00", partial))
    full = [{"id": 2102, "reason": "Returned", "total": "-45.00"}, *partial]
    deliver(woo, _order_2001("refunded", "2026-07-04T12:00:00", "60.00", full))
    woo.drain()
    # A second order of the same customer keeps the figures from being all zero.
    second = copy.deepcopy(fixture("completed-two-partial-refunds"))
    second.update(id=2002, number="2002", status="processing", total="30.00", refunds=[])
    deliver(woo, second, "order.created")
    woo.drain()

    events = woo.events("jane@example.com")
    assert [(e["name"], e["properties"]["orderId"], e["properties"].get("refundAmountCents")) for e in events] == [
        ("ecommerce.order_placed", "2001", None),
        ("ecommerce.order_fulfilled", "2001", None),
        ("ecommerce.order_refunded", "2001", 1500),
        ("ecommerce.order_refunded", "2001", 6000),
        ("ecommerce.order_placed", "2002", None),
    ]
    ledger = woo.get("/api/v1/orders/2001", source=SOURCE).json()
    assert (ledger["status"], ledger["totalCents"], ledger["refundedCents"]) == ("refunded", 6000, 6000)
    subscriber = woo.subscriber("jane@example.com")
    assert (subscriber["externalId"], subscriber["firstName"], subscriber["lastName"]) == ("12", "Jane", "Doe")
    assert subscriber["attributes"] == {"ltv": 30.0, "totalSpent": 30.0, "ordersCount": 2, "aov": 15.0}
    with woo.db() as conn:
        statuses = conn.execute("SELECT status, count(*) FROM jobs GROUP BY status").fetchall()
    assert dict(statuses) == {"done": 6}  # the ping writes no row


def test_a_late_partial_refund_fires_no_refund_event_after_the_full_refund(woo: Any) -> None:
    partial = [{"id": 2101, "reason": "Damaged box", "total": "-15.00"}]
    full = [{"id": 2102, "reason": "Returned", "total": "-45.00"}, *partial]
    deliver(woo, _order_2001("refunded", "2026-07-04T12:00:00", "60.00", full))
    woo.drain()
    deliver(woo, _order_2001("completed", "2026-07-03T09:00:00", "60.00", partial))
    woo.drain()
    events = woo.events("jane@example.com")
    assert [(e["name"], e["properties"].get("refundAmountCents")) for e in events] == [
        ("ecommerce.order_refunded", 6000),
        ("ecommerce.order_placed", None),
        ("ecommerce.order_fulfilled", None),
    ]
    ledger = woo.get("/api/v1/orders/2001", source=SOURCE).json()
    assert (ledger["status"], ledger["refundedCents"], ledger["fulfilled"]) == ("refunded", 6000, True)
    assert woo.attributes("jane@example.com") == {"ltv": 0.0, "totalSpent": 0.0, "ordersCount": 1, "aov": 0.0}


def test_a_legacy_api_payload_ends_dead_with_the_fix_in_the_reason(woo: Any) -> None:
    response = deliver(woo, {"order": {"id": 5, "status": "processing"}})
    woo.drain()
    job = woo.job(response.json()["jobId"])
    assert (job["status"], job["error"]) == (
        "dead",
        "TranslationError: legacy API payload: set the webhook's API version to WP REST API Integration v3",
    )


# -- options ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"type": "woocommerce"}, "sources.woo.secrets: Field required"),
        ({"type": "woocommerce", "secrets": []}, "sources.woo.secrets: List should have at least 1 item"),
        ({"type": "woocommerce", "secrets": [""]}, "sources.woo.secrets: a webhook secret must not be"),
        ({"type": "woocommerce", "secrets": ["s"], "topic": "x"}, "sources.woo.topic: unknown key"),
        (
            {"type": "woocommerce", "secrets": ["s"], "api": {"url": "http://shop.example.com", "consumer_key": "ck"}},
            "sources.woo.api.url: must use https",
        ),
        (
            {"type": "woocommerce", "secrets": ["s"], "api": {"url": "https://shop.example.com", "consumer_key": "k"}},
            "sources.woo.api.consumer_secret: Field required",
        ),
    ],
)
def test_bad_options_fail_at_start_naming_the_key(tmp_path: Any, block: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as failure:
        load(write_config(tmp_path, sources={SOURCE: block}))
    assert str(failure.value).startswith(message)


def test_api_secrets_come_from_the_environment(tmp_path: Any) -> None:
    api = {"url": "https://shop.example.com/", "consumer_key": "${WOO_KEY}", "consumer_secret": "${WOO_SECRET}"}
    path = write_config(tmp_path, sources={SOURCE: {"type": "woocommerce", "secrets": ["s"], "api": api}})
    config = load(path, env={"WOO_KEY": "ck_1", "WOO_SECRET": "cs_2"})
    options = config.sources[SOURCE]
    assert isinstance(options, WooCommerceOptions)
    assert options.api is not None
    assert (options.api.url, options.api.consumer_key, options.api.consumer_secret) == (
        "https://shop.example.com",
        "ck_1",
        "cs_2",
    )


# -- convergence --------------------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(range(5)), repeats=st.lists(st.integers(0, 4), max_size=3))
def test_any_arrival_order_with_repeats_converges(woo: Any, order: list[int], repeats: list[int]) -> None:
    # One order id and one customer per example, so examples share the app without sharing state.
    example = next(_examples)
    order_id, email = 30000 + example, f"buyer-{example}@example.com"
    partial = [{"id": 2101, "reason": "", "total": "-15.00"}]
    deliveries = [
        ("order.created", _order_2001("processing", "2026-07-01T10:00:05", "55.00", [])),
        ("order.updated", _order_2001("completed", "2026-07-02T08:00:00", "60.00", [])),
        ("order.updated", _order_2001("processing", "2026-07-01T10:30:00", "55.00", [])),
        ("order.updated", _order_2001("completed", "2026-07-03T09:00:00", "60.00", partial)),
        (
            "order.updated",
            _order_2001("refunded", "2026-07-04T12:00:00", "60.00", [*partial, {"id": 2102, "total": "-45.00"}]),
        ),
    ]
    for _, payload in deliveries:
        payload.update(id=order_id, number=str(order_id))
        payload["billing"]["email"] = email
    for index in [*order, *repeats]:
        topic, payload = deliveries[index]
        assert deliver(woo, payload, topic).status_code == 200
    woo.drain()
    ledger = woo.get(f"/api/v1/orders/{order_id}", source=SOURCE).json()
    assert (ledger["status"], ledger["totalCents"], ledger["refundedCents"], ledger["fulfilled"]) == (
        "refunded",
        6000,
        6000,
        True,
    )
    assert woo.attributes(email) == {"ltv": 0.0, "totalSpent": 0.0, "ordersCount": 1, "aov": 0.0}
    events = [(e["name"], e["properties"].get("refundAmountCents")) for e in woo.events(email)]
    assert events.count(("ecommerce.order_placed", None)) == 1
    assert events.count(("ecommerce.order_fulfilled", None)) == 1
    # The partial refund's event exists only if it arrived before the full refund.
    refunds = [amount for name, amount in events if name == "ecommerce.order_refunded"]
    assert refunds in ([1500, 6000], [6000])
    assert len(events) == 2 + len(refunds)


def test_item_price_is_the_unit_price_paid_after_discounts() -> None:
    """priceCents means the unit price paid (docs/api.md): WooCommerce's line `price` already is (its `total`
    over the quantity, after coupons), not the `subtotal` before them."""
    order = fixture("completed-two-partial-refunds")
    line = order["line_items"][1]
    assert (line["quantity"], line["subtotal"]) == (2, "20.00")
    # A 15 % coupon: 20.00 -> 17.00 for two, 8.50 a unit; WooCommerce keeps the unrounded figure in `price`.
    line.update(total="17.00", price=8.5)
    order["line_items"][0].update(total="66.67", price=66.666667)  # a third off: 66.666667 -> 66.67
    translation = adapter().translate(delivery(encode(order)), NoOrders())
    assert [item.priceCents for item in translation.orders[0].items] == [6667, 850]
