"""Subscriber events (docs/api.md, Engine semantics): stored once per dedup key, read oldest first. Automations
and segments read this table in id order."""

import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from operator import itemgetter
from typing import Any

from store import json_columns, outbox
from store.db import execute_rows

# Told of each event recorded in its thread (of the names it observes), in the recording transaction: (conn,
# subscriber id, name, occurred at). The worker sets it around what it applies, so that segments counting an event
# hear of it wherever it was recorded (an order, a lifecycle timer, a checkout).
Observer = Callable[[sqlite3.Connection, int, str, int], None]


class _Observing(threading.local):
    # Class defaults: a thread that never set one reads None without an error.
    observer: Observer | None = None
    names: AbstractSet[str] | None = None  # the names told to the observer; None: every name


_observing = _Observing()


@contextmanager
def observed(observer: Observer | None, names: AbstractSet[str] | None = None) -> Iterator[None]:
    """Events recorded in this thread meanwhile are also told to `observer`: those named in `names`, or every
    one."""
    previous = _observing.observer, _observing.names
    _observing.observer, _observing.names = observer, names
    try:
        yield
    finally:
        _observing.observer, _observing.names = previous


# An event whose dedup key is this is stored every time: `events_dedup` indexes only the other keys. Segment
# events have none; a transition's number, kept in the subscriber's row and written in the same transaction as its
# event, is what records each transition once (`store.segments`).
NO_KEY = ""
_INSERT = (
    "INSERT INTO events (subscriber_id, name, properties, occurred_at, dedup_key, source, order_id, job_id)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedup_key) WHERE dedup_key != '' DO NOTHING"
)


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
    """Store an event unless its dedup key (other than `NO_KEY`) is already stored, with its deliveries to the
    destinations that want it (`store.outbox`); returns the new event id, or None if a repeat. Every event is
    recorded here (or, several at once, by `record_many`, which does the same for each)."""
    cursor = conn.execute(
        _INSERT,
        (subscriber_id, name, json_columns.dumps(properties), occurred_at, dedup_key, source, order_id, job_id),
    )
    if cursor.rowcount != 1:
        return None
    event_id = cursor.lastrowid
    assert event_id is not None  # set by every INSERT that wrote its row
    event = (subscriber_id, name, properties, occurred_at, dedup_key)
    _recorded(conn, [(event_id, event)], (event,))
    return event_id


# An event of `record_many`: (subscriber id, name, properties, occurred at, dedup key).
NewEvent = tuple[int, str, dict[str, Any], int, str]
# `_INSERT` without the columns `record_many`'s events leave NULL (Python's sqlite3 binds a None parameter through
# its adapter lookup, which fails with an exception each time), many events to a statement (`db.execute_rows`).
_INSERT_MANY = (
    "INSERT INTO events (subscriber_id, name, properties, occurred_at, dedup_key) VALUES {rows}"
    " ON CONFLICT (dedup_key) WHERE dedup_key != '' DO NOTHING"
)
# Events that all have `NO_KEY` (segment events) are stored every time, their key written in the statement rather
# than bound to each row (a bound parameter costs ~900 instructions a row, ~6% of the row's insert).
_INSERT_UNKEYED = "INSERT INTO events (subscriber_id, name, properties, occurred_at, dedup_key) VALUES {rows}"
_UNKEYED_ROW = f"(?, ?, ?, ?, '{NO_KEY}')"
_KEY, _NAME = itemgetter(4), itemgetter(1)


def record_many(conn: sqlite3.Connection, new: Sequence[NewEvent]) -> int:
    """`record` of several events in one statement (a segment evaluation's): each stored unless its dedup key is,
    in order, with its deliveries; returns how many were stored. The statement runs in the caller's write
    transaction, so the rows it adds take ids after the largest before them, one by one: with no repeat the
    stored events are the last `rowcount` ids, else those after the largest before, matched by dedup key. Events
    sharing one properties object (a segment's) have it encoded once."""
    if not new:
        return 0
    encoded: dict[int, str] = {}
    values: list[int | str] = []
    keyed = any(map(_KEY, new))  # NO_KEY is the empty string
    for subscriber_id, name, properties, at, key in new:
        text = encoded.get(id(properties))
        if text is None:
            text = encoded[id(properties)] = json_columns.dumps(properties)
        values += (subscriber_id, name, text, at, key) if keyed else (subscriber_id, name, text, at)
    floor = 0  # the largest id before: a repeat may use up an id without a row (AUTOINCREMENT), others follow it
    if keyed:
        floor = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
        stored = execute_rows(conn, _INSERT_MANY, 5, values)
    else:
        stored = execute_rows(conn, _INSERT_UNKEYED, 4, values, _UNKEYED_ROW)
    if not stored:
        return 0
    last: int = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
    if stored == len(new):
        _recorded(conn, enumerate(new, start=last - stored + 1), new)
        return stored
    # The stored rows are those of `new` that were not repeats, in order: a key stored before or earlier in `new`
    # is not among them, and `NO_KEY` always is. (Only keyed events can repeat.)
    kept = conn.execute("SELECT id, dedup_key FROM events WHERE id > ? ORDER BY id", (floor,))
    following = kept.fetchone()
    matched = []
    for event in new:
        if following is not None and following[1] == event[4]:
            matched.append((following[0], event))
            following = kept.fetchone()
    _recorded(conn, matched, new)
    return stored


def _recorded(conn: sqlite3.Connection, stored: Iterable[tuple[int, NewEvent]], among: Sequence[NewEvent]) -> None:
    """What follows storing new events (id, event; all of them `among`): the outbox (their deliveries commit with
    them, or neither does), and the observer this thread set (`observed`), for the names it observes. With
    neither a destination nor an observed name, nothing."""
    offering = outbox.routing(conn).destinations > 0
    observer, names = _observing.observer, _observing.names
    if not offering and (observer is None or (names is not None and names.isdisjoint(map(_NAME, among)))):
        return
    for event_id, (subscriber_id, name, properties, at, _) in stored:
        if offering:
            outbox.offer(conn, event_id, name, properties)
        if observer is not None and (names is None or name in names):
            observer(conn, subscriber_id, name, at)


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
    return _bounded(cursor, 2, max_bytes)


def feed(
    conn: sqlite3.Connection, after_id: int, limit: int, max_bytes: int = PAGE_BYTES
) -> list[tuple[int, str, str, str, int]]:
    """Every subscriber's events in recording order after `after_id`: (id, email, name, properties JSON,
    occurred_at µs), up to `limit` and fewer once their properties reach `max_bytes` (always at least one)."""
    cursor = conn.execute(
        "SELECT e.id, s.email, e.name, e.properties, e.occurred_at FROM events AS e"
        " JOIN subscribers AS s ON s.id = e.subscriber_id WHERE e.id > ? ORDER BY e.id LIMIT ?",
        (after_id, limit),
    )
    return _bounded(cursor, 3, max_bytes)


def _bounded(cursor: sqlite3.Cursor, properties: int, max_bytes: int) -> list[Any]:
    """The cursor's rows until the properties JSON (column `properties`) read so far reaches `max_bytes`
    (always at least one row); the rest are left unread."""
    page = []
    size = 0
    for row in cursor:
        page.append(row)
        size += len(row[properties])
        if size >= max_bytes:
            break
    cursor.close()
    return page
