"""Segment membership in SQLite: the stored definitions (by fingerprint) with their member counts, each
segment's members (for listing), and per subscriber, in their own row, how many times they entered or left each
segment; plus the reads that give conditions their facts, one subscriber at
a time or a range of subscribers at once. When time alone moves a subscriber's membership is a durable timer
(`store.timers`) of kind SEGMENT_TIMER keyed by the subscriber id."""

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

from store import events, timers
from store import json_columns as json
from store.db import execute_rows

SEGMENT_TIMER = "segment"
_T = TypeVar("_T")
# Of the subscriber's orders, those segments count: neither cancelled nor fully refunded.
_COUNTED = "NOT o.cancelled AND NOT (o.refunded_cents > 0 AND o.refunded_cents >= o.total_cents)"


@dataclass(slots=True)
class Defined:
    name: str
    fingerprint: str
    members: int
    built_at: int


# A subscriber's transitions per segment, kept in their row as "vip 3,fans 1" (segment names have neither a space
# nor a comma). Transitions alternate, entering first, so an odd count is a member; the count numbers the next
# transition's event.
Changes = dict[str, int]


def parse_changes(text: str | None) -> Changes:
    if not text:
        return {}
    changes = {}
    for entry in text.split(","):
        segment, count = entry.split(" ")
        changes[segment] = int(count)
    return changes


def format_changes(changes: Changes) -> str | None:
    return ",".join(f"{segment} {count}" for segment, count in changes.items()) or None


# Subscribers share a few texts (the same segments, mostly entered once): each is parsed, and each change of one
# formatted, once, then remembered.
_TEXTS = 4096


@lru_cache(maxsize=_TEXTS)
def stored_changes(text: str | None) -> Mapping[str, int]:
    """The transition counts of `text` (as stored), shared by every reader of the same text: never changed."""
    return parse_changes(text)


@lru_cache(maxsize=_TEXTS)
def advanced(text: str | None, moved: tuple[tuple[str, bool], ...]) -> str | None:
    """`text` (as stored) with one more transition of each segment in `moved` (name, new membership)."""
    changes = parse_changes(text)
    for name, _ in moved:
        changes[name] = changes.get(name, 0) + 1
    return format_changes(changes)


def defined(conn: sqlite3.Connection) -> dict[str, Defined]:
    rows = conn.execute("SELECT name, fingerprint, members, built_at FROM segments ORDER BY name").fetchall()
    return {row[0]: Defined(*row) for row in rows}


def define(conn: sqlite3.Connection, name: str, fingerprint: str, built_at: int) -> None:
    """Record a segment as built from the definition of `fingerprint`; its member count is recounted."""
    conn.execute(
        "INSERT INTO segments (name, fingerprint, members, built_at) VALUES (?1, ?2,"
        " (SELECT count(*) FROM segment_members WHERE segment = ?1), ?3)"
        " ON CONFLICT (name) DO UPDATE SET fingerprint = excluded.fingerprint, members = excluded.members,"
        " built_at = excluded.built_at",
        (name, fingerprint, built_at),
    )


def drop(conn: sqlite3.Connection, name: str, batch: int = 5000) -> int:
    """Forget a segment that is no longer defined, its members and every subscriber's count of it (so that one
    defined again under the name starts afresh); returns how many members it had."""
    removed = conn.execute("DELETE FROM segment_members WHERE segment = ?", (name,)).rowcount
    conn.execute("DELETE FROM segments WHERE name = ?", (name,))
    after = 0
    while rows := conn.execute(
        "SELECT id, segment_changes FROM subscribers WHERE id > ? AND segment_changes IS NOT NULL"
        " AND instr(',' || segment_changes, ',' || ? || ' ') > 0 ORDER BY id LIMIT ?",
        (after, name, batch),
    ).fetchall():
        kept = []
        for subscriber_id, text in rows:
            changes = parse_changes(text)
            changes.pop(name, None)
            kept.append((format_changes(changes), subscriber_id))
        conn.executemany("UPDATE subscribers SET segment_changes = ? WHERE id = ?", kept)
        after = rows[-1][0]
    return removed


