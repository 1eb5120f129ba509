"""Membership changes of many subscribers written at once (`store.segments.Moves`): members, member counts, each
subscriber's transition counts, their segment events and their segment timers all land, however many there are,
with every event told to the observer under its own id."""

import sqlite3

from store import events, timers
from store import segments as store
from store.db import transaction

SUBSCRIBERS = 76  # more than one statement's worth of rows


def _subscribers(conn: sqlite3.Connection) -> list[int]:
    rows = [(n, f"s{n}@example.com") for n in range(1, SUBSCRIBERS + 1)]
    conn.executemany("INSERT INTO subscribers (id, email, created_at, updated_at) VALUES (?, ?, 1, 1)", rows)
    for name in ("vip", "fans"):
        store.define(conn, name, "f", 1)
    return [n for n, _ in rows]


def test_many_moves_are_written_whole(conn: sqlite3.Connection) -> None:
    told: list[tuple[int, str]] = []
    with transaction(conn), events.observed(lambda _c, subscriber, name, _at: told.append((subscriber, name))):
        ids = _subscribers(conn)
        moves = store.Moves()
        for subscriber_id in ids:
            moved = [("vip", True), *([("fans", True)] if subscriber_id % 3 == 0 else [])]
            new = [(subscriber_id, "segment.entered", {"segment": name}, 5, events.NO_KEY) for name, _ in moved]
            moves.add(subscriber_id, None, moved, new)
        moves.write(conn)
    fans = [n for n in ids if n % 3 == 0]
    assert store.members(conn, "vip", 0, 1000) == [(n, f"s{n}@example.com") for n in ids]
    assert [n for n, _ in store.members(conn, "fans", 0, 1000)] == fans
    assert {name: d.members for name, d in store.defined(conn).items()} == {"fans": len(fans), "vip": SUBSCRIBERS}
    assert store.of_subscriber(conn, 3) == ["fans", "vip"]
    assert store.of_subscriber(conn, SUBSCRIBERS) == ["vip"]
    recorded = conn.execute(
        "SELECT subscriber_id, json_extract(properties, '$.segment') FROM events ORDER BY id"
    ).fetchall()
    assert recorded == [(n, name) for n in ids for name in (("vip", "fans") if n % 3 == 0 else ("vip",))]
    assert told == [(n, "segment.entered") for n, _ in recorded]

    # Out again, the same way.
    with transaction(conn):
        moves = store.Moves()
        for subscriber_id in ids:
            moves.add(subscriber_id, "vip 1,fans 1" if subscriber_id % 3 == 0 else "vip 1", [("vip", False)], [])
        moves.write(conn)
    assert store.members(conn, "vip", 0, 1000) == []
    assert store.defined(conn)["vip"].members == 0
    assert store.of_subscriber(conn, 3) == ["fans"]
    assert store.of_subscriber(conn, 4) == []


def test_segment_timers_are_set_with_the_moves(conn: sqlite3.Connection) -> None:
    with transaction(conn):
        ids = _subscribers(conn)
        timers.schedule(conn, store.SEGMENT_TIMER, "1", 50)  # set before: moved
        moves = store.Moves()
        moves.dues += [(str(n), 1000 + n) for n in ids]
        moves.write(conn)
    assert [timers.get(conn, store.SEGMENT_TIMER, str(n)) for n in ids] == [1000 + n for n in ids]
    assert conn.execute("SELECT count(*) FROM timers").fetchone()[0] == SUBSCRIBERS


def test_an_observer_is_told_only_of_the_names_it_observes(conn: sqlite3.Connection) -> None:
    told: list[tuple[int, str]] = []
    with transaction(conn), events.observed(lambda _c, s, name, _at: told.append((s, name)), {"checkout"}):
        ids = _subscribers(conn)
        events.record(conn, ids[0], "checkout", {}, 5, "k1")
        events.record_many(conn, [(ids[1], "segment.entered", {"segment": "vip"}, 5, events.NO_KEY)])
        events.record_many(conn, [(n, "checkout" if n % 2 else "placed", {}, 5, f"k{n}") for n in ids[2:6]])
    assert told == [(ids[0], "checkout"), (ids[2], "checkout"), (ids[4], "checkout")]
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 6
