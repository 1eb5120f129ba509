"""The order ledger (docs/api.md, Engine semantics): one row per (source, orderId), merging the facts of every
event of that order.

Monotone facts (statuses seen, cancelled, fulfilled, the largest refund, refunds by id) merge whatever the
order of arrival; the latest-state facts (total, currency, items, number, time, customer) come from the event
with the highest version, so an older platform update never overwrites a newer one.
"""

import sqlite3
from dataclasses import dataclass, field
from typing import Any

from normalizer import STATUSES, Customer
from normalizer.order_event import OrderEvent
from normalizer.timefmt import format_instant, format_instant_us
from store import json_columns


@dataclass(slots=True)
class LedgerOrder:
    source: str
    order_id: str
    provider: str
    order_number: str | None
    email: str | None
    customer: dict[str, Any]
    total_cents: int
    currency: str
    items: list[dict[str, Any]]
    ordered_at: str
    statuses: list[str]
    cancelled: bool
    fulfilled: bool
    refunded_cents: int
    refunds: dict[str, int] = field(default_factory=dict)
    version: int = 0
    id: int | None = None

    @property
    def status(self) -> str:
        if self.cancelled:
            return "cancelled"
        if self.refunded_cents > 0:
            return "refunded"
        return "fulfilled" if self.fulfilled else "placed"

    @property
    def contribution_cents(self) -> int:
        """What the order adds to the customer's spend, in its own currency: 0 if cancelled, else the total less
        the refund."""
        if self.cancelled:
            return 0
        return self.total_cents - min(self.refunded_cents, self.total_cents)


_COLUMNS = (
    "id, source, order_id, provider, order_number, email, customer, total_cents, currency, items, ordered_at,"
    " statuses, cancelled, fulfilled, refunded_cents, refunds, version"
)


def _row(row: tuple[Any, ...]) -> LedgerOrder:
    return LedgerOrder(
        id=row[0],
        source=row[1],
        order_id=row[2],
        provider=row[3],
        order_number=row[4],
        email=row[5],
        customer=json_columns.loads(row[6]) if row[6] else {},
        total_cents=row[7],
        currency=row[8],
        items=json_columns.loads(row[9]) if row[9] else [],
        ordered_at=row[10],
        statuses=json_columns.loads(row[11]),
        cancelled=bool(row[12]),
        fulfilled=bool(row[13]),
        refunded_cents=row[14],
        refunds=json_columns.loads(row[15]) if row[15] else {},
        version=row[16],
    )


def get(conn: sqlite3.Connection, source: str, order_id: str) -> LedgerOrder | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM orders WHERE source = ? AND order_id = ?", (source, order_id)
    ).fetchone()
    return _row(row) if row else None


@dataclass(slots=True)
class Spend:
    """One customer's orders as revenue counts them (docs/api.md): cancelled orders left out, refunds taken off.
    Orders in the base currency are counted and summed by SQLite; the others are listed, as (contribution,
    currency), for the engine to convert one by one."""

    orders: int
    cents: int
    foreign: list[tuple[int, str]]


# What `Spend` is made of, in one row: orders and cents in the base currency (?2), and how many orders are in
# another. Also read by `subscribers.load` together with the subscriber, in one statement.
# The cents are a total(), not a sum(): SQLite's sum() of integers stops the whole statement with "integer
# overflow" past 2**63 - 1, while total() adds in floating point and never fails. Every contribution is a
# whole number >= 0, so each partial sum is exact while the total stays below 2**53; at or above it,
# `exact_spend` adds the customer's orders again in Python integers, exactly, however many there are.
SPEND_SQL = (
    "SELECT count(*) FILTER (WHERE currency = ?2) AS orders,"
    " total(total_cents - min(refunded_cents, total_cents)) FILTER (WHERE currency = ?2) AS cents,"
    " count(*) FILTER (WHERE currency != ?2) AS foreign_orders"
    " FROM orders WHERE email = ?1 AND NOT cancelled"
)
_EXACT_BELOW = 2.0**53


def spend(conn: sqlite3.Connection, email: str, base: str) -> Spend:
    return spend_from(conn, email, base, *conn.execute(SPEND_SQL, (email, base)).fetchone())


def spend_from(conn: sqlite3.Connection, email: str, base: str, orders: int, cents: float, foreign: int) -> Spend:
    """The `Spend` of a row of SPEND_SQL's columns."""
    return Spend(orders, *exact_spend(conn, email, base, cents, foreign))


def exact_spend(
    conn: sqlite3.Connection, email: str, base: str, cents: float, foreign: int
) -> tuple[int, list[tuple[int, str]]]:
    """The cents and foreign orders of a row of SPEND_SQL's columns: the cents exact, the foreign-currency orders
    read only when there are some."""
    exact = int(cents) if cents < _EXACT_BELOW else exact_cents(conn, email, base)
    return exact, foreign_spend(conn, email, base) if foreign else []


def exact_cents(conn: sqlite3.Connection, email: str, base: str) -> int:
    """The customer's spend in the base currency, added in Python integers (no bound, no rounding)."""
    rows = conn.execute(
        "SELECT total_cents - min(refunded_cents, total_cents) FROM orders"
        " WHERE email = ? AND NOT cancelled AND currency = ?",
        (email, base),
    )
    return sum(cents for (cents,) in rows)


def foreign_spend(conn: sqlite3.Connection, email: str, base: str) -> list[tuple[int, str]]:
    """(contribution, currency) of the customer's uncancelled orders in other currencies than `base`."""
    return conn.execute(
        "SELECT total_cents - min(refunded_cents, total_cents), currency FROM orders"
        " WHERE email = ? AND NOT cancelled AND currency != ?",
        (email, base),
    ).fetchall()


