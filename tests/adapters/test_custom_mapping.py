"""The JMESPath mapping of custom sources: payloads into exact canonical orders, and one test per error message
(each names the canonical field and the expression that produced it)."""

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters import Delivery, Translation, TranslationError
from adapters.custom import CustomAdapter, CustomOptions
from normalizer import CanonicalOrder
from tests.conftest import Harness

BASE = {"orderId": "id", "totalCents": "total", "currency": "currency", "customer": {"email": "email"}}


class NoLookup:
    def order(self, order_id: str) -> CanonicalOrder | None:
        return None


def adapter(mapping: dict[str, Any], **options: Any) -> CustomAdapter:
    block = {
        "type": "custom",
        "signature": {"scheme": "none", "allow_unsigned": True},
        "mapping": {**BASE, **mapping},
        **options,
    }
    return CustomAdapter("src", CustomOptions.model_validate(block))


def delivery(payload: Any, headers: dict[str, str] | None = None) -> Delivery:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return Delivery("src", headers or {}, body, datetime(2026, 6, 1, 12, tzinfo=UTC))


def translate(mapping: dict[str, Any], payload: Any, **options: Any) -> Translation:
    return adapter(mapping, **options).translate(delivery(payload), NoLookup())


def canonical(mapping: dict[str, Any], payload: Any, **options: Any) -> list[dict[str, Any]]:
    result = translate(mapping, payload, **options)
    return [order.model_dump(mode="json", exclude_unset=True) for order in result.orders]


def error(mapping: dict[str, Any], payload: Any, **options: Any) -> str:
    with pytest.raises(TranslationError) as caught:
        translate(mapping, payload, **options)
    return str(caught.value)


ORDER = {"id": 501, "total": 1250, "currency": "usd", "email": " Ann@Example.com "}

