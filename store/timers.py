"""Durable timers: one row per (kind, key) with its due time, read in due order through an index.

A timer is set, moved and cancelled in the caller's transaction, and taken (deleted) by whoever fires it in
the transaction that applies its effects: a process killed at any moment leaves it either still set or fired
with its effects, never both and never lost. Nothing is held in memory per timer.

A timer whose firing failed is set again with its attempts counted and its error kept; after the last attempt it
is moved to `dead_timers`, where it stays until replayed (`revive`) and no longer holds up its kind and key.
"""

import sqlite3
from collections.abc import Sequence
from typing import Any

from store.db import execute_rows


def schedule(conn: sqlite3.Connection, kind: str, key: str, due_at: int) -> None:
    """Set the timer (kind, key) to fire at `due_at` (µs); an existing one is moved."""
    conn.execute(
        "INSERT INTO timers (kind, key, due_at) VALUES (?, ?, ?) ON CONFLICT (kind, key) DO UPDATE SET due_at = ?3",
        (kind, key, due_at),
    )


def schedule_many(conn: sqlite3.Connection, kind: str, due: Sequence[tuple[str, int]]) -> None:
    """`schedule` for many (key, due_at) at once (a chunk's segment timers, a rebuild's), many to a statement
    (`db.execute_rows`); a key given twice is set to its last due time."""
    execute_rows(conn, _SCHEDULE_MANY, 3, [value for key, due_at in due for value in (kind, key, due_at)])


_SCHEDULE_MANY = (
    "INSERT INTO timers (kind, key, due_at) VALUES {rows}"
    " ON CONFLICT (kind, key) DO UPDATE SET due_at = excluded.due_at"
)


def cancel_many(conn: sqlite3.Connection, kind: str, keys: list[str]) -> None:
    conn.executemany("DELETE FROM timers WHERE kind = ? AND key = ?", [(kind, key) for key in keys])


def cancel(conn: sqlite3.Connection, kind: str, key: str) -> bool:
    """Remove the timer (kind, key); True when there was one."""
    return conn.execute("DELETE FROM timers WHERE kind = ? AND key = ?", (kind, key)).rowcount == 1


def due(conn: sqlite3.Connection, now: int, limit: int) -> list[tuple[int, str, str, int, int]]:
    """Up to `limit` timers due at `now`, earliest first, as (rowid, kind, key, due_at, attempts failed)."""
    return conn.execute(
        "SELECT rowid, kind, key, due_at, attempts FROM timers WHERE due_at <= ? ORDER BY due_at LIMIT ?", (now, limit)
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


def retry(conn: sqlite3.Connection, kind: str, key: str, due_at: int, attempts: int, error: str) -> None:
    """Set a timer whose firing failed (taken, its effects rolled back) again at `due_at`, with `attempts` failed
    so far and the last `error`."""
    conn.execute(
        "INSERT INTO timers (kind, key, due_at, attempts, error) VALUES (?, ?, ?, ?, ?) ON CONFLICT (kind, key)"
        " DO UPDATE SET due_at = ?3, attempts = ?4, error = ?5",
        (kind, key, due_at, attempts, error),
    )


def bury(conn: sqlite3.Connection, kind: str, key: str, due_at: int, attempts: int, error: str, now: int) -> None:
    """A timer (taken) failed its last attempt: kept dead with its error, out of the due order."""
    conn.execute(
        "INSERT INTO dead_timers (kind, key, due_at, attempts, error, died_at) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (kind, key) DO UPDATE SET due_at = ?3, attempts = ?4, error = ?5, died_at = ?6",
        (kind, key, due_at, attempts, error, now),
    )


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Timers `failed` (set again after a failure) and `dead`; both read from small indexes."""
    failed = conn.execute("SELECT count(*) FROM timers INDEXED BY timers_failed WHERE attempts > 0").fetchone()[0]
    dead = conn.execute("SELECT count(*) FROM dead_timers").fetchone()[0]
    return {"failed": failed, "dead": dead}


def dead(conn: sqlite3.Connection, limit: int) -> list[dict[str, Any]]:
    """The dead timers, the latest to die first."""
    rows = conn.execute(
        "SELECT kind, key, due_at, attempts, error, died_at FROM dead_timers ORDER BY died_at DESC LIMIT ?", (limit,)
    ).fetchall()
    names = ("kind", "key", "dueAt", "attempts", "error", "diedAt")
    return [dict(zip(names, row, strict=True)) for row in rows]


def revive(conn: sqlite3.Connection, now: int, kind: str | None = None, key: str | None = None) -> int:
    """Set dead timers (every one, or those of `kind`, or one) due again at `now` with no attempt counted, unless
    their kind and key was set again meanwhile; returns how many left the dead."""
    where = " WHERE true"  # an INSERT ... SELECT needs a WHERE before its ON CONFLICT
    params: tuple[str, ...] = ()
    if kind is not None:
        where, params = (" WHERE kind = ?", (kind,)) if key is None else (" WHERE kind = ? AND key = ?", (kind, key))
    conn.execute(
        f"INSERT INTO timers (kind, key, due_at) SELECT kind, key, ? FROM dead_timers{where} ON CONFLICT DO NOTHING",
        (now, *params),
    )
    return conn.execute(f"DELETE FROM dead_timers{where}", params).rowcount
