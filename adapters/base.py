"""The adapter protocol: every platform module verifies, classifies (topic and delivery key) and translates.

An adapter never touches SQL: what it needs from earlier deliveries (the stored order a refund belongs to) it
asks an `OrderLookup` for, and it answers in canonical orders (`normalizer.CanonicalOrder`) only.
"""

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from normalizer import CanonicalOrder
from normalizer.model import Status

Check = Literal["header", "timestamp", "signature"]


class SignatureError(Exception):
    """The delivery is not signed by any secret of its source (answered 401; nothing stored). `check` says which
    check failed: the signature `header` is missing or malformed, the signed `timestamp` is stale or in the
    future, or no `signature` matches a secret."""

    def __init__(self, reason: str, check: Check = "signature") -> None:
        super().__init__(reason)
        self.check = check


class TranslationError(Exception):
    """The delivery cannot become canonical orders (unexpected shape): its job ends dead, replayable after a fix."""


class NotReady(Exception):
    """The delivery depends on one that has not arrived yet (a refund before its order): retry later."""


@dataclass(frozen=True, slots=True)
class Delivery:
    source: str
    headers: Mapping[str, str]  # names lower-cased
    body: bytes
    received_at: datetime

    def header(self, *names: str) -> str | None:
        """The first present header among `names` (any case), e.g. X-Shopify-Topic then shopify-topic."""
        for name in names:
            value = self.headers.get(name.lower())
            if value is not None:
                return value
        return None


@dataclass(frozen=True, slots=True)
class Intake:
    """What the HTTP layer does with a verified delivery:
    queue it (translate later), record it without processing (a ping, a test notification), or ignore it."""

    action: Literal["queue", "record", "ignore"]
    topic: str | None = None
    dedup_key: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Command:
    """A non-order effect a delivery asks of the engine (e.g. erase a customer's data)."""

    name: str
    args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Translation:
    orders: list[CanonicalOrder] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)


class OrderLookup(Protocol):
    def order(self, order_id: str) -> CanonicalOrder | None:
        """The order as the ledger holds it now (same source), or None if it has not arrived."""


def follow_up(
    stored: CanonicalOrder, status: Status, updated_at: datetime | str | None, **facts: Any
) -> CanonicalOrder:
    """An event on an order the ledger holds that brings no order facts of its own (a refund, a cancellation, a
    deletion): the stored total and currency, which the model requires, no customer, and only what the caller
    adds. Items, number and customer stay what the ledger knows. With no `updated_at` (a bare `{"id"}` has
    none), the time the gateway received the delivery stands in."""
    if updated_at is not None:
        facts["updatedAt"] = updated_at
    return CanonicalOrder.model_validate(
        {
            "orderId": stored.orderId,
            "status": status,
            "totalCents": stored.totalCents,
            "currency": stored.currency,
            "customer": None,
            **facts,
        }
    )


class SourceOptions(BaseModel):
    """A source's block in config.yaml; each adapter extends it with its own keys (unknown keys fail at start)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    secrets: list[str] = Field(default_factory=list)


class Adapter(Protocol):
    provider: ClassVar[str]  # the source `type` in config.yaml, and the `provider` event property
    Options: ClassVar[type[SourceOptions]]

    def __init__(self, name: str, options: Any) -> None: ...

    def verify(self, delivery: Delivery) -> None:
        """Raise SignatureError unless the raw body is signed by one of the source's secrets."""

    def intake(self, delivery: Delivery) -> Intake:
        """Decide, from headers and cheaply from the body, what happens to a verified delivery."""

    def translate(self, delivery: Delivery, lookup: OrderLookup) -> Translation:
        """Turn a queued delivery into canonical orders (in the worker)."""


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()