CASES = [
    pytest.param(
        {},
        ORDER,
        {
            "orderId": "501",
            "totalCents": 1250,
            "currency": "USD",
            "customer": {"email": "ann@example.com"},
        },
        id="minimal: integer id as text, currency and email normalised",
    ),
    pytest.param(
        {
            "orderNumber": "number",
            "orderedAt": "created",
            "updatedAt": "updated",
            "refundAmountCents": "refunded",
            "customer": {
                "email": "email",
                "externalId": "buyer.id",
                "firstName": "buyer.first",
                "lastName": "buyer.last",
                "attributes": "{plan: buyer.plan}",
            },
            "customerTotals": {"ordersCount": "buyer.orders", "totalSpentCents": "buyer.spent"},
            "properties": "{channel: channel, coupon: coupon}",
        },
        {
            **ORDER,
            "number": "#1042",
            "created": 1780315200,
            "updated": "2026-06-01T14:00:00+02:00",
            "refunded": 0,
            "channel": "pos",
            "coupon": None,
            "buyer": {"id": 77, "first": "Ann", "last": " Lee ", "plan": "gold", "orders": 3, "spent": 9900},
        },
        {
            "orderId": "501",
            "orderNumber": "#1042",
            "totalCents": 1250,
            "currency": "USD",
            "orderedAt": "2026-06-01T12:00:00Z",
            "updatedAt": "2026-06-01T12:00:00Z",
            "refundAmountCents": 0,
            "customer": {
                "email": "ann@example.com",
                "externalId": "77",
                "firstName": "Ann",
                "lastName": "Lee",
                "attributes": {"plan": "gold"},
            },
            "customerTotals": {"ordersCount": 3, "totalSpentCents": 9900},
            "properties": {"channel": "pos", "coupon": None},
        },
        id="every top-level field; Unix seconds and offsets become UTC",
    ),
    pytest.param(
        {
            "money": "decimal",
            "refundAmountCents": "refunded",
            "items": {"each": "lines", "productId": "sku", "title": "name", "quantity": "qty", "priceCents": "price"},
        },
        {
            **ORDER,
            "total": "88.50",
            "refunded": 20.1,
            "lines": [{"sku": "P-1", "name": "Protein", "qty": 2, "price": 44.25}],
        },
        {
            "orderId": "501",
            "totalCents": 8850,
            "currency": "USD",
            "refundAmountCents": 2010,
            "customer": {"email": "ann@example.com"},
            "items": [{"productId": "P-1", "title": "Protein", "quantity": 2, "priceCents": 4425}],
        },
        id="decimal money: strings and JSON numbers, exactly",
    ),
    pytest.param(
        {"money": "decimal"},
        {**ORDER, "total": "1500", "currency": "JPY"},
        {"orderId": "501", "totalCents": 1500, "currency": "JPY", "customer": {"email": "ann@example.com"}},
        id="decimal money: JPY has no minor unit",
    ),
    pytest.param(
        {"money": "decimal", "currency": "'KWD'"},
        {**ORDER, "total": "1.5", "currency": None},
        {"orderId": "501", "totalCents": 1500, "currency": "KWD", "customer": {"email": "ann@example.com"}},
        id="decimal money: KWD has three decimals; a literal currency",
    ),
    pytest.param(
        {
            "items": {
                "each": "lines",
                "productId": "product.id",
                "variantId": "variant.id",
                "sku": "sku",
                "title": "product.name",
                "variantTitle": "variant.name",
                "quantity": "qty",
                "priceCents": "unit",
            }
        },
        {
            **ORDER,
            "lines": [
                {"product": {"id": 9, "name": "Mug"}, "variant": {"id": 91, "name": "Blue"}, "sku": "", "qty": 1},
                {"product": {"id": 8, "name": "Tea"}, "variant": None, "sku": "T-8", "qty": 3, "unit": 400},
            ],
        },
        {
            "orderId": "501",
            "totalCents": 1250,
            "currency": "USD",
            "customer": {"email": "ann@example.com"},
            "items": [
                {"productId": "9", "variantId": "91", "title": "Mug", "variantTitle": "Blue", "quantity": 1},
                {"productId": "8", "sku": "T-8", "title": "Tea", "quantity": 3, "priceCents": 400},
            ],
        },
        id="items projection: per-item expressions, absent values left out",
    ),
    pytest.param(
        {"items": {"each": "lines", "productId": "id", "title": "name", "quantity": "qty"}},
        {**ORDER, "lines": []},
        {"orderId": "501", "totalCents": 1250, "currency": "USD", "customer": {"email": "ann@example.com"}},
        id="no items: the field is left out (the ledger keeps what it knows)",
    ),
    pytest.param(
        {"status": {"expression": "state", "values": {"completed": "fulfilled", "3": "cancelled", "true": "refunded"}}},
        {**ORDER, "state": 3},
        {
            "orderId": "501",
            "status": "cancelled",
            "totalCents": 1250,
            "currency": "USD",
            "customer": {"email": "ann@example.com"},
        },
        id="status map: a JSON number matches its text",
    ),
    pytest.param(
        {},
        {**ORDER, "email": None},
        {"orderId": "501", "totalCents": 1250, "currency": "USD", "customer": None},
        id="no email: no customer (the engine records a warning)",
    ),
]


@pytest.mark.parametrize(("mapping", "payload", "expected"), CASES)
def test_payload_becomes_exact_canonical_order(mapping: dict[str, Any], payload: Any, expected: Any) -> None:
    assert canonical(mapping, payload) == [expected]


def test_several_orders_from_one_delivery_skip_unmapped_statuses_with_a_warning() -> None:
    mapping = {
        "orders": "batch.orders[]",
        "status": {"expression": "state", "values": {"paid": "placed", "void": "cancelled"}},
    }
    payload = {
        "batch": {
            "orders": [
                {**ORDER, "state": "paid"},
                {**ORDER, "id": 502, "state": "draft"},
                {**ORDER, "id": 503, "state": "void", "email": "bo@example.com"},
            ]
        }
    }
    result = translate(mapping, payload)
    assert [(o.orderId, o.status, o.customer.email if o.customer else None) for o in result.orders] == [
        ("501", "placed", "ann@example.com"),
        ("503", "cancelled", "bo@example.com"),
    ]
    assert result.warnings == ["order 1 skipped: status 'draft' is not mapped (mapping.status)"]


