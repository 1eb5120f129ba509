"""The order ledger (docs/api.md, Engine semantics): one row per (source, orderId), merging the facts of every
event of that order.

Monotone facts (statuses seen, cancelled, fulfilled, the largest refund, refunds by id) merge whatever the
order of arrival; the latest-state facts (total, currency, items, number, time, customer) come from the event
with the highest version, so an older platform update never overwrites a newer one.
"""

import sqlite3
from dataclasses import dataclass, field, replace
from typing import Any

from normalizer import STATUSES, CanonicalOrder, Customer, PushOrder
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
# another. Also read by `subscribers.upsert_with_totals` together with the subscriber, in one statement.
SPEND_SQL = (
    "SELECT count(*) FILTER (WHERE currency = ?2) AS orders,"
    " coalesce(sum(total_cents - min(refunded_cents, total_cents)) FILTER (WHERE currency = ?2), 0) AS cents,"
    " count(*) FILTER (WHERE currency != ?2) AS foreign_orders"
    " FROM orders WHERE email = ?1 AND NOT cancelled"
)


def spend(conn: sqlite3.Connection, email: str, base: str) -> Spend:
    return spend_from(conn, email, base, *conn.execute(SPEND_SQL, (email, base)).fetchone())


def spend_from(conn: sqlite3.Connection, email: str, base: str, orders: int, cents: int, foreign: int) -> Spend:
    """The `Spend` of a row of SPEND_SQL's columns; the foreign-currency orders are read only when there are some."""
    return Spend(orders, cents, foreign_spend(conn, email, base) if foreign else [])


def foreign_spend(conn: sqlite3.Connection, email: str, base: str) -> list[tuple[int, str]]:
    """(contribution, currency) of the customer's uncancelled orders in other currencies than `base`."""
    return conn.execute(
        "SELECT total_cents - min(refunded_cents, total_cents), currency FROM orders"
        " WHERE email = ? AND NOT cancelled AND currency != ?",
        (email, base),
    ).fetchall()


def _named(customer: Customer) -> dict[str, str]:
    named = (("externalId", customer.externalId), ("firstName", customer.firstName), ("lastName", customer.lastName))
    return {key: value for key, value in named if value}


def _stated_facts(order: PushOrder, items: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The latest-state facts this event states; what it leaves out keeps what the ledger knows."""
    given = order.model_fields_set
    facts: dict[str, Any] = {"total_cents": order.totalCents, "currency": order.currency}
    if "orderNumber" in given:
        facts["order_number"] = order.orderNumber
    if "items" in given:
        facts["items"] = items if items is not None else _dumped(order)
    if order.orderedAt is not None:
        facts["ordered_at"] = format_instant(order.orderedAt)
    customer = order.customer
    if customer is not None:
        facts["email"] = customer.email
        facts["customer"] = _named(customer)
    return facts


def _dumped(order: PushOrder) -> list[dict[str, Any]]:
    return [item.model_dump(exclude_none=True) for item in order.items]


def merge(
    conn: sqlite3.Connection,
    source: str,
    provider: str,
    order: PushOrder,
    version: int,
    now: int,
    items: list[dict[str, Any]] | None = None,
) -> tuple[LedgerOrder | None, LedgerOrder]:
    """Merge one order event into the ledger; returns the row before (None if new) and after.
    When the first event of an order gives no orderedAt, its `version` (µs: for a canonical post, the time
    the gateway accepted it) stands in. `items`, when given,
    is the order's items already dumped (the engine dumps them once for the ledger and the event)."""
    # Most events are an order's first: insert it as new, and read the stored row only when it is there already.
    after = _first(source, provider, order, version, items)
    if _insert(conn, after, now):
        return None, after
    before = get(conn, source, order.orderId)
    if before is None:  # unreachable: the insert met this very (source, orderId)
        raise sqlite3.IntegrityError(f"ledger row of order {order.orderId} conflicts but is missing")
    after = _merged(before, order, version, _stated_facts(order, items))
    _update(conn, after, now)
    return before, after


def _first(
    source: str, provider: str, order: PushOrder, version: int, items: list[dict[str, Any]] | None
) -> LedgerOrder:
    """The row of an order's first event: everything it states, nothing merged."""
    customer = order.customer
    status = order.status
    return LedgerOrder(
        source=source,
        order_id=order.orderId,
        provider=provider,
        order_number=order.orderNumber,
        email=customer.email if customer is not None else None,
        customer=_named(customer) if customer is not None else {},
        total_cents=order.totalCents,
        currency=order.currency,
        items=items if items is not None else _dumped(order),
        ordered_at=format_instant(order.orderedAt) if order.orderedAt else format_instant_us(version),
        statuses=[status],
        cancelled=status == "cancelled",
        fulfilled=status == "fulfilled",
        refunded_cents=order.refunded_cents,
        refunds=dict(order.refunds) if isinstance(order, CanonicalOrder) else {},
        version=version,
    )


def _merged(before: LedgerOrder, order: PushOrder, version: int, facts: dict[str, Any]) -> LedgerOrder:
    """`before` with one more event: monotone facts merged, stated facts taken when the event is not older."""
    after = replace(before)
    refunds = order.refunds if isinstance(order, CanonicalOrder) else {}
    after.statuses = [s for s in STATUSES if s in after.statuses or s == order.status]
    after.cancelled = after.cancelled or order.status == "cancelled"
    after.fulfilled = after.fulfilled or order.status == "fulfilled"
    after.refunds = {**after.refunds, **refunds}
    after.refunded_cents = max(after.refunded_cents, order.refunded_cents, sum(after.refunds.values()))
    if version >= after.version:
        for key, value in facts.items():
            setattr(after, key, value)
        after.version = version
    return after


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