class Moves:
    """Membership changes of one or more subscribers, gathered and then written at once (`write`): members in and
    out, the segments' member counts, each moved subscriber's transition counts and their events, and the segment
    timers set meanwhile."""

    __slots__ = ("counts", "dues", "entered", "events", "left", "states")

    def __init__(self) -> None:
        self.entered: list[str | int] = []  # (segment, subscriber id) one after the other, as `execute_rows` takes them
        self.left: list[tuple[str, int]] = []
        self.counts: dict[str, int] = {}
        self.states: list[tuple[str | None, int]] = []
        self.events: list[events.NewEvent] = []  # their segment events, recorded with them
        self.dues: list[tuple[str, int]] = []  # (subscriber id as the timer's key, due at): segment timers to set

    def move(self, subscriber_id: int, name: str, member: bool) -> None:
        if member:
            self.entered += (name, subscriber_id)
        else:
            self.left.append((name, subscriber_id))
        self.counts[name] = self.counts.get(name, 0) + (1 if member else -1)

    def add(
        self, subscriber_id: int, text: str | None, moved: list[tuple[str, bool]], new: list[events.NewEvent]
    ) -> None:
        """One subscriber's transitions: `moved` (segment, new membership) from their counts as stored (`text`),
        with their events."""
        counts = self.counts
        for name, member in moved:
            if member:
                self.entered += (name, subscriber_id)
                counts[name] = counts.get(name, 0) + 1
            else:
                self.left.append((name, subscriber_id))
                counts[name] = counts.get(name, 0) - 1
        self.states.append((advanced(text, tuple(moved)), subscriber_id))
        self.events += new

    def write(self, conn: sqlite3.Connection) -> None:
        """(Rows go many to a statement of plain VALUES, `db.execute_rows`: three times cheaper than one statement
        over `json_each`.)"""
        execute_rows(conn, _ENTER, 2, self.entered)
        if self.left:
            conn.executemany(_LEAVE, self.left)
        counts = [(delta, name) for name, delta in self.counts.items() if delta]
        if counts:
            conn.executemany("UPDATE segments SET members = members + ? WHERE name = ?", counts)
        if self.states:
            save_states(conn, self.states)
        events.record_many(conn, self.events)
        if self.dues:
            timers.schedule_many(conn, SEGMENT_TIMER, self.dues)


def move_many(conn: sqlite3.Connection, entered: Sequence[tuple[str, int]], left: Sequence[tuple[str, int]]) -> None:
    """Many (segment, subscriber id) in and out at once (a rebuild's); counts are the caller's (`define`)."""
    execute_rows(conn, _ENTER, 2, [value for row in entered for value in row])
    if left:
        conn.executemany(_LEAVE, left)


def save_states(conn: sqlite3.Connection, states: Sequence[tuple[str | None, int]]) -> None:
    """Many (transition counts as formatted, subscriber id) at once."""
    execute_rows(conn, _SAVE, 2, [value for row in states for value in row])


_ENTER = "INSERT OR IGNORE INTO segment_members (segment, subscriber_id) VALUES {rows}"
_LEAVE = "DELETE FROM segment_members WHERE segment = ? AND subscriber_id = ?"
_SAVE = "UPDATE subscribers SET segment_changes = v.column1 FROM (VALUES {rows}) AS v WHERE subscribers.id = v.column2"


def of_subscriber(conn: sqlite3.Connection, subscriber_id: int) -> list[str]:
    """The segments a subscriber is in, by name."""
    row = conn.execute("SELECT segment_changes FROM subscribers WHERE id = ?", (subscriber_id,)).fetchone()
    return sorted(name for name, count in parse_changes(row[0] if row else None).items() if count % 2)


def members(conn: sqlite3.Connection, segment: str, after: int, limit: int) -> list[tuple[int, str]]:
    """(subscriber id, email) of a segment's members with ids above `after`, in id order."""
    return conn.execute(
        "SELECT m.subscriber_id, s.email FROM segment_members AS m JOIN subscribers AS s ON s.id = m.subscriber_id"
        " WHERE m.segment = ? AND m.subscriber_id > ? ORDER BY m.subscriber_id LIMIT ?",
        (segment, after, limit),
    ).fetchall()


