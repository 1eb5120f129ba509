"""Helpers for lifecycle tests: catalog posts, automations and events read through the API."""

from datetime import UTC, datetime, timedelta
from typing import Any

from normalizer.timefmt import format_instant
from tests.conftest import Harness

PROTEIN = "SKU-PROTEIN-1KG"
DAY = timedelta(days=1)


def iso(moment: datetime) -> str:
    return format_instant(moment)


def recent(days_ago: float = 0, hours: float = 0) -> datetime:
    """A moment near now (orders the lifecycle treats as current), at a whole second."""
    return (datetime.now(UTC) - days_ago * DAY + timedelta(hours=hours)).replace(microsecond=0)


def post_products(harness: Harness, *products: dict[str, Any]) -> dict[str, Any]:
    response = harness.client.post("/api/v1/products", json={"products": list(products)}, headers=harness.headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def automations(harness: Harness, email: str = "buyer@example.com") -> list[dict[str, Any]]:
    response = harness.get(f"/api/v1/subscribers/{email}/automations")
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["automations"]
    return found


def active(harness: Harness, email: str = "buyer@example.com") -> list[dict[str, Any]]:
    return [a for a in automations(harness, email) if a["status"] == "active"]


def named(harness: Harness, name: str, email: str = "buyer@example.com") -> list[dict[str, Any]]:
    return [event["properties"] for event in harness.events(email) if event["name"] == name]
