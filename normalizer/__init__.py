"""The canonical order: its model and the normalisation of money, currency, email, time and status."""

from normalizer.model import (
    RESERVED_ATTRIBUTES,
    STATUSES,
    CanonicalOrder,
    Customer,
    CustomerTotals,
    Item,
    PushOrder,
    StoredOrder,
)

__all__ = [
    "RESERVED_ATTRIBUTES",
    "STATUSES",
    "CanonicalOrder",
    "Customer",
    "CustomerTotals",
    "Item",
    "PushOrder",
    "StoredOrder",
]
