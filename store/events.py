"""Subscriber events (docs/api.md, Engine semantics): stored once per dedup key, read oldest first. Automations
and segments read this table in id order."""

import sqlite3
from typing import Any

from store import json_columns


def record(
    conn: sqlite3.Connection,
    subscriber_id: int,
    name: str,
    properties: dict[str, Any],
    occurred_at: int,
    dedup_key: str,
    source: str | None = None,
    order_id: str | None = None,
    job_id: str | None = None,
) -> int | None:
    """Store an event unless its dedup key is already stored; returns the new event id, or None if a repeat."""
    cursor = conn.execute(
        "INSERT INTO events (subscriber_id, name, properties, occurred_at, dedup_key, source, order_id, job_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedup_key) DO NOTHING",
        (subscriber_id, name, json_columns.dumps(properties), occurred_at, dedup_key, source, order_id, job_id),
    )
    return cursor.lastrowid if cursor.rowcount == 1 else None


# What one page of events may hold, counted in stored properties: a page of 1,000 events of a large payload each
# would otherwise be read, encoded and sent at once.
PAGE_BYTES = 1024 * 1024


def for_subscriber(
    conn: sqlite3.Connection, subscriber_id: int, after_id: int = 0, limit: int = 1000, max_bytes: int = PAGE_BYTES
) -> list[tuple[int, str, str, int]]:
    """(id, name, properties JSON, occurred_at µs), oldest first: up to `limit` events, and fewer once their
    properties reach `max_bytes` (always at least one)."""
    cursor = conn.execute(
        "SELECT id, name, properties, occurred_at FROM events WHERE subscriber_id = ? AND id > ? ORDER BY id LIMIT ?",
        (subscriber_id, after_id, limit),
    )
    page = []
    size = 0
    for row in cursor:
        page.append(row)
        size += len(row[2])
        if size >= max_bytes:
            break
    cursor.close()
    return page
