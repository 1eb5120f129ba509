"""The sender's side of the outbox: claim due deliveries under a lease, record each attempt and its outcome.
Each query names its statuses as literals (`status = 'pending' OR status = 'failed'`, as the partial indexes are
written), so that SQLite finds the index whose rows it wants: `deliveries_due`, `deliveries_leased`,
`deliveries_dead` (`store.schema_flows.deliveries_narrowed`).

A claimed delivery is `delivering`, leased to one sending process until `lease_expires`; a process killed while
sending leaves its leases to expire, and another (or the restarted one) sends those deliveries again with the
same webhook-id: at least once."""

import re
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from store import json_columns, outbox
from store.statuses import DELIVERY_STATUSES


@dataclass(slots=True)
class Claimed:
    delivery_id: int
    webhook_id: str
    destination: str
    tries: int  # attempts before this one since the last replay
    event_id: int | None  # None: the event is gone (erased)
    name: str
    properties: str  # JSON
    occurred_at: int
    subscriber: tuple[Any, ...] | None  # email, external_id, first_name, last_name, attributes JSON, count, cents


@dataclass(slots=True)
class Attempt:
    delivery_id: int
    at: int
    status_code: int | None
    duration_ms: int
    error: str | None
    response_body: str | None
    status: str  # the delivery's status after it: succeeded | failed | dead
    next_attempt_at: int | None
    webhook_id: str  # the attempted delivery's: its row, not another given its id after an erasure (`finish`)


# A delivery's webhook-id, from its row `d`: `msg_`, the creation time (µs, 14 hex digits) and the id (10 hex
# digits): stable for the row, unique, ordered by time. Derived when read, not stored: an indexed (or generated)
# column cost every insert ~4,000 instructions more. A delivery written before kept the id it was given.
WEBHOOK_ID = "coalesce(d.stored_webhook_id, 'msg_' || printf('%014x%010x', d.created_at, d.id))"
_DERIVED = re.compile(r"msg_([0-9a-f]{14})([0-9a-f]{10})")
_CLAIM = (
    f"SELECT d.id, {WEBHOOK_ID}, d.tries, e.id, e.name, e.properties, e.occurred_at, s.email, s.external_id,"
    " s.first_name, s.last_name, s.attributes, s.orders_count, s.total_spent_cents"
    " FROM deliveries AS d LEFT JOIN events AS e ON e.id = d.event_id"
    " LEFT JOIN subscribers AS s ON s.id = e.subscriber_id"
    " WHERE d.destination = ? AND (d.status = 'pending' OR d.status = 'failed') AND d.next_attempt_at <= ?"
    " ORDER BY d.next_attempt_at LIMIT ?"
)
_LEASE = "UPDATE deliveries SET status = 'delivering', lease_owner = ?, lease_expires = ?, updated_at = ? WHERE id = ?"
_ATTEMPT = (
    "INSERT INTO delivery_attempts (delivery_id, at, status_code, duration_ms, error, response_body)"
    f" SELECT d.id, ?, ?, ?, ?, ? FROM deliveries AS d WHERE d.id = ? AND {WEBHOOK_ID} = ?"
)
_OUTCOME = (
    "UPDATE deliveries SET status = ?, attempts = attempts + 1, tries = tries + 1, next_attempt_at = ?,"
    " lease_owner = NULL, lease_expires = NULL, updated_at = ? WHERE id = ? AND status = 'delivering'"
    " AND lease_owner = ?"
)


def claim(
    conn: sqlite3.Connection, destination: str, owner: str, now: int, lease_until: int, limit: int
) -> list[Claimed]:
    """Lease up to `limit` due deliveries of one destination, oldest due first. Call in a transaction."""
    rows = conn.execute(_CLAIM, (destination, now, limit)).fetchall()
    if not rows:
        return []
    conn.executemany(_LEASE, [(owner, lease_until, now, row[0]) for row in rows])
    return [
        Claimed(
            row[0],
            row[1],
            destination,
            row[2],
            row[3],
            row[4] or "",
            row[5] or "{}",
            row[6] or 0,
            row[7:] if row[7] is not None else None,
        )
        for row in rows
    ]


