"""Each subscriber's count of active back-in-stock waits and checkouts, by which a purchase skips looking for
them when there are none: kept by triggers through every change, equal to a count of the table, and computed
for a database made before it existed."""

import sqlite3
from pathlib import Path

from store import automations, schema, schema_flows
from store.automations import BACK_IN_STOCK, CHECKOUT, REPLENISHMENT
from store.db import connect, transaction
from tests._schema import database_before

NOW = 1_780_000_000_000_000


def _subscribers(conn: sqlite3.Connection, count: int) -> list[int]:
    conn.executemany(
        "INSERT INTO subscribers (id, email, attributes, orders_count, total_spent_cents, created_at, updated_at)"
        " VALUES (?, ?, '{}', 0, 0, 1, 1)",
        [(number, f"s{number}@example.com") for number in range(1, count + 1)],
    )
    return list(range(1, count + 1))


def _kept(conn: sqlite3.Connection) -> dict[int, int]:
    return dict(conn.execute("SELECT id, open_waits FROM subscribers").fetchall())


def _scanned(conn: sqlite3.Connection) -> dict[int, int]:
    counts = dict.fromkeys((row[0] for row in conn.execute("SELECT id FROM subscribers")), 0)
    for (subscriber_id,) in conn.execute(
        "SELECT subscriber_id FROM automations WHERE flow != 'replenishment' AND status = 'active'"
    ):
        counts[subscriber_id] += 1
    return counts


def test_open_waits_are_kept_through_start_fire_stop_move_and_erasure(tmp_path: Path) -> None:
    conn = connect(tmp_path / "gateway.db")
    schema.migrate(conn)
    with transaction(conn):
        one, two, three = _subscribers(conn, 3)
        wait = automations.start(conn, one, BACK_IN_STOCK, "V1", NOW, {})
        told = automations.start(conn, one, BACK_IN_STOCK, "V2", NOW, {})
        cart = automations.start(conn, one, CHECKOUT, "C1", NOW, {}, NOW + 1)
        automations.start(conn, one, REPLENISHMENT, "P1", NOW, {}, NOW + 1)
        automations.start(conn, two, CHECKOUT, "C2", NOW, {}, NOW + 1, stopped="superseded")  # never active
        moved = automations.start(conn, two, CHECKOUT, "C3", NOW, {}, NOW + 1)
    assert _kept(conn) == _scanned(conn) == {one: 3, two: 1, three: 0}
    with transaction(conn):
        assert automations.fire(conn, told, NOW)
        assert automations.stop(conn, cart, NOW, "superseded")
        assert not automations.stop(conn, cart, NOW, "superseded")  # no longer active: counted once
        automations.update(conn, wait, None, {"productId": "P"}, None)  # a change of data alone
    assert _kept(conn) == _scanned(conn) == {one: 1, two: 1, three: 0}
    with transaction(conn):  # email spellings merged: what referred to one subscriber moves to another
        conn.execute("UPDATE automations SET subscriber_id = ? WHERE id = ?", (three, moved))
    assert _kept(conn) == _scanned(conn) == {one: 1, two: 0, three: 1}
    with transaction(conn):
        automations.forget_subscriber(conn, one)
        conn.execute("DELETE FROM subscribers WHERE id = ?", (one,))
    assert _kept(conn) == _scanned(conn) == {two: 0, three: 1}
    conn.close()


def test_a_database_from_before_counts_its_open_waits_when_migrated(tmp_path: Path) -> None:
    conn = database_before(tmp_path / "old.db", schema_flows.open_waits)
    with transaction(conn):  # rows as the store wrote them then
        one, two, three = _subscribers(conn, 3)
        conn.executemany(
            "INSERT INTO automations (subscriber_id, flow, key, status, started_at, due_at, data)"
            " VALUES (?, ?, ?, ?, ?, ?, '{}')",
            [
                (one, BACK_IN_STOCK, "V1", "active", NOW, None),
                (one, CHECKOUT, "C1", "active", NOW, NOW + 1),
                (two, REPLENISHMENT, "P1", "active", NOW, NOW + 1),
                (three, CHECKOUT, "C2", "fired", NOW, NOW + 1),
            ],
        )
    schema.migrate(conn)
    assert _kept(conn) == _scanned(conn) == {one: 2, two: 0, three: 0}
    with transaction(conn):
        automations.start(conn, two, BACK_IN_STOCK, "V1", NOW, {})
    assert _kept(conn) == _scanned(conn) == {one: 2, two: 1, three: 0}
    conn.close()
