"""The index event measures are read from (`store.segments.index_counted_events`): segment events left out, the
measure read from the index alone, and one of an earlier definition made again at start."""

import sqlite3

from store import events
from store import segments as store

_EARLIER = "CREATE INDEX events_counted ON events(subscriber_id, name, occurred_at) WHERE name NOT LIKE 'segment.%'"


def _definition(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'events_counted'").fetchone()
    return None if row is None else str(row[0])


def test_an_index_of_the_earlier_definition_is_made_again(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT INTO subscribers (id, email, created_at, updated_at) VALUES (1, 'a@example.com', 1, 1)")
    events.record(conn, 1, "ecommerce.checkout_abandoned", {}, 10, "k1")
    conn.execute(_EARLIER)
    assert store.index_counted_events(conn, True) is True
    assert _definition(conn) not in (None, _EARLIER)
    assert store.index_counted_events(conn, True) is False  # the current one stays
    read = store.facts(conn, store.facts_read([("ecommerce.checkout_abandoned", 1)]), 1, False, False)
    assert read is not None and read[2] == (10,)
    assert store.index_counted_events(conn, False) is False
    assert _definition(conn) is None


def test_measures_leave_segment_events_out_and_read_the_index_alone(conn: sqlite3.Connection) -> None:
    store.index_counted_events(conn, True)
    conn.execute("INSERT INTO subscribers (id, email, created_at, updated_at) VALUES (1, 'a@example.com', 1, 1)")
    for at, name in enumerate(["segment.entered", "segmentx", "segment/", "segments.entered", "segment.", "rose"]):
        events.record_many(conn, [(1, name, {}, 100 + at, events.NO_KEY)])
    names = ["segment.entered", "segment.", "segmentx", "segment/", "segments.entered", "rose"]
    read = store.facts(conn, store.facts_read([(name, 1) for name in names]), 1, False, False)
    assert read is not None
    assert read[2] == (None, None, 101, 102, 103, 105)
    sql, _many, params = store.facts_read([("rose", 1)])
    plan = " ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, (*params, 1)))
    assert "COVERING INDEX events_counted" in plan