def test_unmapped_status_is_ignored_at_intake_naming_the_value() -> None:
    source = adapter({"status": {"expression": "state", "values": {"paid": "placed"}}})
    intake = source.intake(delivery({**ORDER, "state": "on-hold"}))
    assert (intake.action, intake.reason) == ("ignore", "status 'on-hold' is not mapped (mapping.status)")
    assert source.intake(delivery({**ORDER, "state": None})).reason == "status 'null' is not mapped (mapping.status)"


def test_topic_from_header_or_body_decides_what_is_handled() -> None:
    by_header = adapter({}, topic={"header": "X-Event", "handled": ["order.paid"]})
    assert by_header.intake(delivery(ORDER, {"x-event": "order.paid"})).action == "queue"
    ignored = by_header.intake(delivery(ORDER, {"x-event": "order.viewed"}))
    assert (ignored.action, ignored.topic, ignored.reason) == (
        "ignore",
        "order.viewed",
        "event type 'order.viewed' is not handled by this source",
    )
    assert by_header.intake(delivery(ORDER)).reason == "no event type is not handled by this source"
    by_body = adapter({}, topic={"expression": "event.name", "handled": ["paid"]})
    assert by_body.intake(delivery({**ORDER, "event": {"name": "paid"}})).topic == "paid"


@pytest.mark.parametrize(
    ("options", "headers", "payload", "key"),
    [
        ({}, {}, b'{"id": 1}', None),
        ({"delivery_key": {"header": "X-Delivery"}}, {"x-delivery": "d-77"}, b'{"id": 1}', "d-77"),
        ({"delivery_key": {"expression": "event_id"}}, {}, b'{"id": 1, "event_id": 9}', "9"),
        ({"delivery_key": {"expression": "event_id"}}, {}, b'{"id": 1}', None),
    ],
    ids=["body hash by default", "header", "expression", "expression gives nothing: body hash"],
)
def test_delivery_key(options: dict[str, Any], headers: dict[str, str], payload: bytes, key: str | None) -> None:
    expected = key or hashlib.sha256(payload).hexdigest()
    assert adapter({}, **options).intake(delivery(payload, headers)).dedup_key == expected


