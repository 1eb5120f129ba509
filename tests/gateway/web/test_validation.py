"""Every validation rule and error case of POST /api/v1/orders (docs/api.md), one case per row and rule."""

import json
from typing import Any

import pytest

from tests.conftest import API_KEY, Harness, order


def _without(body: dict[str, Any], *path: str) -> dict[str, Any]:
    copy = json.loads(json.dumps(body))
    target = copy
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return copy


def _with(path: str, value: Any) -> dict[str, Any]:
    body = order()
    target: Any = body
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if key.isdigit() else target[key]
    last = keys[-1]
    if last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value
    return body


INVALID = [
    ("missing orderId", _without(order(), "orderId"), "orderId"),
    ("empty orderId", _with("orderId", "  "), "orderId"),
    ("orderId an object", _with("orderId", {"id": 1}), "orderId"),
    ("missing totalCents", _without(order(), "totalCents"), "totalCents"),
    ("totalCents as a string", _with("totalCents", "8850"), "totalCents"),
    ("totalCents as a float", _with("totalCents", 88.5), "totalCents"),
    ("totalCents as a whole float", _with("totalCents", 8850.0), "totalCents"),
    ("totalCents negative", _with("totalCents", -1), "totalCents"),
    ("totalCents a boolean", _with("totalCents", True), "totalCents"),
    ("missing currency", _without(order(), "currency"), "currency"),
    ("unknown currency", _with("currency", "ZZZ"), "currency"),
    ("currency without minor unit", _with("currency", "XAU"), "currency"),
    ("currency a number", _with("currency", 840), "currency"),
    ("unknown status", _with("status", "shipped"), "status"),
    ("status in capitals", _with("status", "PLACED"), "status"),
    ("orderedAt not ISO 8601", _with("orderedAt", "yesterday"), "orderedAt"),
    ("orderedAt a number", _with("orderedAt", 1780000000), "orderedAt"),
    ("missing customer", _without(order(), "customer"), "customer"),
    ("missing email", _without(order(), "customer", "email"), "customer.email"),
    ("empty email", _with("customer.email", "   "), "customer.email"),
    ("bad email", _with("customer.email", "buyer@"), "customer.email"),
    ("email without at", _with("customer.email", "buyer.example.com"), "customer.email"),
    ("unknown customer field", _with("customer.phone", "+1 555"), "customer.phone"),
    ("attributes not an object", _with("customer.attributes", ["vip"]), "customer.attributes"),
    ("items not a list", _with("items", {"productId": "A"}), "items"),
    ("item without productId", _without(order(), "items", 0, "productId"), "items.0.productId"),  # type: ignore[arg-type]
    ("item without title", _without(order(), "items", 0, "title"), "items.0.title"),  # type: ignore[arg-type]
    ("item without quantity", _without(order(), "items", 0, "quantity"), "items.0.quantity"),  # type: ignore[arg-type]
    ("quantity zero", _with("items.0.quantity", 0), "items.0.quantity"),
    ("quantity a string", _with("items.0.quantity", "2"), "items.0.quantity"),
    ("negative priceCents", _with("items.0.priceCents", -5), "items.0.priceCents"),
    ("priceCents a float", _with("items.0.priceCents", 44.25), "items.0.priceCents"),
    ("unknown item field", _with("items.0.color", "red"), "items.0.color"),
    ("refund over total", _with("refundAmountCents", 8851), "refundAmountCents"),
    ("totalCents over 10^15", _with("totalCents", 10**15 + 1), "totalCents"),
    ("totalCents of 2^62", _with("totalCents", 2**62), "totalCents"),
    (
        "refundAmountCents over 10^15",
        {**order(totalCents=10**15), "refundAmountCents": 10**15 + 1},
        "refundAmountCents",
    ),
    ("priceCents over 10^15", _with("items.0.priceCents", 10**15 + 1), "items.0.priceCents"),
    (
        "customerTotals over 10^15",
        _with("customerTotals", {"ordersCount": 1, "totalSpentCents": 10**15 + 1}),
        "customerTotals.totalSpentCents",
    ),
    ("negative refund", _with("refundAmountCents", -1), "refundAmountCents"),
    (
        "customerTotals negative",
        _with("customerTotals", {"ordersCount": -1, "totalSpentCents": 0}),
        "customerTotals.ordersCount",
    ),
    ("customerTotals missing a figure", _with("customerTotals", {"ordersCount": 3}), "customerTotals.totalSpentCents"),
    ("properties not an object", _with("properties", "gift"), "properties"),
    ("unknown top-level field", _with("discountCents", 100), "discountCents"),
]


