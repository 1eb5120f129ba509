"""Subscribers (SPEC §4.2) and their revenue attributes (§4.4), keyed by email."""

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from normalizer import Customer
from store import _json as json
from store import ledger


@dataclass(slots=True)
class Totals:
    orders_count: int
    total_spent_cents: int


# The subscriber (all NULL when there is none yet) and the customer's `ledger.Spend`, in one statement.
_SUBSCRIBER_AND_SPEND = (
    "SELECT s.id, s.external_id, s.first_name, s.last_name, s.attributes, s.baseline,"
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
    subscriber_id, external_id, first_name, last_name, stored, stored_base, orders, cents, foreign = row
    spend = ledger.Spend(orders, cents, ledger.foreign_spend(conn, email, base_currency) if foreign else [])
    if subscriber_id is None:
        result, base = totals(None, spend)
        kept = {k: v for k, v in attributes.items() if v is not None}
        inserted = conn.execute(
            "INSERT INTO subscribers (email, external_id, first_name, last_name, attributes, orders_count,"
            " total_spent_cents, baseline, created_at, updated_at, spend_orders, spend_cents, spend_foreign)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                email,
                customer.externalId,
                customer.firstName,
                customer.lastName,
                json.dumps(kept),
                result.orders_count,
                result.total_spent_cents,
                None if base is None else json.dumps(base),
                now,
                now,
                *_spend_columns(spend),
            ),
        ).lastrowid
        assert inserted is not None  # set by every successful INSERT
        return inserted
    stored_baseline = json.loads(stored_base) if stored_base else None
    result, base = totals(stored_baseline, spend)
    merged = json.loads(stored) if stored else {}
    for key, value in attributes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    conn.execute(
        "UPDATE subscribers SET external_id = ?, first_name = ?, last_name = ?, attributes = ?, orders_count = ?,"
        " total_spent_cents = ?, baseline = ?, updated_at = ?, spend_orders = ?, spend_cents = ?, spend_foreign = ?"
        " WHERE id = ?",
        (
            customer.externalId or external_id,
            customer.firstName or first_name,
            customer.lastName or last_name,
            json.dumps(merged),
            result.orders_count,
            result.total_spent_cents,
            stored_base if base is stored_baseline else json.dumps(base),
            now,
            *_spend_columns(spend),
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
    return int(row[0]), json.loads(row[1]) if row[1] else None


def set_baseline(conn: sqlite3.Connection, subscriber_id: int, value: dict[str, int]) -> None:
    conn.execute("UPDATE subscribers SET baseline = ? WHERE id = ?", (json.dumps(value), subscriber_id))


def set_totals(conn: sqlite3.Connection, subscriber_id: int, totals: Totals, spend: ledger.Spend, now: int) -> None:
    """Totals computed from the customer's ledger `spend`, kept with them."""
    conn.execute(
        "UPDATE subscribers SET orders_count = ?, total_spent_cents = ?, updated_at = ?, spend_orders = ?,"
        " spend_cents = ?, spend_foreign = ? WHERE id = ?",
        (totals.orders_count, totals.total_spent_cents, now, *_spend_columns(spend), subscriber_id),
    )


def _spend_columns(spend: ledger.Spend) -> tuple[int, int, int]:
    return spend.orders, spend.cents, len(spend.foreign)


# An order's first event, in the base currency, for a customer whose stored spend is in the base currency alone:
# its contribution (?9 orders, ?10 cents) is added to that spend, and the totals follow from it (and from the
# baseline, when there is one: §4.4), in the statement that upserts the subscriber. A new subscriber's spend is
# read from the ledger. Attributes merge as JSON Merge Patch (RFC 7396), which is the engine's shallow merge for
# values that are not objects. When the stored spend is unknown or holds other currencies, nothing is written
# and no row is returned.
_ADD_ORDER = f"""
INSERT INTO subscribers (email, external_id, first_name, last_name, attributes, orders_count, total_spent_cents,
    baseline, created_at, updated_at, spend_orders, spend_cents, spend_foreign)
SELECT ?1, ?3, ?4, ?5, ?6, spend.orders, spend.cents, NULL, ?8, ?8, spend.orders, spend.cents, spend.foreign_orders
FROM ({ledger.SPEND_SQL}) AS spend WHERE true
ON CONFLICT (email) DO UPDATE SET
    external_id = coalesce(excluded.external_id, external_id),
    first_name = coalesce(excluded.first_name, first_name),
    last_name = coalesce(excluded.last_name, last_name),
    attributes = json_patch(coalesce(attributes, '{{}}'), ?7),
    orders_count = CASE WHEN baseline IS NULL THEN spend_orders + ?9
        ELSE max(0, (baseline ->> '$.ordersCount') + spend_orders + ?9 - (baseline ->> '$.ledgerOrders')) END,
    total_spent_cents = CASE WHEN baseline IS NULL THEN spend_cents + ?10
        ELSE max(0, (baseline ->> '$.totalSpentCents') + spend_cents + ?10 - (baseline ->> '$.ledgerCents')) END,
    spend_orders = spend_orders + ?9,
    spend_cents = spend_cents + ?10,
    updated_at = ?8
WHERE spend_orders IS NOT NULL AND spend_foreign = 0
RETURNING id, spend_foreign
"""


def add_order(
    conn: sqlite3.Connection,
    customer: Customer,
    attributes: dict[str, Any],
    base_currency: str,
    orders: int,
    cents: int,
    now: int,
) -> tuple[int, bool] | None:
    """Upsert the subscriber of an order's first event in one statement, adding its contribution to revenue
    (`orders` 0 or 1, `cents` in the base currency). Returns (subscriber id, whether the totals still need other
    currencies converted: a new subscriber whose ledger holds some), or None when nothing was written because the
    stored spend cannot be added to; then `upsert_with_totals` does it. `attributes` must hold no objects."""
    kept = {k: v for k, v in attributes.items() if v is not None}
    row = conn.execute(
        _ADD_ORDER,
        (
            customer.email,
            base_currency,
            customer.externalId,
            customer.firstName,
            customer.lastName,
            json.dumps(kept),
            json.dumps(attributes),
            now,
            orders,
            cents,
        ),
    ).fetchone()
    return None if row is None else (int(row[0]), bool(row[1]))


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
    result["attributes"] = json.loads(result["attributes"] or "{}")
    return result