@pytest.mark.parametrize(
    ("mapping", "payload", "message"),
    [
        pytest.param(
            {},
            {**ORDER, "id": None},
            "orderId (expression 'id'): is required, and the expression gave nothing",
            id="required field absent",
        ),
        pytest.param(
            {},
            {**ORDER, "total": "12.50"},
            "totalCents (expression 'total'): Input should be a valid integer",
            id="minor units given as a string",
        ),
        pytest.param(
            {},
            {**ORDER, "total": -5},
            "totalCents (expression 'total'): Input should be greater than or equal to 0",
            id="negative total",
        ),
        pytest.param(
            {"money": "decimal"},
            {**ORDER, "total": "12.345"},
            "totalCents (expression 'total'): more decimals than USD allows",
            id="decimal amount finer than the currency",
        ),
        pytest.param(
            {"money": "decimal"},
            {**ORDER, "total": "twelve"},
            "totalCents (expression 'total'): not a decimal number",
            id="decimal amount not a number",
        ),
        pytest.param(
            {"money": "decimal"},
            {**ORDER, "currency": None},
            "totalCents (expression 'total'): decimal money needs a currency, and the currency expression gave nothing",
            id="decimal amount without a currency",
        ),
        pytest.param(
            {},
            {**ORDER, "currency": "XYZ"},
            "currency (expression 'currency'): not an ISO 4217 currency code",
            id="unknown currency",
        ),
        pytest.param(
            {},
            {**ORDER, "currency": 840},
            "currency (expression 'currency'): must be a currency code string",
            id="currency not a string",
        ),
        pytest.param(
            {},
            {**ORDER, "email": "not-an-email"},
            "customer.email (expression 'email'): not a valid email address: An email address must have an @-sign.",
            id="invalid email",
        ),
        pytest.param(
            {"refundAmountCents": "refunded"},
            {**ORDER, "refunded": 2000},
            "refundAmountCents (expression 'refunded'): must not exceed totalCents (1250)",
            id="refund over the total",
        ),
        pytest.param(
            {"orderedAt": "created"},
            {**ORDER, "created": "yesterday"},
            "orderedAt (expression 'created'): not an ISO 8601 timestamp",
            id="time not ISO 8601",
        ),
        pytest.param(
            {"updatedAt": "updated"},
            {**ORDER, "updated": 10**20},
            "updatedAt (expression 'updated'): out of range for Unix seconds",
            id="Unix time out of range",
        ),
        pytest.param(
            {"properties": "extra"},
            {**ORDER, "extra": ["a"]},
            "properties (expression 'extra'): Input should be a valid dictionary",
            id="properties not an object",
        ),
        pytest.param(
            {"totalCents": "length(total)"},
            ORDER,
            "totalCents (expression 'length(total)'): length() expects string, array, object, got number",
            id="expression fails on this payload",
        ),
        pytest.param(
            {"customer": {"email": "abs(email)"}},
            ORDER,
            "customer.email (expression 'abs(email)'): abs() expects number, got string",
            id="a failing expression does not quote the value (personal data)",
        ),
        pytest.param(
            {"items": {"each": "lines", "productId": "id", "title": "name", "quantity": "qty"}},
            {**ORDER, "lines": [{"id": 1, "name": "A", "qty": 1}, {"id": 2, "name": "B", "qty": 0}]},
            "items[1].quantity (expression 'qty' on each of 'lines'): Input should be greater than or equal to 1",
            id="one item invalid",
        ),
        pytest.param(
            {"items": {"each": "lines", "productId": "id", "title": "name", "quantity": "qty"}},
            {**ORDER, "lines": [{"id": 1, "qty": 1}]},
            "items[0].title (expression 'name' on each of 'lines'): is required, and the expression gave nothing",
            id="item field absent",
        ),
        pytest.param(
            {
                "money": "decimal",
                "items": {"each": "l", "productId": "id", "title": "n", "quantity": "q", "priceCents": "p"},
            },
            {**ORDER, "l": [{"id": 1, "n": "A", "q": 1, "p": "1.001"}]},
            "items[0].priceCents (expression 'p' on each of 'l'): more decimals than USD allows",
            id="item price finer than the currency",
        ),
        pytest.param(
            {"items": {"each": "lines", "productId": "id", "title": "name", "quantity": "qty"}},
            {**ORDER, "lines": "P-1 x2"},
            "items (expression 'lines'): must give a list of objects",
            id="items not a list",
        ),
        pytest.param(
            {"orders": "orders"},
            {"orders": {"id": 1}},
            "orders (expression 'orders'): must give a list of objects",
            id="orders not a list",
        ),
        pytest.param(
            {"orders": "orders"},
            {"orders": [ORDER, {**ORDER, "id": None}]},
            "order 1: orderId (expression 'id'): is required, and the expression gave nothing",
            id="one of several orders invalid",
        ),
        pytest.param({}, b"webhook_id=12", "the body is not JSON", id="body not JSON"),
    ],
)
def test_error_names_field_and_expression(mapping: dict[str, Any], payload: Any, message: str) -> None:
    assert error(mapping, payload) == message


def test_failed_mapping_ends_dead_and_replays_after_the_config_is_fixed(make_harness: Any) -> None:
    unsigned = {"scheme": "none", "allow_unsigned": True}
    broken = make_harness(sources={"shop": {"type": "custom", "signature": unsigned, "mapping": BASE}})
    body = json.dumps({**ORDER, "total": "12.50"})
    job_id = broken.client.post("/webhooks/shop", content=body).json()["jobId"]
    broken.drain()
    job = broken.job(job_id)
    assert (job["status"], job["attempts"], job["error"]) == (
        "dead",
        1,
        "TranslationError: totalCents (expression 'total'): Input should be a valid integer",
    )
    # The merchant fixes the mapping (amounts are decimal strings) and replays: the stored body is used.
    fixed_mapping = {**BASE, "money": "decimal"}
    fixed: Harness = make_harness(sources={"shop": {"type": "custom", "signature": unsigned, "mapping": fixed_mapping}})
    assert fixed.client.post(f"/api/v1/jobs/{job_id}/replay", headers=fixed.headers).status_code == 202
    fixed.drain()
    assert fixed.job(job_id)["status"] == "done"
    assert fixed.attributes("ann@example.com")["totalSpent"] == 12.5
