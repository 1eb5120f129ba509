"""The engine semantics of docs/api.md through the real API and worker, with exact figures in cents."""

from typing import Any

from tests.conftest import Harness, order

EMAIL = "buyer@example.com"


def push(harness: Harness, order_id: str, **fields: Any) -> str:
    response = harness.post_order(order(order_id, **fields))
    assert response.status_code == 202, response.text
    job_id: str = response.json()["jobId"]
    return job_id


def figures(harness: Harness, email: str = EMAIL) -> tuple[int, float, float, float]:
    a = harness.attributes(email)
    assert a["ltv"] == a["totalSpent"]
    return a["ordersCount"], a["totalSpent"], a["aov"], a["ltv"]


def names(harness: Harness, email: str = EMAIL) -> list[str]:
    return [event["name"] for event in harness.events(email)]


def test_two_orders(harness: Harness) -> None:
    push(harness, "A", totalCents=8850)
    push(harness, "B", totalCents=4150)
    harness.drain()
    assert figures(harness) == (2, 130.0, 65.0, 130.0)


def test_aov_rounds_to_the_cent(harness: Harness) -> None:
    for order_id in ("A", "B", "C"):
        push(harness, order_id, totalCents=1000)
    push(harness, "D", totalCents=1)
    harness.drain()
    assert figures(harness) == (4, 30.01, 7.5, 30.01)  # 3001 / 4 = 750.25 cents -> 7.50


def test_partial_then_full_refund(harness: Harness) -> None:
    push(harness, "A", totalCents=10000)
    push(harness, "B", totalCents=2000)
    harness.drain()
    push(harness, "A", totalCents=10000, status="refunded", refundAmountCents=2500)
    harness.drain()
    assert figures(harness) == (2, 95.0, 47.5, 95.0)
    push(harness, "A", totalCents=10000, status="refunded", refundAmountCents=10000)
    harness.drain()
    assert figures(harness) == (2, 20.0, 10.0, 20.0)
    refunds = [e["properties"]["refundAmountCents"] for e in harness.events(EMAIL) if e["name"].endswith("refunded")]
    assert refunds == [2500, 10000]
    stored = harness.get("/api/v1/orders/A").json()
    assert (stored["status"], stored["refundedCents"]) == ("refunded", 10000)


def test_smaller_refund_after_a_larger_one_keeps_the_largest(harness: Harness) -> None:
    push(harness, "A", totalCents=10000, status="refunded", refundAmountCents=6000)
    push(harness, "A", totalCents=10000, status="refunded", refundAmountCents=1000)
    harness.drain()
    assert harness.get("/api/v1/orders/A").json()["refundedCents"] == 6000
    assert figures(harness) == (1, 40.0, 40.0, 40.0)


def test_refunded_without_amount_is_a_full_refund(harness: Harness) -> None:
    push(harness, "A", totalCents=5000)
    body = order("A", totalCents=5000, status="refunded")
    harness.post_order(body)
    harness.drain()
    assert figures(harness) == (1, 0.0, 0.0, 0.0)


def test_cancellation(harness: Harness) -> None:
    push(harness, "A", totalCents=8850)
    push(harness, "B", totalCents=4150)
    harness.drain()
    push(harness, "B", totalCents=4150, status="cancelled")
    harness.drain()
    assert figures(harness) == (1, 88.5, 88.5, 88.5)
    assert names(harness) == ["ecommerce.order_placed", "ecommerce.order_placed", "ecommerce.order_cancelled"]
    # A placed event arriving after the cancellation (a retry) never revives the order.
    push(harness, "B", totalCents=4150)
    harness.drain()
    assert figures(harness) == (1, 88.5, 88.5, 88.5)
    assert harness.get("/api/v1/orders/B").json()["status"] == "cancelled"


def test_refund_arriving_before_its_order(harness: Harness) -> None:
    push(harness, "A", totalCents=10000, status="refunded", refundAmountCents=3000)
    harness.drain()
    # The order exists from its first event, and counts: it was placed somewhere.
    assert figures(harness) == (1, 70.0, 70.0, 70.0)
    push(harness, "A", totalCents=10000)
    harness.drain()
    assert figures(harness) == (1, 70.0, 70.0, 70.0)
    assert names(harness) == ["ecommerce.order_refunded", "ecommerce.order_placed"]
    stored = harness.get("/api/v1/orders/A").json()
    assert (stored["status"], stored["refundedCents"], stored["totalCents"]) == ("refunded", 3000, 10000)


