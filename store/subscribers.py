"""Subscribers and their revenue attributes, keyed by email (docs/api.md, Engine semantics)."""

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from normalizer import Customer
from store import json_columns, ledger


@dataclass(slots=True)
class Totals:
    orders_count: int
    total_spent_cents: int


# The subscriber (all NULL when there is none yet) and the customer's `ledger.Spend`, in one statement.
_SUBSCRIBER_AND_SPEND = (
    "SELECT s.id, s.attributes, s.baseline,"
    " spend.orders, spend.cents, spend.foreign_orders"
    f" FROM ({ledger.SPEND_SQL}) AS spend LEFT JOIN subscribers AS s ON s.email = ?1"
)


def upsert_with_totals(
    conn: sqlite3.Connection,
    customer: Customer,
    attributes: dict[str, Any],
    now: int,
    base_currency: str,
    totals: Callable[[dict[str, int] | None, ledger.Spend], tuple[Totals, dict[str, int] | None]],
) -> int:
    """Create or update a subscriber with its totals, in one read and one write: names and externalId when given
    non-empty, attributes merged shallowly (a key whose value is JSON null is removed), and
    `totals(stored baseline, the customer's ledger spend)` -> the totals and the baseline to keep. Returns the
    subscriber id."""
    email = customer.email
    row = conn.execute(_SUBSCRIBER_AND_SPEND, (email, base_currency)).fetchone()
    subscriber_id, stored, stored_base, orders, cents, foreign = row
    spend = ledger.spend_from(conn, email, base_currency, orders, cents, foreign)
    if subscriber_id is None:
        result, base = totals(None, spend)
        kept = {k: v for k, v in attributes.items() if v is not None}
        inserted = conn.execute(
            "INSERT INTO subscribers (email, external_id, first_name, last_name, attributes, orders_count,"
            " total_spent_cents, baseline, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                email,
                customer.externalId,
                customer.firstName,
                customer.lastName,
                json_columns.dumps(kept),
                result.orders_count,
                result.total_spent_cents,
                None if base is None else json_columns.dumps(base),
                now,
                now,
            ),
        ).lastrowid
        assert inserted is not None  # set by every successful INSERT
        return inserted
    stored_baseline = json_columns.loads(stored_base) if stored_base else None
    result, base = totals(stored_baseline, spend)
    merged = json_columns.loads(stored) if stored else {}
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
            result.orders_count,
            result.total_spent_cents,
            stored_base if base is stored_baseline else json_columns.dumps(base),
            now,
            subscriber_id,
        ),
    )
    return int(subscriber_id)


def find_id(conn: sqlite3.Connection, email: str) -> int | None:
    row = conn.execute("SELECT id FROM subscribers WHERE email = ?", (email,)).fetchone()
    return int(row[0]) if row else None


def find(conn: sqlite3.Connection, email: str) -> tuple[int, dict[str, int] | None] | None:
    """(id, baseline) in one lookup: the engine needs both for every order."""
    row = conn.execute("SELECT id, baseline FROM subscribers WHERE email = ?", (email,)).fetchone()
    if row is None:
        return None
    return int(row[0]), json_columns.loads(row[1]) if row[1] else None


def set_baseline(conn: sqlite3.Connection, subscriber_id: int, value: dict[str, int]) -> None:
    conn.execute("UPDATE subscribers SET baseline = ? WHERE id = ?", (json_columns.dumps(value), subscriber_id))


def set_totals(conn: sqlite3.Connection, subscriber_id: int, totals: Totals, now: int) -> None:
    conn.execute(
        "UPDATE subscribers SET orders_count = ?, total_spent_cents = ?, updated_at = ? WHERE id = ?",
        (totals.orders_count, totals.total_spent_cents, now, subscriber_id),
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
