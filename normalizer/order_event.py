"""An order event: one canonical order as one source stated it, with the version that orders its facts. It is
what the worker hands the engine and the engine hands the ledger."""

from dataclasses import dataclass, field
from typing import Any

from normalizer.model import CanonicalOrder, PushOrder


@dataclass(slots=True)
class OrderEvent:
    source: str  # `api` for canonical posts, else the configured source name
    provider: str  # api, shopify, woocommerce, custom
    order: PushOrder
    version: int  # µs; orders the facts: the platform's update time, or the arrival of a canonical post
    job_id: str | None = None
    # The order's items dumped once (the ledger row and the event store the same list); None when it gives none.
    items: list[dict[str, Any]] | None = field(init=False)
    # Refunds by their platform id (adapters only; a canonical post states the refunded amount).
    refunds: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        order = self.order
        self.items = [item.model_dump(exclude_none=True) for item in order.items] if order.items else None
        if self.items is None and "items" in order.model_fields_set:
            self.items = []
        self.refunds = order.refunds if type(order) is CanonicalOrder else {}

    @property
    def dedup_key(self) -> str:
        """What makes the recorded event unique: a retry or duplicate records nothing twice, while a second
        partial refund (a new refunded amount) is a new event. Every key of an order's events begins with
        `order_keys(source, orderId)[0]`."""
        order = self.order
        key = f"{self.source}\x1f{order.orderId}\x1f{order.status}"
        return f"{key}\x1f{order.refunded_cents}" if order.status == "refunded" else key


def order_keys(source: str, order_id: str) -> tuple[str, str]:
    """The range of dedup keys (from, before) that holds every event of one order: its events are read from the
    dedup keys' index."""
    return f"{source}\x1f{order_id}\x1f", f"{source}\x1f{order_id}\x20"
