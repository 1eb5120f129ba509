"""Destinations' state: enabled or disabled (with when and why), failing since when, last success and failure."""

import sqlite3
from typing import Any


def enabled(conn: sqlite3.Connection) -> dict[str, bool]:
    """Every configured destination and whether it is enabled."""
    rows = conn.execute("SELECT name, enabled FROM destinations WHERE configured = 1").fetchall()
    return {name: bool(on) for name, on in rows}


def record_health(conn: sqlite3.Connection, name: str, succeeded_at: int | None, failed_at: int | None) -> None:
    """A batch of attempts ended: the latest success clears the failing streak unless a later failure started one."""
    if succeeded_at is not None:
        conn.execute(
            "UPDATE destinations SET last_success_at = max(coalesce(last_success_at, 0), ?),"
            " failing_since = NULL WHERE name = ?",
            (succeeded_at, name),
        )
    if failed_at is not None:
        conn.execute(
            "UPDATE destinations SET last_failure_at = max(coalesce(last_failure_at, 0), ?),"
            " failing_since = coalesce(failing_since, ?) WHERE name = ?",
            (failed_at, failed_at, name),
        )


def disable(conn: sqlite3.Connection, name: str, reason: str, now: int) -> bool:
    """True when this disabled it (it was enabled)."""
    return (
        conn.execute(
            "UPDATE destinations SET enabled = 0, disabled_at = ?, disabled_reason = ? WHERE name = ? AND enabled = 1",
            (now, reason, name),
        ).rowcount
        == 1
    )


def failing_since(conn: sqlite3.Connection, name: str) -> int | None:
    row = conn.execute("SELECT failing_since FROM destinations WHERE name = ?", (name,)).fetchone()
    return row[0] if row else None


def enable(conn: sqlite3.Connection, name: str) -> bool:
    """Enable a configured destination; its failing streak starts over. False when no such destination."""
    return (
        conn.execute(
            "UPDATE destinations SET enabled = 1, disabled_at = NULL, disabled_reason = NULL, failing_since = NULL"
            " WHERE name = ? AND configured = 1",
            (name,),
        ).rowcount
        == 1
    )


def get(conn: sqlite3.Connection, name: str) -> dict[str, Any] | None:
    rows = listing(conn, name)
    return rows[0] if rows else None


def listing(conn: sqlite3.Connection, name: str | None = None) -> list[dict[str, Any]]:
    """Configured destinations with their counts of pending and dead deliveries, by name."""
    rows = conn.execute(
        "SELECT name, url, enabled, disabled_at, disabled_reason, failing_since, last_success_at, last_failure_at,"
        " events, include_historical,"
        # Waiting (`deliveries_due`) plus in flight (`deliveries_leased`, a handful): each from its partial index.
        " (SELECT count(*) FROM deliveries AS d WHERE d.destination = t.name"
        " AND (d.status = 'pending' OR d.status = 'failed'))"
        " + (SELECT count(*) FROM deliveries AS d WHERE d.destination = t.name AND d.status = 'delivering'),"
        " (SELECT count(*) FROM deliveries AS d WHERE d.destination = t.name AND d.status = 'dead')"
        " FROM destinations AS t WHERE configured = 1 AND (?1 IS NULL OR name = ?1) ORDER BY name",
        (name,),
    ).fetchall()
    keys = (
        "name",
        "url",
        "enabled",
        "disabledAt",
        "disabledReason",
        "failingSince",
        "lastSuccessAt",
        "lastFailureAt",
        "events",
        "includeHistorical",
        "pending",
        "dead",
    )
    return [dict(zip(keys, row, strict=True)) for row in rows]