@pytest.mark.parametrize(("case", "body", "field"), INVALID, ids=[case for case, _, _ in INVALID])
def test_rule_violation_is_422_naming_the_field(harness: Harness, case: str, body: Any, field: str) -> None:
    response = harness.post_order(body)
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["success"] is False
    assert error["error"]["code"] == "validation_error"
    assert error["error"]["message"]
    assert [d["field"] for d in error["error"]["details"]] == [field]
    assert all(d["message"] for d in error["error"]["details"])
    assert harness.drain() == 0  # nothing was queued


def test_every_problem_gets_its_own_detail(harness: Harness) -> None:
    body = {"orderId": "", "totalCents": "1", "currency": "ZZZ", "customer": {"email": "x"}, "items": [{}]}
    details = harness.post_order(body).json()["error"]["details"]
    assert [d["field"] for d in details] == [
        "orderId",
        "totalCents",
        "currency",
        "customer.email",
        "items.0.productId",
        "items.0.title",
        "items.0.quantity",
    ]


@pytest.mark.parametrize(
    "header",
    [None, "Bearer wrong-key-0123456789", f"Basic {API_KEY}", "Bearer", f"bearer {API_KEY}x"],
)
def test_missing_or_invalid_key_is_401(harness: Harness, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = harness.client.post("/api/v1/orders", json=order(), headers=headers)
    assert response.status_code == 401
    assert response.json() == {
        "success": False,
        "error": {"code": "unauthorized", "message": response.json()["error"]["message"], "details": []},
    }


def test_key_scheme_is_case_insensitive(harness: Harness) -> None:
    response = harness.client.post("/api/v1/orders", json=order(), headers={"Authorization": f"bearer {API_KEY}"})
    assert response.status_code == 202


@pytest.mark.parametrize("body", [b"", b"{", b"not json", b'{"orderId": "a",}', b"\xff\xfe"])
def test_body_not_json_is_400(harness: Harness, body: bytes) -> None:
    response = harness.post_order(body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


@pytest.mark.parametrize("body", [b"[]", b"[{}]", b'"order"', b"42", b"null"])
def test_body_not_an_object_is_400(harness: Harness, body: bytes) -> None:
    response = harness.post_order(body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


def test_body_over_the_limit_is_413(make_harness: Any) -> None:
    harness = make_harness(max_body_bytes=2048)
    big = order(properties={"note": "x" * 4096})
    response = harness.post_order(big)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert harness.post_order(order()).status_code == 202  # under the limit still works


def test_body_over_the_limit_without_content_length_is_413(make_harness: Any) -> None:
    harness = make_harness(max_body_bytes=2048)

    def chunks() -> Any:
        yield json.dumps(order(properties={"note": "y" * 4096})).encode()

    response = harness.client.post("/api/v1/orders", content=chunks(), headers=harness.headers)
    assert response.status_code == 413


def test_default_limit_is_5_mib(harness: Harness) -> None:
    assert harness.config.max_body_bytes == 5 * 1024 * 1024
    response = harness.post_order(order(properties={"blob": "z" * (5 * 1024 * 1024)}))
    assert response.status_code == 413


def test_disk_full_is_503_with_retry_after_and_nothing_lost(harness: Harness) -> None:
    assert harness.post_order(order("before-full")).status_code == 202
    committer = harness.client.app.state.gateway.committer
    conn = committer._conn
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count={pages}")  # the database file may not grow: SQLITE_FULL
    response = harness.post_order(order("during-full", properties={"pad": "p" * 200_000}))
    assert response.status_code == 503
    assert response.headers["retry-after"].isdigit()
    assert response.json()["error"]["code"] == "unavailable"
    conn.execute("PRAGMA max_page_count=4294967294")
    assert harness.post_order(order("after-full")).status_code == 202
    harness.drain()
    with harness.db() as db:
        ids = {row[0] for row in db.execute("SELECT order_id FROM orders")}
    assert ids == {"before-full", "after-full"}


def test_normalisation_of_accepted_input(harness: Harness) -> None:
    body = order(currency="eur", orderedAt="2026-06-01T14:00:00+02:00")
    body["customer"]["email"] = "  Buyer@Example.COM "
    body["items"][0]["productId"] = 123456789012345678
    assert harness.post_order(body).status_code == 202
    harness.drain()
    stored = harness.get("/api/v1/orders/order-1001").json()
    assert stored["currency"] == "EUR"
    assert stored["email"] == "buyer@example.com"
    assert stored["orderedAt"] == "2026-06-01T12:00:00.000Z"
    assert stored["items"][0]["productId"] == "123456789012345678"


def test_timestamp_without_offset_is_utc(harness: Harness) -> None:
    harness.post_order(order(orderedAt="2026-06-01T12:00:00"))
    harness.drain()
    assert harness.get("/api/v1/orders/order-1001").json()["orderedAt"] == "2026-06-01T12:00:00.000Z"


def test_defaults(harness: Harness) -> None:
    body = {"orderId": "o-min", "totalCents": 0, "currency": "USD", "customer": {"email": "min@example.com"}}
    accepted = harness.post_order(body).json()
    assert accepted["status"] == "placed"
    harness.drain()
    stored = harness.get("/api/v1/orders/o-min").json()
    assert stored["status"] == "placed" and stored["items"] == [] and stored["orderNumber"] is None
    assert stored["orderedAt"].endswith("Z")


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/api/v1/nothing", 404, "not_found"),
        ("GET", "/api/v1/orders", 405, "method_not_allowed"),
        ("DELETE", "/api/v1/orders/order-1001", 405, "method_not_allowed"),
    ],
)
def test_routing_errors_have_the_error_shape(harness: Harness, method: str, path: str, status: int, code: str) -> None:
    response = harness.client.request(method, path, headers=harness.headers)
    assert response.status_code == status
    assert response.json()["success"] is False
    assert response.json()["error"]["code"] == code


def test_explicit_nulls_for_optional_fields_are_accepted(harness: Harness) -> None:
    body = order(orderNumber=None, refundAmountCents=None, customerTotals=None)
    body["customer"].update(externalId=None, firstName=None, lastName=None)
    body["items"][0].update(variantId=None, sku=None, variantTitle=None, priceCents=None)
    assert harness.post_order(body).status_code == 202
    harness.drain()
    assert harness.attributes("buyer@example.com")["ordersCount"] == 1


def test_identifier_over_255_characters_is_422(harness: Harness) -> None:
    response = harness.post_order(order(orderNumber="9" * 256))
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "orderNumber"


def test_empty_optional_identifiers_count_as_absent(harness: Harness) -> None:
    body = order(orderNumber="")
    body["customer"]["externalId"] = " "
    body["items"][0].update(sku="", variantId="")
    assert harness.post_order(body).status_code == 202
    harness.drain()
    stored = harness.get("/api/v1/orders/order-1001").json()
    assert stored["orderNumber"] is None
    assert "sku" not in stored["items"][0] and "variantId" not in stored["items"][0]
