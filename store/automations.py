"""Lifecycle automations: one subscriber in one flow (replenishment, back_in_stock, checkout) for one key (a
product, a variant, a checkout), `active` until `fired` or `stopped` with a reason; it keeps what the read API
shows and what the fired event says (`data`).

An active automation with a due time is its own durable timer: `fire_at`, read in due order through an index of
the rows set to fire, is set with the row and cleared in the transaction that fires or stops it. One whose
firing failed is handed to `store.timers` for its retries.
"""

import sqlite3
from dataclasses import dataclass
from typing import Any

from normalizer.timefmt import format_instant_us
from store import automation_counts
from store import json_columns as json

REPLENISHMENT, BACK_IN_STOCK, CHECKOUT = "replenishment", "back_in_stock", "checkout"
TIMED = (REPLENISHMENT, CHECKOUT)  # the flows whose automations come due


@dataclass(slots=True)
class Automation:
    id: int
    subscriber_id: int
    flow: str
    key: str
    status: str
    source: str | None
    order_id: str | None
    # Replenishment: the order's orderedAt (µs), which decides the newest order; a native checkout: the
    # platform's update time, so an older update never overwrites a newer one.
    ordered_at: int | None
    started_at: int
    due_at: int | None
    fired_at: int | None
    stopped_at: int | None
    reason: str | None
    data: dict[str, Any]
    # The due time while it is still to fire here; None once taken (fired, stopped, or handed to store.timers).
    fire_at: int | None = None

    def as_api(self) -> dict[str, Any]:
        return {
            "flow": self.flow,
            "key": self.key,
            "status": self.status,
            "startedAt": _iso(self.started_at),
            "dueAt": _iso(self.due_at),
            "firedAt": _iso(self.fired_at),
            "stoppedAt": _iso(self.stopped_at),
            "reason": self.reason,
            "orderId": self.order_id,
        }


def _iso(micros: int | None) -> str | None:
    return None if micros is None else format_instant_us(micros)


_COLUMNS = (
    "id, subscriber_id, flow, key, status, source, order_id, ordered_at, started_at, due_at, fired_at, stopped_at,"
    " reason, data, fire_at"
)


def _row(row: tuple[Any, ...]) -> Automation:
    return Automation(
        id=row[0],
        subscriber_id=row[1],
        flow=row[2],
        key=row[3],
        status=row[4],
        source=row[5],
        order_id=row[6],
        ordered_at=row[7],
        started_at=row[8],
        due_at=row[9],
        fired_at=row[10],
        stopped_at=row[11],
        reason=row[12],
        data=json.loads(row[13]),
        fire_at=row[14],
    )


def start(
    conn: sqlite3.Connection,
    subscriber_id: int,
    flow: str,
    key: str,
    now: int,
    data: dict[str, Any],
    due_at: int | None = None,
    source: str | None = None,
    order_id: str | None = None,
    ordered_at: int | None = None,
    stopped: str | None = None,
) -> int:
    """A new automation, `active` and set to fire at `due_at` if given (or already `stopped` with reason
    `stopped`: an order that arrived after a newer one of its key, kept so the order's history is whole);
    returns its id."""
    status = "active" if stopped is None else "stopped"
    cursor = conn.execute(
        "INSERT INTO automations (subscriber_id, flow, key, status, source, order_id, ordered_at, started_at,"
        " due_at, stopped_at, reason, data, fire_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            subscriber_id,
            flow,
            key,
            status,
            source,
            order_id,
            ordered_at,
            now,
            due_at,
            None if stopped is None else now,
            stopped,
            json.dumps(data),
            due_at if stopped is None else None,
        ),
    )
    assert cursor.lastrowid is not None
    if stopped is None and flow != REPLENISHMENT:
        # Counted here rather than by a trigger, which would run its program for every row, replenishment's too.
        conn.execute("UPDATE subscribers SET open_waits = open_waits + 1 WHERE id = ?", (subscriber_id,))
    return cursor.lastrowid


def exists(conn: sqlite3.Connection, subscriber_id: int, flow: str, key: str) -> bool:
    """Whether the subscriber has an automation of this flow and key, whatever its status (one index probe).
    (A probe and an insert cost less than one INSERT ... SELECT WHERE NOT EXISTS, which SQLite runs through a
    temporary table because it reads the table it writes.)"""
    return conn.execute(_EXISTS, (subscriber_id, flow, key)).fetchone() is not None


_EXISTS = "SELECT 1 FROM automations WHERE subscriber_id = ? AND flow = ? AND key = ? LIMIT 1"


def get(conn: sqlite3.Connection, automation_id: int) -> Automation | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM automations WHERE id = ?", (automation_id,)).fetchone()
    return _row(row) if row else None


def of_key(conn: sqlite3.Connection, subscriber_id: int, flow: str, key: str) -> list[Automation]:
    """Every automation of one subscriber, flow and key, oldest first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM automations WHERE subscriber_id = ? AND flow = ? AND key = ? ORDER BY id",
        (subscriber_id, flow, key),
    ).fetchall()
    return [_row(row) for row in rows]


def active(conn: sqlite3.Connection, subscriber_id: int, *flows: str) -> list[Automation]:
    """The subscriber's active automations of these flows, oldest first (one query for all of them)."""
    marks = ", ".join("?" * len(flows))
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM automations WHERE subscriber_id = ? AND flow IN ({marks}) AND status = 'active'"
        " ORDER BY id",
        (subscriber_id, *flows),
    ).fetchall()
    return [_row(row) for row in rows]


