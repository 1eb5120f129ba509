"""The canonical order (field table: docs/api.md, Push Order): the one model adapters produce and the engine consumes.

`PushOrder` is exactly what `POST /api/v1/orders` accepts. `CanonicalOrder` adds what only adapters know
(the platform's update time, refunds keyed by their platform id); the engine takes either.

Input rules, chosen once and documented in docs/api.md:
- unknown fields are rejected everywhere (a typo must not silently drop data);
- cents and quantities are JSON integers: strings, floats and booleans are rejected;
- identifiers (orderId, orderNumber, externalId, productId, variantId, sku) are strings; integers are accepted and
  turned into their decimal string; empty strings count as absent, except orderId, productId which are required.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from normalizer.emails import normalise_email
from normalizer.money import MAX_MINOR_UNITS, normalise_currency
from normalizer.timefmt import parse_instant

STATUSES = ("placed", "cancelled", "fulfilled", "refunded")
Status = Literal["placed", "cancelled", "fulfilled", "refunded"]
RESERVED_ATTRIBUTES = frozenset({"ltv", "totalSpent", "ordersCount", "aov"})


def _identifier(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _required_identifier(value: Any) -> Any:
    value = _identifier(value)
    if value is None:
        raise PydanticCustomError("missing", "must be a non-empty string")
    return value


def _normalised(
    normalise: Callable[[str], Any], code: str, expected: str, ready: type | None = None
) -> BeforeValidator:
    """A string normalised by `normalise`; its ValueError becomes the field's error message. Values already of
    type `ready` (a datetime an adapter built) pass as they are."""

    def check(value: Any) -> Any:
        if ready is not None and isinstance(value, ready):
            return value
        if not isinstance(value, str):
            raise PydanticCustomError(f"{code}_type", "must be {expected}", {"expected": expected})
        try:
            return normalise(value)
        except ValueError as exc:
            raise PydanticCustomError(code, str(exc)) from None

    return BeforeValidator(check)


Id = Annotated[Annotated[str, Field(max_length=255)] | None, BeforeValidator(_identifier)]
RequiredId = Annotated[str, BeforeValidator(_required_identifier), Field(max_length=255)]
Cents = Annotated[StrictInt, Field(ge=0, le=MAX_MINOR_UNITS)]
Instant = Annotated[datetime, _normalised(parse_instant, "datetime", "an ISO 8601 timestamp string", datetime)]
Email = Annotated[str, _normalised(normalise_email, "email", "a string")]
Currency = Annotated[str, _normalised(normalise_currency, "currency", "an ISO 4217 currency code string")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Customer(_Strict):
    email: Email
    externalId: Id = None
    firstName: str | None = Field(default=None, max_length=255)
    lastName: str | None = Field(default=None, max_length=255)
    attributes: dict[str, Any] = Field(default_factory=dict)

    @field_validator("firstName", "lastName", mode="before")
    @classmethod
    def _name(cls, value: Any) -> Any:
        return value.strip() or None if isinstance(value, str) else value


class Item(_Strict):
    productId: RequiredId
    title: str = Field(min_length=1, max_length=1000)
    quantity: Annotated[StrictInt, Field(ge=1, le=1_000_000)]
    variantId: Id = None
    sku: Id = None
    variantTitle: str | None = Field(default=None, max_length=1000)
    priceCents: Cents | None = None


class CustomerTotals(_Strict):
    ordersCount: Annotated[StrictInt, Field(ge=0)]
    totalSpentCents: Cents


class PushOrder(_Strict):
    orderId: RequiredId
    orderNumber: Id = None
    status: Status = "placed"
    totalCents: Cents
    currency: Currency
    orderedAt: Instant | None = None  # absent: the time the gateway accepted the order
    # The platform's update time: orders this event's facts against the order's other events (absent: arrival).
    updatedAt: Instant | None = None
    customer: Customer
    items: list[Item] = Field(default_factory=list, max_length=10_000)
    refundAmountCents: Cents | None = None
    customerTotals: CustomerTotals | None = None
    properties: dict[str, Any] = Field(default_factory=dict)

    @field_validator("refundAmountCents")
    @classmethod
    def _refund_within_total(cls, value: int | None, info: ValidationInfo) -> int | None:
        total = info.data.get("totalCents")
        if value is not None and total is not None and value > total:
            raise PydanticCustomError(
                "refund_exceeds_total",
                "must not exceed totalCents ({total})",
                {"total": total},
            )
        return value

    @property
    def refunded_cents(self) -> int:
        """Refunded amount this event states; a `refunded` event without an amount is a full refund."""
        if self.refundAmountCents is not None:
            return self.refundAmountCents
        return self.totalCents if self.status == "refunded" else 0


class CanonicalOrder(PushOrder):
    """A canonical order from an adapter; `customer` is None when the platform gave no email (POS, guests)."""

    customer: Customer | None  # type: ignore[assignment]
    refunds: dict[str, Cents] = Field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    checkoutId: Id = None  # the platform checkout this order completed (Shopify's checkout_token)

    @property
    def refunded_cents(self) -> int:
        return max(super().refunded_cents, sum(self.refunds.values()))


class _StoredCustomer(Customer):
    email: str
    externalId: str | None = None


class _StoredItem(Item):
    productId: str
    variantId: str | None = None
    sku: str | None = None


class StoredOrder(PushOrder):
    """A Push Order read back from the job the API stored: that body was validated and normalised at the door
    and written by `model_dump_json`, so the worker parses it with the same fields and types but without the
    normalising validators (email, currency, time, identifiers), which cost half of the parse. Shape and type
    errors are still errors, so a hand-edited job still fails as an invalid canonical order."""

    orderId: str
    orderNumber: str | None = None
    currency: str
    orderedAt: datetime | None = None
    updatedAt: datetime | None = None
    customer: _StoredCustomer
    items: list[_StoredItem] = Field(default_factory=list)  # type: ignore[assignment]
