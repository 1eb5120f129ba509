"""An order event: one canonical order as one source stated it, with the version that orders its facts. It is
what the worker hands the engine and the engine hands the ledger."""

from typing import Any

from normalizer.model import CanonicalOrder, PushOrder


class OrderEvent:
    """Built once per order event on the worker's path: a plain class with slots, its derived fields set in
    `__init__` (a dataclass's `__post_init__` is one more call per order)."""

    __slots__ = ("items", "job_id", "order", "provider", "refunds", "source", "version")

    def __init__(self, source: str, provider: str, order: PushOrder, version: int, job_id: str | None = None) -> None:
        self.source = source  # `api` for canonical posts, else the configured source name
        self.provider = provider  # api, shopify, woocommerce, custom
        self.order = order
        self.version = version  # µs; orders the facts: the platform's update time, or a canonical post's arrival
        self.job_id = job_id
        # The order's items dumped once (the ledger row and the event store the same list); None when it gives
        # none. Each by its serializer: `model_dump` is that call behind a costly wrapper (docs/PERFORMANCE.md).
        self.items: list[dict[str, Any]] | None = (
            [item.__pydantic_serializer__.to_python(item, exclude_none=True) for item in order.items]
            if order.items
            else []
            if "items" in order.__pydantic_fields_set__
            else None
        )
        # Refunds by their platform id (adapters only; a canonical post states the refunded amount).
        self.refunds: dict[str, int] = order.refunds if type(order) is CanonicalOrder else {}

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
