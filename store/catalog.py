"""The product catalog: one row per productId, the product as last stated (JSON) and its replenishment rule kept
apart, since the worker reads the rule for every ordered item."""

import sqlite3
from typing import Any

from store import json_columns as json


def get(conn: sqlite3.Connection, product_id: str) -> dict[str, Any] | None:
    """The stored product as the API shows it (replenishment included), or None."""
    row = conn.execute(
        "SELECT data, replenishment, source, updated_at FROM products WHERE product_id = ?", (product_id,)
    ).fetchone()
    if row is None:
        return None
    product: dict[str, Any] = json.loads(row[0])
    product["replenishment"] = json.loads(row[1]) if row[1] else None
    return product


def get_many(conn: sqlite3.Connection, product_ids: list[str]) -> dict[str, dict[str, Any]]:
    rows = conn.execute(
        "SELECT product_id, data, replenishment FROM products WHERE product_id IN (SELECT value FROM json_each(?))",
        (json.dumps(product_ids),),
    ).fetchall()
    found = {}
    for product_id, data, replenishment in rows:
        product = json.loads(data)
        product["replenishment"] = json.loads(replenishment) if replenishment else None
        found[product_id] = product
    return found


def replenishment(conn: sqlite3.Connection, product_id: str) -> dict[str, Any] | None:
    """The product's replenishment rule as stored through the API (None: none, or no such product)."""
    row = conn.execute("SELECT replenishment FROM products WHERE product_id = ?", (product_id,)).fetchone()
    return json.loads(row[0]) if row and row[0] else None


def rules_generation(conn: sqlite3.Connection) -> int:
    """A number that changes whenever a product's replenishment rule is set, changed or removed, rolled back or
    not (kept by the table's triggers): rules read at the same number still hold."""
    row = conn.execute("SELECT generation FROM replenishment_generation").fetchone()
    return int(row[0]) if row else 0


def rules(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """Every product's replenishment rule stored through the API, by productId (read from their own index)."""
    rows = conn.execute(
        "SELECT product_id, replenishment FROM products INDEXED BY products_replenishment"
        " WHERE replenishment IS NOT NULL"
    ).fetchall()
    return {product_id: json.loads(rule) for product_id, rule in rows}


def put(conn: sqlite3.Connection, product: dict[str, Any], source: str, now: int) -> None:
    """Store `product` (its replenishment included) whole, replacing what was stored."""
    data = {key: value for key, value in product.items() if key != "replenishment"}
    rule = product.get("replenishment")
    conn.execute(
        "INSERT INTO products (product_id, source, data, replenishment, created_at, updated_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT (product_id) DO UPDATE SET source = ?2, data = ?3,"
        " replenishment = ?4, updated_at = ?5",
        (str(product["productId"]), source, json.dumps(data), None if rule is None else json.dumps(rule), now),
    )