def finish(conn: sqlite3.Connection, attempts: Sequence[Attempt], owner: str) -> None:
    """Record attempts and their deliveries' outcomes (a delivery replayed or taken over meanwhile keeps its new
    state; its attempt is recorded all the same). The attempt of a delivery erased meanwhile is not: a new delivery
    may have its id by then (its webhook-id tells them apart). Call in a transaction."""
    conn.executemany(
        _ATTEMPT,
        [(a.at, a.status_code, a.duration_ms, a.error, a.response_body, a.delivery_id, a.webhook_id) for a in attempts],
    )
    conn.executemany(_OUTCOME, [(a.status, a.next_attempt_at, a.at, a.delivery_id, owner) for a in attempts])


def release_expired(conn: sqlite3.Connection, owner: str, now: int) -> int:
    """Deliveries whose sender died mid-attempt (its lease ran out) become due again. A lease of `owner` itself is
    still in its hands, however late. Returns how many."""
    return conn.execute(
        "UPDATE deliveries SET status = 'pending', lease_owner = NULL, lease_expires = NULL, next_attempt_at = ?,"
        " updated_at = ? WHERE status = 'delivering' AND lease_expires <= ? AND lease_owner != ?",
        (now, now, now, owner),
    ).rowcount


def next_due(conn: sqlite3.Connection, destinations: Iterable[str]) -> int | None:
    """When the earliest waiting delivery of these destinations is due (µs), None when none waits."""
    found = [
        conn.execute(
            "SELECT min(next_attempt_at) FROM deliveries WHERE destination = ?"
            " AND (status = 'pending' OR status = 'failed')",
            (name,),
        ).fetchone()[0]
        for name in destinations
    ]
    due = [at for at in found if at is not None]
    return min(due) if due else None


_VIEW = (
    f"SELECT d.id, {WEBHOOK_ID}, d.destination, d.event_id, e.name, d.status, d.attempts, d.next_attempt_at,"
    " d.created_at, d.updated_at"
)
_FROM = " FROM deliveries AS d LEFT JOIN events AS e ON e.id = d.event_id"
_VIEW_KEYS = (
    "id",
    "deliveryId",
    "destination",
    "eventId",
    "type",
    "status",
    "attemptCount",
    "nextAttemptAt",
    "createdAt",
    "updatedAt",
)


# The partial index holding each status but the common one: the few waiting, leased or dead deliveries are read
# from it and sorted, never found by scanning every delivery past them.
_HELD_IN = {"pending": "deliveries_due", "failed": "deliveries_due", "delivering": "deliveries_leased"}
_HELD_IN["dead"] = "deliveries_dead"


def listing(
    conn: sqlite3.Connection, destination: str | None, status: str | None, before: int | None, limit: int
) -> list[dict[str, Any]]:
    """Deliveries newest first, each with the `cursor` that reads on below it (pass it as `before`). One
    destination's are read by event (`deliveries_event`, keyed destination first), all destinations' by id; a
    status other than succeeded from the partial index that holds it (`_HELD_IN`). Either way a page is read
    without passing over the deliveries it leaves out."""
    where = []
    if destination is not None:
        where.append("d.destination = ?1 AND d.event_id < ?2")
        order = "d.event_id"
    else:
        where.append("d.id < ?2")
        order = "d.id"
    source = _FROM
    if status is not None:
        if status not in DELIVERY_STATUSES:
            raise ValueError(f"not a delivery status: {status!r}")
        where.append(f"d.status = '{status}'")
        if status in _HELD_IN:
            source = _FROM.replace("AS d", f"AS d INDEXED BY {_HELD_IN[status]}")
    rows = conn.execute(
        f"{_VIEW}, {order}{source} WHERE {' AND '.join(where)} ORDER BY {order} DESC LIMIT ?3",
        (destination, before if before is not None else 2**63 - 1, limit),
    ).fetchall()
    return [dict(zip((*_VIEW_KEYS, "cursor"), row, strict=True)) for row in rows]


