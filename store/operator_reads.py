"""Reads for the operator page and the metrics scrape that no API route needs: a subscriber's latest events, and
the destinations with their failing deliveries (None while the outbound tables do not exist)."""

import sqlite3
from typing import Any

from store import json_columns


def has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def latest_events(conn: sqlite3.Connection, subscriber_id: int, limit: int) -> list[dict[str, Any]]:
    """The subscriber's newest events first: (id, name, properties, occurred_at µs)."""
    rows = conn.execute(
        "SELECT id, name, properties, occurred_at FROM events WHERE subscriber_id = ? ORDER BY id DESC LIMIT ?",
        (subscriber_id, limit),
    ).fetchall()
    return [
        {"id": event_id, "name": name, "properties": json_columns.loads(props), "occurredAt": at}
        for event_id, name, props, at in rows
    ]


def destinations(conn: sqlite3.Connection) -> list[dict[str, Any]] | None:
    """Each configured destination with its pending, failed and dead deliveries; None without outbound tables."""
    if not has_table(conn, "destinations") or not has_table(conn, "deliveries"):
        return None
    found = []
    for name, url, enabled, reason, success, failure in conn.execute(
        "SELECT name, url, enabled, disabled_reason, last_success_at, last_failure_at FROM destinations"
        " WHERE configured ORDER BY name"
    ).fetchall():
        counts = {  # the status a literal: each count is read from the partial index holding that status
            status: conn.execute(
                f"SELECT count(*) FROM deliveries WHERE destination = ? AND status = '{status}'", (name,)
            ).fetchone()[0]
            for status in ("pending", "failed", "dead")
        }
        found.append(
            {
                "name": name,
                "url": url,
                "enabled": bool(enabled),
                "disabled_reason": reason,
                "last_success_at": success,
                "last_failure_at": failure,
                **counts,
            }
        )
    return found
