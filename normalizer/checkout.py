"""Checkouts and back-in-stock requests: what `POST /api/v1/checkouts` and `POST /api/v1/back-in-stock` accept,
and what native checkout webhooks are translated into."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from normalizer.catalog import Text, Url
from normalizer.model import Cents, Currency, Customer, Id, Item, RequiredId, _Strict


class Checkout(_Strict):
    checkoutId: RequiredId
    totalCents: Cents | None = None
    currency: Currency | None = None
    checkoutUrl: Url | None = None
    customer: Customer
    items: Annotated[list[Item], Field(max_length=10_000)] = Field(default_factory=list)
    properties: dict[str, Any] = Field(default_factory=dict)


class NativeCheckout(Checkout):
    """A checkout from a platform webhook: `completed` when the platform says it became an order; `updatedAt`
    orders its updates (deliveries arrive in any order)."""

    completed: bool = False
    updatedAt: datetime | None = None


class BackInStockRequest(_Strict):
    productId: RequiredId
    variantId: Id = None
    productTitle: Text | None = None
    variantTitle: Text | None = None
    customer: Customer