def by_key(conn: sqlite3.Connection, flow: str, key: str) -> list[Automation]:
    """Every subscriber's automations of a back_in_stock or checkout key, oldest first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM automations WHERE flow = ? AND key = ? AND flow != 'replenishment' ORDER BY id",
        (flow, key),
    ).fetchall()
    return [_row(row) for row in rows]


def waiting(conn: sqlite3.Connection, key: str, up_to: int, limit: int) -> list[Automation]:
    """Active back-in-stock waits for `key` with an id up to `up_to`, oldest first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM automations WHERE flow = 'back_in_stock' AND key = ? AND flow != 'replenishment'"
        " AND status = 'active' AND id <= ? ORDER BY id LIMIT ?",
        (key, up_to, limit),
    ).fetchall()
    return [_row(row) for row in rows]


def count_waiting(conn: sqlite3.Connection, key: str) -> tuple[int, int]:
    """(how many active back-in-stock waits `key` has, the newest one's id)."""
    count, newest = conn.execute(
        "SELECT count(*), coalesce(max(id), 0) FROM automations WHERE flow = 'back_in_stock' AND key = ?"
        " AND flow != 'replenishment' AND status = 'active'",
        (key,),
    ).fetchone()
    return count, newest


def fire(conn: sqlite3.Connection, automation_id: int, now: int) -> bool:
    """Active -> fired; False when it was no longer active."""
    return (
        conn.execute(
            "UPDATE automations SET status = 'fired', fired_at = ?, fire_at = NULL WHERE id = ? AND status = 'active'",
            (now, automation_id),
        ).rowcount
        == 1
    )


def stop(conn: sqlite3.Connection, automation_id: int, now: int, reason: str) -> bool:
    """Active -> stopped with `reason`; False when it was no longer active."""
    return (
        conn.execute(
            "UPDATE automations SET status = 'stopped', stopped_at = ?, reason = ?, fire_at = NULL"
            " WHERE id = ? AND status = 'active'",
            (now, reason, automation_id),
        ).rowcount
        == 1
    )


def update(
    conn: sqlite3.Connection, automation_id: int, due_at: int | None, data: dict[str, Any], version: int | None
) -> None:
    """New due time (to fire at) and data; `version` (the platform's update time) replaces the stored one when
    given."""
    conn.execute(
        "UPDATE automations SET due_at = ?1, fire_at = ?1, data = ?2, ordered_at = coalesce(?3, ordered_at)"
        " WHERE id = ?4",
        (due_at, json.dumps(data), version, automation_id),
    )


def due(conn: sqlite3.Connection, flow: str, now: int, limit: int) -> list[tuple[int, int]]:
    """Up to `limit` active automations of `flow` due at `now`, earliest first, as (id, fire_at)."""
    return conn.execute(_DUE, (flow, now, limit)).fetchall()


_DUE = (
    "SELECT id, fire_at FROM automations INDEXED BY automations_due WHERE flow = ? AND fire_at <= ?"
    " ORDER BY fire_at LIMIT ?"
)


def take(conn: sqlite3.Connection, automation_id: int, now: int) -> bool:
    """Clear a due automation's `fire_at` (its firing failed: it is retried from `store.timers`); False when it
    is no longer due. Firing or stopping it clears `fire_at` too."""
    return conn.execute(_TAKE, (automation_id, now)).rowcount == 1


_TAKE = "UPDATE automations SET fire_at = NULL WHERE id = ? AND fire_at <= ?"


def next_due(conn: sqlite3.Connection, flow: str) -> int | None:
    """The earliest `fire_at` of `flow`'s active automations, or None; one probe of the index."""
    row = conn.execute(_NEXT_DUE, (flow,)).fetchone()
    return row[0] if row else None


_NEXT_DUE = "SELECT min(fire_at) FROM automations INDEXED BY automations_due WHERE flow = ? AND fire_at IS NOT NULL"


def for_subscriber(conn: sqlite3.Connection, subscriber_id: int, limit: int = 1000) -> list[Automation]:
    """Newest first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM automations WHERE subscriber_id = ? ORDER BY id DESC LIMIT ?",
        (subscriber_id, limit),
    ).fetchall()
    return [_row(row) for row in rows]


def forget_subscriber(conn: sqlite3.Connection, subscriber_id: int) -> int:
    """Delete a subscriber's automations and their timers retrying in `store.timers` (the subscriber is being
    erased); returns how many."""
    conn.execute(
        "DELETE FROM timers WHERE kind = 'automation' AND key IN"
        " (SELECT CAST(id AS TEXT) FROM automations WHERE subscriber_id = ?)",
        (subscriber_id,),
    )
    deleted = conn.execute("DELETE FROM automations WHERE subscriber_id = ?", (subscriber_id,)).rowcount
    automation_counts.after_delete(conn)
    return deleted
