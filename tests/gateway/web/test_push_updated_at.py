"""`updatedAt` on the Push Order API: the platform's update time orders an order's events, so a late retry of an
older state does not overwrite a newer one (without it, events are ordered by arrival)."""

from typing import Any

from tests.conftest import Harness


def _order(total: int, updated_at: str | None, **fields: Any) -> dict[str, Any]:
    order = {"orderId": "late-1", "totalCents": total, "currency": "USD", "customer": {"email": "lou@example.com"}}
    return order | ({"updatedAt": updated_at} if updated_at else {}) | fields


def test_an_older_update_arriving_later_does_not_overwrite_a_newer_one(harness: Harness) -> None:
    newer = harness.post_order(_order(2000, "2026-06-01T12:05:00Z", orderNumber="#2"))
    assert newer.status_code == 202, newer.text
    harness.drain()
    older = harness.post_order(_order(1000, "2026-06-01T12:00:00+00:00", orderNumber="#1"))
    assert older.status_code == 202, older.text
    harness.drain()
    assert harness.job(older.json()["jobId"])["status"] == "done"
    order = harness.get("/api/v1/orders/late-1", source="api").json()
    assert (order["totalCents"], order["orderNumber"]) == (2000, "#2")
    assert harness.attributes("lou@example.com")["totalSpent"] == 20.0


def test_without_updated_at_the_later_arrival_wins(harness: Harness) -> None:
    for total in (2000, 1000):
        assert harness.post_order(_order(total, None)).status_code == 202
        harness.drain()
    assert harness.get("/api/v1/orders/late-1", source="api").json()["totalCents"] == 1000


def test_updated_at_must_be_a_timestamp(harness: Harness) -> None:
    response = harness.post_order(_order(2000, "yesterday"))
    assert response.status_code == 422
    [detail] = response.json()["error"]["details"]
    assert detail["field"] == "updatedAt"