def forget_subscriber(conn: sqlite3.Connection, subscriber_id: int) -> None:
    """A subscriber erased: out of every segment, no timer."""
    moves = Moves()
    for segment in of_subscriber(conn, subscriber_id):
        moves.move(subscriber_id, segment, False)
    moves.write(conn)
    timers.cancel(conn, SEGMENT_TIMER, str(subscriber_id))


# Facts: what conditions read. A profile is (id, email, externalId, firstName, lastName, attributes JSON,
# ordersCount, totalSpentCents, segment changes, segment timer due); orders are (source, orderedAt µs, items JSON);
# events are read as measures (`_NEWEST`).

Profile = tuple[int, str, str | None, str | None, str | None, str, int, int, str | None, int | None]
# The due time read is the segment timer's own: a timer that fired, failed and was set again later, or died, is
# seen as it is.
_TIMER_DUE = "(SELECT t.due_at FROM timers AS t WHERE t.kind = 'segment' AND t.key = CAST(s.id AS TEXT))"
_COLUMNS = (
    "s.id, s.email, s.external_id, s.first_name, s.last_name, s.attributes, s.orders_count, s.total_spent_cents,"
    f" s.segment_changes, {_TIMER_DUE}"
)
_PROFILE = f"SELECT {_COLUMNS} FROM subscribers AS s"


def profiles_after(
    conn: sqlite3.Connection, after: int, limit: int, newest: Sequence[tuple[str, int]]
) -> list[tuple[Profile, tuple[int | None, ...]]]:
    """Profiles of the subscribers with ids above `after`, in id order, each with its event measures (`newest`)."""
    rows = conn.execute(
        f"SELECT {_COLUMNS}{_newest_columns(len(newest))} FROM subscribers AS s WHERE s.id > ? ORDER BY s.id LIMIT ?",
        (*_newest_params(newest), after, limit),
    ).fetchall()
    return [(row[:10], row[10:]) for row in rows]


# An event measure: the occurredAt of the subscriber's count-th newest event of a name, None when there are fewer
# (`gateway.engine.segment_facts.newest_key`). Segment events are never counted: the term that says so is the
# `events_counted` index's condition (`index_counted_events`), which lets the index answer it alone. Every event
# insert tests that condition: as two comparisons (the names from `segment.` up to `segment/`, the next
# character, left out) it costs ~700 instructions less a row than `NOT LIKE 'segment.%'`.
_UNCOUNTED_LEFT_OUT = "({column} < 'segment.' OR {column} >= 'segment/')"
_NEWEST = (
    "(SELECT e.occurred_at FROM events AS e WHERE e.subscriber_id = s.id AND e.name = ?"
    f" AND {_UNCOUNTED_LEFT_OUT.format(column='e.name')} ORDER BY e.occurred_at DESC LIMIT 1 OFFSET ?)"
)
_COUNTED_INDEX = (
    "CREATE INDEX events_counted ON events(subscriber_id, name, occurred_at)"
    f" WHERE {_UNCOUNTED_LEFT_OUT.format(column='name')}"
)


def _newest_columns(count: int) -> str:
    return "".join(f", {_NEWEST}" for _ in range(count))


def _newest_params(newest: Sequence[tuple[str, int]]) -> list[str | int]:
    return [value for name, count in newest for value in (name, count - 1)]


def index_counted_events(conn: sqlite3.Connection, wanted: bool) -> bool:
    """The index by which event measures are read (subscriber, name, time; segment events left out), kept while
    some segment counts events and dropped otherwise, so that no other gateway pays for its writes; one of an
    earlier definition is made again. Returns whether it was created now."""
    row = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'events_counted'").fetchone()
    if row is not None and (not wanted or row[0] != _COUNTED_INDEX):
        conn.execute("DROP INDEX events_counted")
        row = None
    if wanted and row is None:
        conn.execute(_COUNTED_INDEX)
        return True
    return False


# Of a stored `orderedAt` (always `YYYY-MM-DDTHH:MM:SS.mmmZ`, UTC), µs since the epoch, computed by SQLite.
_ORDERED_US = "unixepoch(o.ordered_at) * 1000000 + CAST(substr(o.ordered_at, 21, 3) AS INTEGER) * 1000"


