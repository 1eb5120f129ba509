"""Segment membership in SQLite: the stored definitions (by fingerprint) with their member counts, who is in
each segment, and the reads that give conditions their facts, one subscriber at a time or a range of
subscribers at once. When time alone moves a subscriber's membership is a durable timer (`store.timers`) of
kind SEGMENT_TIMER keyed by the subscriber id."""

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from store import json_columns as json
from store import timers

SEGMENT_TIMER = "segment"

# Of the subscriber's orders, those segments count: neither cancelled nor fully refunded.
_COUNTED = "NOT o.cancelled AND NOT (o.refunded_cents > 0 AND o.refunded_cents >= o.total_cents)"


@dataclass(slots=True)
class Defined:
    name: str
    fingerprint: str
    members: int
    built_at: int


@dataclass(slots=True)
class Membership:
    member: bool
    changes: int  # transitions so far (in and out), which numbers each one's event


def defined(conn: sqlite3.Connection) -> dict[str, Defined]:
    rows = conn.execute("SELECT name, fingerprint, members, built_at FROM segments ORDER BY name").fetchall()
    return {row[0]: Defined(*row) for row in rows}


def define(conn: sqlite3.Connection, name: str, fingerprint: str, built_at: int) -> None:
    """Record a segment as built from the definition of `fingerprint`; its member count is recounted."""
    conn.execute(
        "INSERT INTO segments (name, fingerprint, members, built_at) VALUES (?1, ?2,"
        " (SELECT count(*) FROM segment_members WHERE segment = ?1 AND member), ?3)"
        " ON CONFLICT (name) DO UPDATE SET fingerprint = excluded.fingerprint, members = excluded.members,"
        " built_at = excluded.built_at",
        (name, fingerprint, built_at),
    )


def drop(conn: sqlite3.Connection, name: str) -> int:
    """Forget a segment that is no longer defined; returns how many members it had."""
    removed = conn.execute("DELETE FROM segment_members WHERE segment = ? AND member", (name,)).rowcount
    conn.execute("DELETE FROM segment_members WHERE segment = ?", (name,))
    conn.execute("DELETE FROM segments WHERE name = ?", (name,))
    return removed


def memberships(conn: sqlite3.Connection, subscriber_id: int) -> dict[str, Membership]:
    rows = conn.execute(
        "SELECT segment, member, changes FROM segment_members WHERE subscriber_id = ?", (subscriber_id,)
    ).fetchall()
    return {segment: Membership(bool(member), changes) for segment, member, changes in rows}


def memberships_between(conn: sqlite3.Connection, first: int, last: int) -> dict[int, dict[str, Membership]]:
    found: dict[int, dict[str, Membership]] = {}
    for subscriber_id, segment, member, changes in conn.execute(
        "SELECT subscriber_id, segment, member, changes FROM segment_members WHERE subscriber_id BETWEEN ? AND ?",
        (first, last),
    ):
        found.setdefault(subscriber_id, {})[segment] = Membership(bool(member), changes)
    return found


def set_member(conn: sqlite3.Connection, segment: str, subscriber_id: int, member: bool, changes: int, now: int) -> int:
    """Store one transition (`changes` already counts it) and keep the segment's member count with it; returns
    when the segment's definition was built (0 if it is not recorded yet), which with `changes` keys its event."""
    conn.execute(
        "INSERT INTO segment_members (subscriber_id, segment, member, changes, changed_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (subscriber_id, segment) DO UPDATE SET member = excluded.member,"
        " changes = excluded.changes, changed_at = excluded.changed_at",
        (subscriber_id, segment, int(member), changes, now),
    )
    row = conn.execute(
        "UPDATE segments SET members = members + ? WHERE name = ? RETURNING built_at", (1 if member else -1, segment)
    ).fetchone()
    return int(row[0]) if row else 0


def built_at(conn: sqlite3.Connection, segment: str) -> int:
    row = conn.execute("SELECT built_at FROM segments WHERE name = ?", (segment,)).fetchone()
    return int(row[0]) if row else 0


def set_members(conn: sqlite3.Connection, rows: Sequence[tuple[int, str, int, int, int]]) -> None:
    """Many transitions at once, (subscriber_id, segment, member, changes, changed_at); counts are the caller's
    (`define` recounts them)."""
    conn.executemany(
        "INSERT INTO segment_members (subscriber_id, segment, member, changes, changed_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (subscriber_id, segment) DO UPDATE SET member = excluded.member,"
        " changes = excluded.changes, changed_at = excluded.changed_at",
        rows,
    )


def of_subscriber(conn: sqlite3.Connection, subscriber_id: int) -> list[str]:
    """The segments a subscriber is in, by name."""
    return [
        row[0]
        for row in conn.execute(
            "SELECT segment FROM segment_members WHERE subscriber_id = ? AND member ORDER BY segment",
            (subscriber_id,),
        )
    ]


def members(conn: sqlite3.Connection, segment: str, after: int, limit: int) -> list[tuple[int, str]]:
    """(subscriber id, email) of a segment's members with ids above `after`, in id order."""
    return conn.execute(
        "SELECT m.subscriber_id, s.email FROM segment_members AS m JOIN subscribers AS s ON s.id = m.subscriber_id"
        " WHERE m.segment = ? AND m.member AND m.subscriber_id > ? ORDER BY m.subscriber_id LIMIT ?",
        (segment, after, limit),
    ).fetchall()


