"""Subscribers and their revenue attributes, keyed by email (docs/api.md, Engine semantics)."""

import sqlite3
from dataclasses import dataclass
from typing import Any

from normalizer import Customer
from store import json_columns, ledger

# What the engine computes for a subscriber (`Engine.totals`) and `save` or `set_totals` writes: (orders count,
# total spent in base minor units, the platform baseline to keep or None). A tuple: one is built on every order.
Totals = tuple[int, int, dict[str, int] | None]


@dataclass(slots=True)
class Stored(ledger.Spend):
    """What an order's subscriber write starts from, read in one statement: the customer's ledger spend (this is
    their `ledger.Spend`) and the stored subscriber (id None when there is none yet). One object, not two: both
    were built on every order (docs/PERFORMANCE.md)."""

    email: str
    id: int | None
    attributes: str | None  # JSON, as stored
    baseline: dict[str, int] | None
    open_waits: int  # active back-in-stock waits and checkouts (0 for a subscriber not stored yet)


_SUBSCRIBER_AND_SPEND = (
    "SELECT s.id, s.attributes, s.baseline, s.open_waits,"
    " spend.orders, spend.cents, spend.foreign_orders"
    f" FROM ({ledger.SPEND_SQL}) AS spend LEFT JOIN subscribers AS s ON s.email = ?1"
)


def load(conn: sqlite3.Connection, email: str, base_currency: str) -> Stored:
    subscriber_id, attributes, baseline, open_waits, orders, cents, foreign = conn.execute(
        _SUBSCRIBER_AND_SPEND, (email, base_currency)
    ).fetchone()
    exact, foreign_orders = ledger.exact_spend(conn, email, base_currency, cents, foreign)
    loaded_baseline = json_columns.loads(baseline) if baseline else None
    return Stored(orders, exact, foreign_orders, email, subscriber_id, attributes, loaded_baseline, open_waits or 0)


def save(
    conn: sqlite3.Connection,
    stored: Stored,
    customer: Customer,
    attributes: dict[str, Any],
    totals: Totals,
    now: int,
) -> int:
    """Create or update the subscriber `stored` was read for, in one write: names and externalId when given
    non-empty, `attributes` merged shallowly (a key whose value is JSON null is removed), the totals and the
    baseline. Returns the subscriber id."""
    orders_count, total_spent_cents, baseline = totals
    kept_baseline = None if baseline is None else json_columns.dumps(baseline)
    if stored.id is None:
        kept = {k: v for k, v in attributes.items() if v is not None} if None in attributes.values() else attributes
        inserted = conn.execute(
            "INSERT INTO subscribers (email, external_id, first_name, last_name, attributes, orders_count,"
            " total_spent_cents, baseline, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                stored.email,
                customer.externalId,
                customer.firstName,
                customer.lastName,
                json_columns.dumps(kept),
                orders_count,
                total_spent_cents,
                kept_baseline,
                now,
                now,
            ),
        ).lastrowid
        assert inserted is not None  # set by every successful INSERT
        return inserted
    merged = json_columns.loads(stored.attributes) if stored.attributes else {}
    for key, value in attributes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    conn.execute(  # a name or externalId not given (NULL or empty) keeps the stored one
        "UPDATE subscribers SET external_id = coalesce(nullif(?, ''), external_id),"
        " first_name = coalesce(nullif(?, ''), first_name), last_name = coalesce(nullif(?, ''), last_name),"
        " attributes = ?, orders_count = ?, total_spent_cents = ?, baseline = ?, updated_at = ? WHERE id = ?",
        (
            customer.externalId,
            customer.firstName,
            customer.lastName,
            json_columns.dumps(merged),
            orders_count,
            total_spent_cents,
            kept_baseline,
            now,
            stored.id,
        ),
    )
    return stored.id


def find_id(conn: sqlite3.Connection, email: str) -> int | None:
    row = conn.execute("SELECT id FROM subscribers WHERE email = ?", (email,)).fetchone()
    return int(row[0]) if row else None


def set_totals(conn: sqlite3.Connection, subscriber_id: int, totals: Totals, now: int) -> None:
    orders_count, total_spent_cents, baseline = totals
    conn.execute(
        "UPDATE subscribers SET orders_count = ?, total_spent_cents = ?, baseline = ?, updated_at = ? WHERE id = ?",
        (
            orders_count,
            total_spent_cents,
            None if baseline is None else json_columns.dumps(baseline),
            now,
            subscriber_id,
        ),
    )


def get(conn: sqlite3.Connection, email: str) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT id, email, external_id, first_name, last_name, attributes, orders_count, total_spent_cents,"
        " created_at, updated_at FROM subscribers WHERE email = ?",
        (email,),
    ).fetchone()
    if row is None:
        return None
    keys = (
        "id",
        "email",
        "externalId",
        "firstName",
        "lastName",
        "attributes",
        "ordersCount",
        "totalSpentCents",
        "createdAt",
        "updatedAt",
    )
    result = dict(zip(keys, row, strict=True))
    result["attributes"] = json_columns.loads(result["attributes"] or "{}")
    return result
