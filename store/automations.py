"""Lifecycle automations: one subscriber in one flow (replenishment, back_in_stock, checkout) for one key (a
product, a variant, a checkout), `active` until `fired` or `stopped` with a reason. Due times live in
`store.timers`; this table keeps what the read API shows and what the fired event says (`data`)."""

import sqlite3
from dataclasses import dataclass
from typing import Any

from normalizer.timefmt import format_instant_us
from store import json_columns as json

REPLENISHMENT, BACK_IN_STOCK, CHECKOUT = "replenishment", "back_in_stock", "checkout"


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
    " reason, data"
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
    """A new automation, `active` (or already `stopped` with reason `stopped`: an order that arrived after a
    newer one of its key, kept so the order's history is whole); returns its id."""
    status = "active" if stopped is None else "stopped"
    cursor = conn.execute(
        "INSERT INTO automations (subscriber_id, flow, key, status, source, order_id, ordered_at, started_at,"
        " due_at, stopped_at, reason, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        ),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def exists(conn: sqlite3.Connection, subscriber_id: int, flow: str, key: str) -> bool:
    """Whether the subscriber has an automation of this flow and key, whatever its status (one index probe)."""
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
            "UPDATE automations SET status = 'fired', fired_at = ? WHERE id = ? AND status = 'active'",
            (now, automation_id),
        ).rowcount
        == 1
    )


def stop(conn: sqlite3.Connection, automation_id: int, now: int, reason: str) -> bool:
    """Active -> stopped with `reason`; False when it was no longer active."""
    return (
        conn.execute(
            "UPDATE automations SET status = 'stopped', stopped_at = ?, reason = ? WHERE id = ? AND status = 'active'",
            (now, reason, automation_id),
        ).rowcount
        == 1
    )


def update(
    conn: sqlite3.Connection, automation_id: int, due_at: int | None, data: dict[str, Any], version: int | None
) -> None:
    """New due time and data; `version` (the platform's update time) replaces the stored one when given."""
    conn.execute(
        "UPDATE automations SET due_at = ?, data = ?, ordered_at = coalesce(?, ordered_at) WHERE id = ?",
        (due_at, json.dumps(data), version, automation_id),
    )


def for_subscriber(conn: sqlite3.Connection, subscriber_id: int, limit: int = 1000) -> list[Automation]:
    """Newest first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM automations WHERE subscriber_id = ? ORDER BY id DESC LIMIT ?",
        (subscriber_id, limit),
    ).fetchall()
    return [_row(row) for row in rows]


def active_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Active automations by flow (for metrics): kept by the table's triggers, so no scan."""
    rows = conn.execute("SELECT flow, active FROM automation_counts WHERE active > 0").fetchall()
    return {flow: count for flow, count in rows}


def forget_subscriber(conn: sqlite3.Connection, subscriber_id: int) -> int:
    """Delete a subscriber's automations and their timers (the subscriber is being erased); returns how many."""
    conn.execute(
        "DELETE FROM timers WHERE kind = 'automation' AND key IN"
        " (SELECT CAST(id AS TEXT) FROM automations WHERE subscriber_id = ?)",
        (subscriber_id,),
    )
    return conn.execute("DELETE FROM automations WHERE subscriber_id = ?", (subscriber_id,)).rowcount