@lru_cache(maxsize=4096)
def items_of(raw: str | None) -> tuple[tuple[str | None, str | None], ...]:
    """(productId, variantId) of an order's items. Remembered: a subscriber's older orders are read again at
    each of their evaluations."""
    if not raw:
        return ()
    return tuple((item.get("productId"), item.get("variantId")) for item in json.loads(raw))


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


# A profile's statement for one subscriber, for a chunk's subscribers (`facts_many`), and its measures' parameters.
FactsRead = tuple[str, str, tuple[str | int, ...]]

# Subscribers read to a statement by `facts_many`: a statement costs ~11,000 instructions before it reads a row. The
# list is always this long (the last id repeated, which `IN` reads once), so each plan has one statement text.
READ_BATCH = 32
_IDS = ", ".join(["?"] * READ_BATCH)


def facts_read(newest: Sequence[tuple[str, int]]) -> FactsRead:
    """What `facts` and `facts_many` run to read profiles with the event measures `newest`: built once per plan,
    not per read."""
    select = f"SELECT {_COLUMNS}{_newest_columns(len(newest))} FROM subscribers AS s"
    return f"{select} WHERE s.id = ?", f"{select} WHERE s.id IN ({_IDS})", tuple(_newest_params(newest))


# A subscriber's counted orders, as rows: cheaper than one JSON array of them in the profile's statement (building
# and parsing the JSON, the items quoted inside it, cost more than the second statement). `_orders_sql(many, items)`:
# one subscriber's by email, or with the email first, those of READ_BATCH emails.
def _orders_sql(many: bool, items: bool) -> str:
    email, where = ("o.email, ", f"o.email IN ({_IDS})") if many else ("", "o.email = ?")
    chosen = "o.items" if items else "NULL"
    return f"SELECT {email}o.source, {_ORDERED_US}, {chosen} FROM orders AS o WHERE {where} AND {_COUNTED}"


_ORDERS_SQL = (_orders_sql(False, False), _orders_sql(False, True))
_ORDERS_MANY_SQL = (_orders_sql(True, False), _orders_sql(True, True))

Facts = tuple[Profile, list[tuple[str, int, str | None]], tuple[int | None, ...]]


def facts(conn: sqlite3.Connection, read: FactsRead, subscriber_id: int, orders: bool, items: bool) -> Facts | None:
    """One subscriber's profile with their event measures (as `read`, from `facts_read`, says), and their counted
    orders (when `orders`; items JSON when `items`)."""
    sql, _many, params = read
    row = conn.execute(sql, (*params, subscriber_id)).fetchone()
    if row is None:
        return None
    counted = conn.execute(_ORDERS_SQL[items], (row[1],)).fetchall() if orders else []
    return row[:10], counted, row[10:]


def facts_many(
    conn: sqlite3.Connection, read: FactsRead, subscriber_ids: Sequence[int], orders: bool, items: bool
) -> dict[int, Facts]:
    """`facts` of many subscribers, READ_BATCH to a statement, by subscriber id (none for an id with no row)."""
    _one, sql, params = read
    found: dict[int, Facts] = {}
    for start in range(0, len(subscriber_ids), READ_BATCH):
        rows = conn.execute(sql, (*params, *_batch(subscriber_ids[start : start + READ_BATCH]))).fetchall()
        if not rows:
            continue
        counted: dict[str, list[tuple[str, int, str | None]]] = {row[1]: [] for row in rows}
        if orders:
            for email, source, at, raw in conn.execute(_ORDERS_MANY_SQL[items], _batch(list(counted))):
                counted[email].append((source, at, raw))
        for row in rows:
            found[row[0]] = (row[:10], counted[row[1]], row[10:])
    return found


def _batch(values: Sequence[_T]) -> list[_T]:
    """`values` (1 to READ_BATCH of them) as a statement of `facts_many` binds them: READ_BATCH long, the last
    repeated."""
    return [*values, *[values[-1]] * (READ_BATCH - len(values))]