def test_fulfilled(harness: Harness) -> None:
    push(harness, "A", totalCents=8850)
    push(harness, "A", totalCents=8850, status="fulfilled")
    push(harness, "A", totalCents=8850, status="fulfilled")
    harness.drain()
    assert harness.get("/api/v1/orders/A").json()["status"] == "fulfilled"
    assert names(harness) == ["ecommerce.order_placed", "ecommerce.order_fulfilled"]
    assert figures(harness) == (1, 88.5, 88.5, 88.5)


def test_customer_totals_then_a_later_order(harness: Harness) -> None:
    push(harness, "A", totalCents=5000, customerTotals={"ordersCount": 10, "totalSpentCents": 100000})
    harness.drain()
    assert figures(harness) == (10, 1000.0, 100.0, 1000.0)
    push(harness, "B", totalCents=3000)
    harness.drain()
    assert figures(harness) == (11, 1030.0, 93.64, 1030.0)  # 103000 / 11 = 9363.6 cents
    # A refund of an order the baseline included lowers the totals too.
    push(harness, "A", totalCents=5000, status="refunded", refundAmountCents=1000)
    harness.drain()
    assert figures(harness) == (11, 1020.0, 92.73, 1020.0)
    # A newer baseline replaces the old one.
    push(harness, "C", totalCents=2000, customerTotals={"ordersCount": 20, "totalSpentCents": 250000})
    harness.drain()
    assert figures(harness) == (20, 2500.0, 125.0, 2500.0)


def test_foreign_currency_with_a_rate(harness: Harness) -> None:
    push(harness, "A", totalCents=10000, currency="EUR")  # 100.00 EUR x 1.08
    push(harness, "B", totalCents=1000)
    harness.drain()
    assert figures(harness) == (2, 118.0, 59.0, 118.0)
    assert harness.get("/api/v1/orders/A").json()["currency"] == "EUR"


def test_foreign_currency_without_a_rate(harness: Harness) -> None:
    job = push(harness, "A", totalCents=5000, currency="GBP")
    push(harness, "B", totalCents=1000)
    harness.drain()
    assert figures(harness) == (1, 10.0, 10.0, 10.0)
    warnings = harness.job(job)["warnings"]
    assert len(warnings) == 1 and "GBP" in warnings[0] and "fx_rates" in warnings[0]
    stored = harness.get("/api/v1/orders/A").json()
    assert (stored["totalCents"], stored["currency"]) == (5000, "GBP")  # kept in the ledger


def test_currency_exponents_in_conversion(make_harness: Any) -> None:
    harness = make_harness(currency="KWD", fx_rates={"JPY": 0.002, "USD": 0.3})
    push(harness, "A", totalCents=15000, currency="JPY")  # 15000 JPY -> 30.000 KWD
    push(harness, "B", totalCents=1050, currency="USD")  # 10.50 USD -> 3.150 KWD
    push(harness, "C", totalCents=1234, currency="KWD")  # 1.234 KWD
    harness.drain()
    assert figures(harness) == (3, 34.384, 11.461, 34.384)


def test_revenue_attributes_cannot_be_set_by_a_client(harness: Harness) -> None:
    customer = {"email": EMAIL, "attributes": {"ltv": 99999, "ordersCount": 50, "tier": "gold"}}
    job = push(harness, "A", totalCents=1000, customer=customer)
    harness.drain()
    attributes = harness.attributes(EMAIL)
    assert attributes == {"tier": "gold", "ltv": 10.0, "totalSpent": 10.0, "ordersCount": 1, "aov": 10.0}
    assert any("ltv" in w and "ordersCount" in w for w in harness.job(job)["warnings"])


def test_subscriber_upsert_merges(harness: Harness) -> None:
    first = {
        "email": EMAIL,
        "firstName": "Jane",
        "lastName": "Doe",
        "externalId": "c-1",
        "attributes": {"channel": "tiktok", "tier": "silver"},
    }
    push(harness, "A", totalCents=1000, customer=first)
    harness.drain()
    second = {"email": EMAIL, "firstName": "", "lastName": "Roe", "attributes": {"tier": None, "vip": True}}
    push(harness, "B", totalCents=1000, customer=second)
    harness.drain()
    subscriber = harness.subscriber(EMAIL)
    assert (subscriber["firstName"], subscriber["lastName"], subscriber["externalId"]) == ("Jane", "Roe", "c-1")
    custom = {k: v for k, v in subscriber["attributes"].items() if k not in {"ltv", "totalSpent", "ordersCount", "aov"}}
    assert custom == {"channel": "tiktok", "vip": True}
    assert subscriber["createdAt"] <= subscriber["updatedAt"]


