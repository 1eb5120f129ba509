"""The worker reads a Push Order back from its job with `StoredOrder`: for every body the API accepts, that must
give the very order the API validated (same values, same fields given), or the engine would see another order."""

from typing import Any

import pytest

from normalizer import PushOrder, StoredOrder
from tests.conftest import order

BODIES: list[dict[str, Any]] = [
    order(),
    order("  1001  ", orderNumber=1001, currency="usd", orderedAt="2026-06-01T14:00:00+02:00"),
    order(status="refunded", refundAmountCents=4425, items=[]),
    order(customer={"email": "  Jane.Doe@Example.COM ", "externalId": 42, "lastName": " Doe "}),
    order(customerTotals={"ordersCount": 3, "totalSpentCents": 12000}, properties={"channel": "pos"}),
    {k: v for k, v in order(status="fulfilled").items() if k not in ("items", "orderedAt")},
    order(items=[{"productId": 7, "title": "Mug", "quantity": 1, "sku": " ", "variantId": 70, "priceCents": 0}]),
]


@pytest.mark.parametrize("body", BODIES)
def test_stored_order_reads_back_what_the_api_validated(body: dict[str, Any]) -> None:
    accepted = PushOrder.model_validate(body)
    stored = accepted.model_dump_json(exclude_unset=True)
    read = StoredOrder.model_validate_json(stored)
    assert read.model_dump() == accepted.model_dump()
    assert read.model_fields_set == accepted.model_fields_set
    assert read.customer.model_fields_set == accepted.customer.model_fields_set
    assert read.refunded_cents == accepted.refunded_cents
