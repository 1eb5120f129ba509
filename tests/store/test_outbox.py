"""The outbox: an event's deliveries are written with it, in its transaction, to the destinations that want it."""

import sqlite3
from pathlib import Path

import pytest

from normalizer.timefmt import now_us
from store import deliveries, events, outbox
from store.db import connect, transaction
from store.schema import migrate


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    conn = connect(tmp_path / "gateway.db")
    migrate(conn)
    routes = [
        (outbox.Route("crm", ("ecommerce.*", "segment.entered"), False), "https://crm.example.com/hooks"),
        (outbox.Route("warehouse", (), True), "https://warehouse.example.com/hooks"),
        (outbox.Route("refunds", ("ecommerce.order_refund?d",), False), "https://refunds.example.com/hooks"),
    ]
    outbox.sync(conn, routes, 1)
    with transaction(conn):
        conn.execute("INSERT INTO subscribers (id, email, created_at, updated_at) VALUES (1, 'a@example.com', 1, 1)")
    return conn


def _record(conn: sqlite3.Connection, name: str, key: str, **properties: object) -> int | None:
    return events.record(conn, 1, name, dict(properties), 1, key)


def _destinations(conn: sqlite3.Connection, event_id: int | None) -> list[str]:
    rows = conn.execute("SELECT destination FROM deliveries WHERE event_id = ? ORDER BY destination", (event_id,))
    return [row[0] for row in rows]


def test_patterns_and_historical_pick_the_destinations(conn: sqlite3.Connection) -> None:
    with transaction(conn):
        placed = _record(conn, "ecommerce.order_placed", "1")
        refunded = _record(conn, "ecommerce.order_refunded", "2")
        entered = _record(conn, "segment.entered", "3", segment="vip")
        exited = _record(conn, "segment.exited", "4", segment="vip")
        old = _record(conn, "ecommerce.order_placed", "5", historical=True)
    assert _destinations(conn, placed) == ["crm", "warehouse"]
    assert _destinations(conn, refunded) == ["crm", "refunds", "warehouse"]
    assert _destinations(conn, entered) == ["crm", "warehouse"]
    assert _destinations(conn, exited) == ["warehouse"]
    assert _destinations(conn, old) == ["warehouse"]  # only the destination with include_historical


def test_a_repeat_event_offers_nothing_and_a_rollback_takes_the_deliveries_too(conn: sqlite3.Connection) -> None:
    with transaction(conn):
        first = _record(conn, "ecommerce.order_placed", "same")
        assert _record(conn, "ecommerce.order_placed", "same") is None
    assert conn.execute("SELECT count(*) FROM deliveries").fetchone()[0] == 2
    with pytest.raises(RuntimeError), transaction(conn):
        _record(conn, "ecommerce.order_placed", "rolled back")
        raise RuntimeError("the job failed")
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 1
    assert {row[0] for row in conn.execute("SELECT event_id FROM deliveries")} == {first}
    ids = [row[0] for row in conn.execute(f"SELECT {deliveries.WEBHOOK_ID} FROM deliveries AS d")]
    assert len(set(ids)) == 2 and all(i.startswith("msg_") and len(i) == 28 for i in ids)


def test_events_recorded_together_get_their_own_deliveries_and_skip_repeats(conn: sqlite3.Connection) -> None:
    with transaction(conn):
        before = _record(conn, "ecommerce.order_placed", "seen")
        stored = events.record_many(
            conn,
            [
                (1, "segment.entered", {"segment": "vip"}, 2, events.NO_KEY),
                (1, "ecommerce.order_placed", {}, 2, "seen"),  # a repeat of one stored before: nothing
                (1, "ecommerce.order_paid", {}, 2, "new-2"),
                (1, "ecommerce.order_refunded", {}, 2, "new-2"),  # the same key twice: the first only
                (1, "segment.exited", {"segment": "vip"}, 2, events.NO_KEY),  # no key: every one is stored
                (1, "ecommerce.order_placed", {"historical": True}, 2, "new-3"),
            ],
        )
        assert stored == 4
        assert events.record_many(conn, [(1, "segment.entered", {"segment": "vip"}, 3, events.NO_KEY)]) == 1
    rows = conn.execute("SELECT id, name, dedup_key FROM events ORDER BY id").fetchall()
    assert [(name, key) for _, name, key in rows] == [
        ("ecommerce.order_placed", "seen"),
        ("segment.entered", ""),
        ("ecommerce.order_paid", "new-2"),
        ("segment.exited", ""),
        ("ecommerce.order_placed", "new-3"),
        ("segment.entered", ""),
    ]
    ids = [event_id for event_id, _, _ in rows]
    assert ids[0] == before
    assert [_destinations(conn, event_id) for event_id in ids] == [
        ["crm", "warehouse"],
        ["crm", "warehouse"],
        ["crm", "warehouse"],
        ["warehouse"],
        ["warehouse"],
        ["crm", "warehouse"],
    ]
    assert conn.execute("SELECT count(*) FROM deliveries").fetchone()[0] == 10