def _named(customer: Customer) -> dict[str, str]:
    named = {}  # key by key: a comprehension is one more call per order
    if customer.externalId:
        named["externalId"] = customer.externalId
    if customer.firstName:
        named["firstName"] = customer.firstName
    if customer.lastName:
        named["lastName"] = customer.lastName
    return named


def merge(conn: sqlite3.Connection, event: OrderEvent, now: int) -> tuple[LedgerOrder | None, LedgerOrder]:
    """Merge one order event into the ledger; returns the row before (None if new) and after."""
    # Most events are an order's first: insert it as new, and read the stored row only when it is there already.
    after = _merged(None, event)
    if _insert(conn, after, now):
        return None, after
    before = get(conn, event.source, event.order.orderId)
    if before is None:  # unreachable: the insert met this very (source, orderId)
        raise sqlite3.IntegrityError(f"ledger row of order {event.order.orderId} conflicts but is missing")
    after = _merged(before, event)
    after.id = before.id
    _update(conn, after, now)
    return before, after


def _merged(row: LedgerOrder | None, event: OrderEvent) -> LedgerOrder:
    """The row with one more event (`row` None: the order's first event, merged into a row with no facts yet):
    the monotone facts merged whatever the order of arrival, and the latest-state facts the event states taken
    unless the event is older than what the row holds. `row` is left as it was."""
    order = event.order
    status = order.status
    if row is None:
        statuses: list[str] = []
        cancelled = fulfilled = False
        refunded_cents, refunds, version = 0, {}, event.version
        order_number, email, customer, total, currency, items, ordered_at = None, None, {}, 0, order.currency, [], ""
        source, order_id, provider = event.source, order.orderId, event.provider
    else:
        # fmt: off
        statuses, cancelled, fulfilled, refunded_cents, refunds, version = (
            row.statuses, row.cancelled, row.fulfilled, row.refunded_cents, row.refunds, row.version,
        )
        order_number, email, customer, total, currency, items, ordered_at = (
            row.order_number, row.email, row.customer, row.total_cents, row.currency, row.items, row.ordered_at,
        )
        # fmt: on
        source, order_id, provider = row.source, row.order_id, row.provider
    if not statuses:
        statuses = [status]
    elif status not in statuses:
        statuses = [s for s in STATUSES if s == status or s in statuses]
    cancelled = cancelled or status == "cancelled"
    fulfilled = fulfilled or status == "fulfilled"
    refunded = order.refunded_cents
    if event.refunds:
        refunds = {**refunds, **event.refunds}
    if refunds:
        refunded = max(refunded, sum(refunds.values()))
    refunded_cents = max(refunded_cents, refunded)
    if event.version >= version:
        version = event.version
        total, currency = order.totalCents, order.currency
        if "orderNumber" in order.__pydantic_fields_set__:
            order_number = order.orderNumber
        if event.items is not None:
            items = event.items
        if order.orderedAt is not None:
            ordered_at = format_instant(order.orderedAt)
        elif not ordered_at:  # a first event without orderedAt: its version (a post's arrival) stands in
            ordered_at = format_instant_us(event.version)
        if order.customer is not None:
            email, customer = order.customer.email, _named(order.customer)
    # fmt: off
    return LedgerOrder(
        source, order_id, provider, order_number, email, customer, total, currency, items, ordered_at, statuses,
        cancelled, fulfilled, refunded_cents, refunds, version,
    )
    # fmt: on


_ONE_STATUS = {status: json_columns.dumps([status]) for status in STATUSES}


def _values(row: LedgerOrder, now: int) -> tuple[Any, ...]:
    return (
        row.provider,
        row.order_number,
        row.email,
        json_columns.dumps(row.customer),
        row.total_cents,
        row.currency,
        json_columns.dumps(row.items),
        row.ordered_at,
        _ONE_STATUS[row.statuses[0]] if len(row.statuses) == 1 else json_columns.dumps(row.statuses),
        int(row.cancelled),
        int(row.fulfilled),
        row.refunded_cents,
        json_columns.dumps(row.refunds) if row.refunds else None,
        row.version,
        now,
    )


def _insert(conn: sqlite3.Connection, row: LedgerOrder, now: int) -> bool:
    """Insert a new order's row (setting its id); False, and nothing written, when the order is already there."""
    cursor = conn.execute(
        "INSERT INTO orders (provider, order_number, email, customer, total_cents, currency, items, ordered_at,"
        " statuses, cancelled, fulfilled, refunded_cents, refunds, version, updated_at, source, order_id,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (source, order_id) DO NOTHING",
        (*_values(row, now), row.source, row.order_id, now),
    )
    if cursor.rowcount != 1:
        return False
    row.id = cursor.lastrowid
    return True


def _update(conn: sqlite3.Connection, row: LedgerOrder, now: int) -> None:
    conn.execute(
        "UPDATE orders SET provider = ?, order_number = ?, email = ?, customer = ?, total_cents = ?,"
        " currency = ?, items = ?, ordered_at = ?, statuses = ?, cancelled = ?, fulfilled = ?,"
        " refunded_cents = ?, refunds = ?, version = ?, updated_at = ? WHERE id = ?",
        (*_values(row, now), row.id),
    )


def as_api(row: LedgerOrder) -> dict[str, Any]:
    return {
        "source": row.source,
        "orderId": row.order_id,
        "orderNumber": row.order_number,
        "status": row.status,
        "totalCents": row.total_cents,
        "refundedCents": row.refunded_cents,
        "currency": row.currency,
        "cancelled": row.cancelled,
        "fulfilled": row.fulfilled,
        "email": row.email,
        "items": row.items,
        "orderedAt": row.ordered_at,
    }
