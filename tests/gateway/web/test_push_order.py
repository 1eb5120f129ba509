"""POST /api/v1/orders end to end: the seed example, its refund, idempotency."""

from tests.conftest import Harness, order


def test_seed_example_then_full_refund(harness: Harness) -> None:
    accepted = harness.post_order(order())
    assert accepted.status_code == 202
    body = accepted.json()
    assert body["success"] is True and body["queued"] is True
    assert body["orderId"] == "order-1001" and body["status"] == "placed"
    assert body["jobId"].startswith("commerce-order-")
    assert harness.job(body["jobId"])["status"] == "queued"

    harness.drain()
    job = harness.job(body["jobId"])
    assert job["receivedAt"] <= job.pop("finishedAt")
    assert job.pop("receivedAt").endswith("Z")
    assert job == {
        "jobId": body["jobId"],
        "status": "done",
        "attempts": 1,
        "failedAttempts": [],
        "error": None,
        "warnings": [],
        "kind": "order",
        "source": "api",
        "topic": None,
        "nextAttemptAt": None,
        "produced": {"orders": [{"source": "api", "orderId": "order-1001"}], "events": ["ecommerce.order_placed"]},
    }
    subscriber = harness.subscriber("buyer@example.com")
    assert subscriber["firstName"] == "Jane"
    assert subscriber["attributes"] == {
        "acquisitionChannel": "tiktok",
        "ltv": 88.5,
        "totalSpent": 88.5,
        "ordersCount": 1,
        "aov": 88.5,
    }

    refund = {
        "orderId": "order-1001",
        "status": "refunded",
        "totalCents": 8850,
        "refundAmountCents": 8850,
        "currency": "USD",
        "customer": {"email": "buyer@example.com"},
    }
    assert harness.post_order(refund).json()["status"] == "refunded"
    harness.drain()
    attributes = harness.attributes("buyer@example.com")
    assert (attributes["totalSpent"], attributes["ordersCount"], attributes["aov"]) == (0, 1, 0)
    events = harness.events("buyer@example.com")
    assert [e["name"] for e in events] == ["ecommerce.order_placed", "ecommerce.order_refunded"]
    assert events[1]["properties"]["refundAmountCents"] == 8850
    # The refund left out items and orderedAt: the ledger's facts fill them in.
    assert events[1]["properties"]["lineItems"][0]["productId"] == "SKU-PROTEIN-1KG"
    assert events[1]["properties"]["orderedAt"] == "2026-06-01T12:00:00.000Z"

    stored = harness.get("/api/v1/orders/order-1001", source="api").json()
    assert stored["status"] == "refunded" and stored["refundedCents"] == 8850
    assert stored["items"][0]["quantity"] == 2


def test_same_order_pushed_twice_counts_once(harness: Harness) -> None:
    first = harness.post_order(order()).json()["jobId"]
    second = harness.post_order(order()).json()["jobId"]
    assert first != second
    harness.drain()
    assert harness.attributes("buyer@example.com")["ordersCount"] == 1
    assert harness.attributes("buyer@example.com")["totalSpent"] == 88.5
    assert [e["name"] for e in harness.events("buyer@example.com")] == ["ecommerce.order_placed"]