def test_many_events_recorded_together_are_offered_under_their_own_ids(conn: sqlite3.Connection) -> None:
    def new(n: int) -> events.NewEvent:  # odd: keyed, to crm and the warehouse; even: no key, to the warehouse
        return (1, "ecommerce.order_paid", {}, n, f"k-{n}") if n % 2 else (1, "segment.exited", {}, n, events.NO_KEY)

    with transaction(conn):
        for n in (11, 51):
            events.record(conn, 1, "ecommerce.order_paid", {}, n, f"k-{n}")
        assert events.record_many(conn, [new(n) for n in range(80)]) == 78  # more than one statement's worth
    rows = conn.execute(
        "SELECT e.occurred_at, count(d.destination) FROM events AS e JOIN deliveries AS d ON d.event_id = e.id"
        " GROUP BY e.id ORDER BY e.id"
    ).fetchall()
    assert rows == [(11, 2), (51, 2)] + [(n, 2 if n % 2 else 1) for n in range(80) if n not in (11, 51)]


def test_a_destination_removed_from_the_config_gets_no_new_events(conn: sqlite3.Connection) -> None:
    outbox.sync(conn, [(outbox.Route("crm", (), False), "https://crm.example.com/hooks")], 2)
    with transaction(conn):
        event_id = _record(conn, "ecommerce.order_placed", "1")
    assert _destinations(conn, event_id) == ["crm"]


def test_routes_answer_from_their_cache_as_they_computed() -> None:
    routes = outbox.Routes([outbox.Route("a", ("x.*",), False), outbox.Route("b", ("x.[ab]",), True)])
    for _ in range(2):
        assert routes.match("x.a", False) == ("a", "b")
        assert routes.match("x.a", True) == ("b",)
        assert routes.match("x.c", False) == ("a",)
        assert routes.match("y", False) == ()


def test_a_destinations_deliveries_page_newest_first_by_cursor(conn: sqlite3.Connection) -> None:
    with transaction(conn):
        recorded = [_record(conn, "ecommerce.order_placed", str(i)) for i in range(5)]
        conn.execute("UPDATE deliveries SET status = 'dead' WHERE destination = 'crm' AND event_id = ?", (recorded[1],))
    seen: list[int] = []
    before = None
    while True:
        page = deliveries.listing(conn, "crm", None, before, 2)
        seen += [row["eventId"] for row in page]
        if len(page) < 2:
            break
        before = page[-1]["cursor"]
    assert seen == recorded[::-1]
    assert [row["eventId"] for row in deliveries.listing(conn, "crm", "dead", None, 10)] == [recorded[1]]
    assert [row["eventId"] for row in deliveries.listing(conn, "crm", "pending", None, 2)] == recorded[:1:-1][:2]
    everyone = deliveries.listing(conn, None, "pending", None, 100)
    assert len(everyone) == 9 and [row["id"] for row in everyone] == sorted(
        (row["id"] for row in everyone), reverse=True
    )


def test_an_attempt_in_flight_when_its_delivery_is_erased_is_recorded_nowhere(conn: sqlite3.Connection) -> None:
    """An erasure deletes the deliveries of the customer's events, maybe while one is being attempted, and the
    next delivery written may take the erased one's id: the attempt, when it ends, is not put on that one."""
    with transaction(conn):
        erased = _record(conn, "ecommerce.order_refunded", "1")
    with transaction(conn):
        (claimed,) = deliveries.claim(conn, "refunds", "sender-1", now_us(), now_us() + 10**7, 10)
    with transaction(conn):
        outbox.forget(conn, [erased or 0])
        conn.execute("DELETE FROM events WHERE id = ?", (erased,))
        later = _record(conn, "ecommerce.order_refunded", "2")
    (reused,) = conn.execute("SELECT id FROM deliveries WHERE destination = 'refunds' AND event_id = ?", (later,))
    assert reused[0] == claimed.delivery_id  # SQLite gave the new delivery the erased one's id
    done = deliveries.Attempt(claimed.delivery_id, now_us(), 200, 5, None, "ok", "succeeded", None, claimed.webhook_id)
    with transaction(conn):
        deliveries.finish(conn, [done], "sender-1")
    assert conn.execute("SELECT count(*) FROM delivery_attempts").fetchone() == (0,)
    assert conn.execute("SELECT status, attempts FROM deliveries WHERE id = ?", reused).fetchone() == ("pending", 0)
