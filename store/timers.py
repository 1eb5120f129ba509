"""Durable timers: one row per (kind, key) with its due time, read in due order through an index.

A timer is set, moved and cancelled in the caller's transaction, and taken (deleted) by whoever fires it in
the transaction that applies its effects: a process killed at any moment leaves it either still set or fired
with its effects, never both and never lost. Nothing is held in memory per timer.
"""

import sqlite3


def schedule(conn: sqlite3.Connection, kind: str, key: str, due_at: int) -> None:
    """Set the timer (kind, key) to fire at `due_at` (µs); an existing one is moved."""
    conn.execute(
        "INSERT INTO timers (kind, key, due_at) VALUES (?, ?, ?) ON CONFLICT (kind, key) DO UPDATE SET due_at = ?3",
        (kind, key, due_at),
    )


def schedule_many(conn: sqlite3.Connection, kind: str, due: list[tuple[str, int]]) -> None:
    """`schedule` for many (key, due_at) at once (a rebuild's)."""
    conn.executemany(
        "INSERT INTO timers (kind, key, due_at) VALUES (?1, ?2, ?3) ON CONFLICT (kind, key) DO UPDATE SET due_at = ?3",
        [(kind, key, due_at) for key, due_at in due],
    )


def cancel_many(conn: sqlite3.Connection, kind: str, keys: list[str]) -> None:
    conn.executemany("DELETE FROM timers WHERE kind = ? AND key = ?", [(kind, key) for key in keys])


def cancel(conn: sqlite3.Connection, kind: str, key: str) -> bool:
    """Remove the timer (kind, key); True when there was one."""
    return conn.execute("DELETE FROM timers WHERE kind = ? AND key = ?", (kind, key)).rowcount == 1


def due(conn: sqlite3.Connection, now: int, limit: int) -> list[tuple[int, str, str, int]]:
    """Up to `limit` timers due at `now`, earliest first, as (rowid, kind, key, due_at)."""
    return conn.execute(
        "SELECT rowid, kind, key, due_at FROM timers WHERE due_at <= ? ORDER BY due_at LIMIT ?", (now, limit)
    ).fetchall()


def take(conn: sqlite3.Connection, rowid: int, now: int) -> bool:
    """Delete a due timer in the transaction that fires it: its commit is what marks it fired. False when it is
    gone or no longer due (an earlier handler of the same transaction cancelled or moved it)."""
    return conn.execute("DELETE FROM timers WHERE rowid = ? AND due_at <= ?", (rowid, now)).rowcount == 1


def next_due(conn: sqlite3.Connection) -> int | None:
    """The earliest due time set (µs), or None; one probe of the index."""
    row = conn.execute("SELECT min(due_at) FROM timers").fetchone()
    return row[0] if row else None


def get(conn: sqlite3.Connection, kind: str, key: str) -> int | None:
    row = conn.execute("SELECT due_at FROM timers WHERE kind = ? AND key = ?", (kind, key)).fetchone()
    return row[0] if row else None