def test_event_properties_reserved_keys_win(harness: Harness) -> None:
    push(harness, "A", orderNumber="#1001", properties={"orderId": "spoof", "provider": "x", "campaign": "bf"})
    harness.drain()
    (event,) = harness.events(EMAIL)
    props = event["properties"]
    assert props["campaign"] == "bf"
    assert (props["orderId"], props["provider"], props["source"], props["status"]) == ("A", "api", "api", "placed")
    assert (props["orderNumber"], props["totalCents"], props["currency"]) == ("#1001", 8850, "USD")
    assert props["orderedAt"] == "2026-06-01T12:00:00.000Z"
    assert props["lineItems"] == [
        {
            "productId": "SKU-PROTEIN-1KG",
            "variantId": "SKU-PROTEIN-1KG-VANILLA",
            "title": "Protein Powder",
            "variantTitle": "Vanilla",
            "quantity": 2,
            "priceCents": 4425,
        },
    ]
    assert "refundAmountCents" not in props


def test_customer_email_change_moves_the_order(harness: Harness) -> None:
    push(harness, "A", totalCents=1000)
    harness.drain()
    push(harness, "A", totalCents=1000, customer={"email": "new@example.com"})
    harness.drain()
    assert figures(harness)[:2] == (0, 0.0)
    assert figures(harness, "new@example.com")[:2] == (1, 10.0)


def test_read_api_unknown_ids_are_404(harness: Harness) -> None:
    for path in (
        "/api/v1/orders/nope",
        "/api/v1/jobs/nope",
        "/api/v1/subscribers/nobody@example.com",
        "/api/v1/subscribers/nobody@example.com/events",
    ):
        response = harness.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    push(harness, "A")
    harness.drain()
    assert harness.get("/api/v1/orders/A", source="my-shop").status_code == 404


def test_order_read_shape(harness: Harness) -> None:
    push(harness, "A", orderNumber="1001")
    harness.drain()
    assert harness.get("/api/v1/orders/A").json() == {
        "source": "api",
        "orderId": "A",
        "orderNumber": "1001",
        "status": "placed",
        "totalCents": 8850,
        "refundedCents": 0,
        "currency": "USD",
        "cancelled": False,
        "fulfilled": False,
        "email": EMAIL,
        "items": order()["items"],
        "orderedAt": "2026-06-01T12:00:00.000Z",
    }


def test_hooks_see_every_applied_order_in_the_same_transaction(harness: Harness) -> None:
    seen: list[tuple[str, str, bool, int | None]] = []

    def hook(conn: Any, applied: Any, now: int) -> None:
        assert conn.in_transaction
        seen.append((applied.order.orderId, applied.after.status, applied.before is None, applied.event_id))

    harness.worker.engine.add_hook(hook)
    push(harness, "A", totalCents=1000)
    push(harness, "A", totalCents=1000)
    push(harness, "A", totalCents=1000, status="cancelled")
    harness.drain()
    assert [s[:3] for s in seen] == [("A", "placed", True), ("A", "placed", False), ("A", "cancelled", False)]
    assert seen[0][3] is not None and seen[1][3] is None  # the duplicate fired no event


def test_object_valued_attributes_are_replaced_not_merged(harness: Harness) -> None:
    push(harness, "A", customer={"email": EMAIL, "attributes": {"prefs": {"size": "M", "color": "red"}, "tier": "x"}})
    push(harness, "B", customer={"email": EMAIL, "attributes": {"prefs": {"size": "L"}}})
    push(harness, "C", customer={"email": EMAIL, "attributes": {"tier": "y", "tags": ["a", "b"]}})
    harness.drain()
    custom = {
        k: v for k, v in harness.attributes(EMAIL).items() if k not in {"ltv", "totalSpent", "ordersCount", "aov"}
    }
    assert custom == {"prefs": {"size": "L"}, "tier": "y", "tags": ["a", "b"]}
    assert figures(harness) == (3, 265.5, 88.5, 265.5)