def _find(conn: sqlite3.Connection, webhook_id: str) -> tuple[int, str] | None:
    """(id, status) of the delivery with this webhook-id: one stored before the ids were derived, or one whose
    derived id it is (`msg_`, creation time and id in hex)."""
    row = conn.execute(
        "SELECT d.id, d.status FROM legacy_webhook_ids AS w JOIN deliveries AS d ON d.id = w.delivery_id"
        " WHERE w.webhook_id = ?",
        (webhook_id,),
    ).fetchone()
    derived = _DERIVED.fullmatch(webhook_id)
    if row is None and derived is not None:
        row = conn.execute(
            "SELECT id, status FROM deliveries WHERE id = ? AND created_at = ? AND stored_webhook_id IS NULL",
            (int(derived[2], 16), int(derived[1], 16)),
        ).fetchone()
    return None if row is None else (row[0], row[1])


def get(conn: sqlite3.Connection, webhook_id: str) -> dict[str, Any] | None:
    """One delivery with every attempt made, oldest first."""
    found_id = _find(conn, webhook_id)
    if found_id is None:
        return None
    row = conn.execute(f"{_VIEW}{_FROM} WHERE d.id = ?", (found_id[0],)).fetchone()
    found = dict(zip(_VIEW_KEYS, row, strict=True))
    found["attempts"] = [
        dict(zip(("at", "statusCode", "durationMs", "error", "responseBody"), attempt, strict=True))
        for attempt in conn.execute(
            "SELECT at, status_code, duration_ms, error, response_body FROM delivery_attempts"
            " WHERE delivery_id = ? ORDER BY id",
            (found["id"],),
        )
    ]
    return found


# What `replay` answers for a delivery whose destination is no longer configured: nothing would ever send it.
UNCONFIGURED = "unconfigured"


def replay(conn: sqlite3.Connection, webhook_id: str, now: int) -> str | None:
    """Make one delivery due now, its retry schedule started over (same webhook-id). Returns its status before,
    None when there is no such delivery; a delivery in flight is left as it is, and one of a destination no
    longer configured too (`UNCONFIGURED`)."""
    found = _find(conn, webhook_id)
    if found is None:
        return None
    delivery_id, status = found
    configured = conn.execute(
        "SELECT t.configured FROM deliveries AS d JOIN destinations AS t ON t.name = d.destination WHERE d.id = ?",
        (delivery_id,),
    ).fetchone()
    if not (configured and configured[0]):
        return UNCONFIGURED
    if status != "delivering":
        conn.execute(
            "UPDATE deliveries SET status = 'pending', tries = 0, next_attempt_at = ?, updated_at = ? WHERE id = ?",
            (now, now, delivery_id),
        )
    return status


def replay_dead(conn: sqlite3.Connection, destination: str, since: int, now: int) -> int:
    """Every dead delivery of a destination whose event was recorded since `since` (µs) becomes due now."""
    return conn.execute(
        "UPDATE deliveries SET status = 'pending', tries = 0, next_attempt_at = ?, updated_at = ?"
        " WHERE destination = ? AND status = 'dead'"
        " AND event_id IN (SELECT id FROM events WHERE occurred_at >= ?)",
        (now, now, destination, since),
    ).rowcount


def offer_missed(
    conn: sqlite3.Connection, destination: str, since: int, now: int, wants: Callable[[str, bool], bool]
) -> int:
    """Deliveries for the events recorded since `since` that this destination never got (recorded before it was
    configured, or left out as historical), where `wants(name, historical)`. Returns how many were written."""
    rows = conn.execute(
        "SELECT e.id, e.name, e.properties FROM events AS e WHERE e.occurred_at >= ? AND NOT EXISTS"
        " (SELECT 1 FROM deliveries AS d WHERE d.event_id = e.id AND d.destination = ?) ORDER BY e.id",
        (since, destination),
    ).fetchall()
    missing = [
        (event_id, destination, now)
        for event_id, name, properties in rows
        if wants(name, json_columns.loads(properties).get("historical") is True)
    ]
    conn.executemany(outbox.INSERT, missing)
    return len(missing)