def forget_subscriber(conn: sqlite3.Connection, subscriber_id: int) -> None:
    """A subscriber erased: out of every segment (counts kept), no timer."""
    for (segment,) in conn.execute(
        "SELECT segment FROM segment_members WHERE subscriber_id = ? AND member", (subscriber_id,)
    ).fetchall():
        conn.execute("UPDATE segments SET members = members - 1 WHERE name = ?", (segment,))
    conn.execute("DELETE FROM segment_members WHERE subscriber_id = ?", (subscriber_id,))
    timers.cancel(conn, SEGMENT_TIMER, str(subscriber_id))


# Facts: what conditions read. Profiles are (id, email, externalId, firstName, lastName, attributes JSON,
# ordersCount, totalSpentCents); orders are (source, orderedAt µs, items JSON); events (name, occurredAt µs).

Profile = tuple[int, str, str | None, str | None, str | None, str, int, int]
_PROFILE = (
    "SELECT id, email, external_id, first_name, last_name, attributes, orders_count, total_spent_cents FROM subscribers"
)


# A subscriber's profile, their memberships ("segment member changes", comma-separated: segment names have
# neither) and their segment timer, in one statement: every evaluation reads all three.
_STATE = (
    "SELECT s.id, s.email, s.external_id, s.first_name, s.last_name, s.attributes, s.orders_count,"
    " s.total_spent_cents, (SELECT group_concat(m.segment || ' ' || m.member || ' ' || m.changes)"
    " FROM segment_members AS m WHERE m.subscriber_id = s.id),"
    f" (SELECT t.due_at FROM timers AS t WHERE t.kind = '{SEGMENT_TIMER}' AND t.key = CAST(s.id AS TEXT))"
    " FROM subscribers AS s WHERE s.id = ?"
)


def state(conn: sqlite3.Connection, subscriber_id: int) -> tuple[Profile, dict[str, Membership], int | None] | None:
    """(profile, memberships, due time of their segment timer) of one subscriber; None if there is none."""
    row = conn.execute(_STATE, (subscriber_id,)).fetchone()
    if row is None:
        return None
    states = {}
    if row[8]:
        for entry in row[8].split(","):
            segment, member, changes = entry.split(" ")
            states[segment] = Membership(member == "1", int(changes))
    return row[:8], states, row[9]


def profiles_after(conn: sqlite3.Connection, after: int, limit: int) -> list[Profile]:
    rows: list[Profile] = conn.execute(f"{_PROFILE} WHERE id > ? ORDER BY id LIMIT ?", (after, limit)).fetchall()
    return rows


# Of a stored `orderedAt` (always `YYYY-MM-DDTHH:MM:SS.mmmZ`, UTC), µs since the epoch, computed by SQLite.
_ORDERED_US = (
    "CAST(strftime('%s', o.ordered_at) AS INTEGER) * 1000000 + CAST(substr(o.ordered_at, 21, 3) AS INTEGER) * 1000"
)


def items_of(raw: str | None) -> tuple[tuple[str | None, str | None], ...]:
    if not raw:
        return ()
    return tuple((item.get("productId"), item.get("variantId")) for item in json.loads(raw))


def counted_orders(conn: sqlite3.Connection, email: str, items: bool) -> list[tuple[str, int, str | None]]:
    """(source, orderedAt µs, items JSON when `items`) of the orders segments count."""
    rows: list[tuple[str, int, str | None]] = conn.execute(
        f"SELECT o.source, {_ORDERED_US}, {'o.items' if items else 'NULL'} FROM orders AS o"
        f" WHERE o.email = ? AND {_COUNTED}",
        (email,),
    ).fetchall()
    return rows


def counted_orders_between(
    conn: sqlite3.Connection, first: int, last: int, items: bool
) -> list[tuple[int, str, int, str | None]]:
    """(subscriber id, source, orderedAt µs, items JSON when `items`) of the counted orders of subscribers with
    ids in range."""
    rows: list[tuple[int, str, int, str | None]] = conn.execute(
        f"SELECT s.id, o.source, {_ORDERED_US}, {'o.items' if items else 'NULL'} FROM subscribers AS s"
        f" JOIN orders AS o ON o.email = s.email WHERE s.id BETWEEN ? AND ? AND {_COUNTED}",
        (first, last),
    ).fetchall()
    return rows


def _among(names: Sequence[str]) -> str:
    return ", ".join("?" * len(names))


def events_named(conn: sqlite3.Connection, subscriber_id: int, names: Sequence[str]) -> list[tuple[str, int]]:
    rows: list[tuple[str, int]] = conn.execute(
        f"SELECT name, occurred_at FROM events WHERE subscriber_id = ? AND name IN ({_among(names)})",
        (subscriber_id, *names),
    ).fetchall()
    return rows


def events_named_between(
    conn: sqlite3.Connection, first: int, last: int, names: Sequence[str]
) -> list[tuple[int, str, int]]:
    rows: list[tuple[int, str, int]] = conn.execute(
        "SELECT subscriber_id, name, occurred_at FROM events WHERE subscriber_id BETWEEN ? AND ?"
        f" AND name IN ({_among(names)})",
        (first, last, *names),
    ).fetchall()
    return rows
