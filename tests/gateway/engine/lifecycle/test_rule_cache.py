"""The worker keeps the catalog's replenishment rules in memory: a rule changed by any writer (the API's
connection, another process, the worker's own native catalog update) applies from the next order on, and one
changed in a transaction that was rolled back never applies. The active-automation counts the metrics gauge
reads are kept by triggers and always equal a count of the table."""

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.config import LifecycleConfig
from gateway.engine import Engine
from gateway.engine.lifecycle import Lifecycle
from normalizer import PushOrder
from normalizer.catalog import Product
from normalizer.order_event import OrderEvent
from normalizer.timefmt import to_micros
from store import automation_counts, automations, catalog
from store.db import connect, savepoint, transaction
from store.schema import migrate

NOW = to_micros(datetime(2026, 6, 1, tzinfo=UTC))
ORDERED = datetime(2026, 5, 20, tzinfo=UTC)
DAY_US = 86_400 * 1_000_000


@pytest.fixture
def database(tmp_path: Path) -> Iterator[tuple[sqlite3.Connection, Engine, Path]]:
    path = tmp_path / "gateway.db"
    conn = connect(path)
    migrate(conn)
    engine = Engine("USD", {})
    Lifecycle.register(engine, LifecycleConfig.model_validate({"historical_after": "36500d"}))
    yield conn, engine, path
    conn.close()


def _rule(conn: sqlite3.Connection, days: int | None) -> None:
    rule = None if days is None else {"days": days}
    catalog.put(conn, {"productId": "P", "title": "P", "replenishment": rule}, "api", NOW)


def _place(conn: sqlite3.Connection, engine: Engine, order_id: str) -> None:
    body: dict[str, Any] = {
        "orderId": order_id,
        "status": "placed",
        "totalCents": 1000,
        "currency": "USD",
        "orderedAt": ORDERED.isoformat(),
        "customer": {"email": f"{order_id}@example.com"},
        "items": [{"productId": "P", "title": "P", "quantity": 1}],
    }
    engine.apply(conn, OrderEvent("api", "api", PushOrder.model_validate(body), 1), NOW)


def _due_days(conn: sqlite3.Connection, order_id: str) -> int | None:
    row = conn.execute("SELECT due_at FROM automations WHERE order_id = ?", (order_id,)).fetchone()
    return None if row is None else (row[0] - to_micros(ORDERED)) // DAY_US


def test_a_rule_changed_by_another_connection_applies_to_the_next_order(
    database: tuple[sqlite3.Connection, Engine, Path],
) -> None:
    conn, engine, path = database
    with transaction(conn):
        _rule(conn, 30)
        _place(conn, engine, "a")
    other = connect(path)  # the API's writer, or another process
    with transaction(other):
        _rule(other, 20)
    other.close()
    with transaction(conn):
        _place(conn, engine, "b")
    assert (_due_days(conn, "a"), _due_days(conn, "b")) == (30, 20)


def test_the_worker_s_own_catalog_update_applies_within_its_transaction(
    database: tuple[sqlite3.Connection, Engine, Path],
) -> None:
    conn, engine, _ = database
    with transaction(conn):
        _rule(conn, 30)
        _place(conn, engine, "a")
        _rule(conn, None)
        _place(conn, engine, "b")
        _rule(conn, 10)
        _place(conn, engine, "c")
    assert (_due_days(conn, "a"), _due_days(conn, "b"), _due_days(conn, "c")) == (30, None, 10)


def test_a_rule_of_a_rolled_back_transaction_never_applies(database: tuple[sqlite3.Connection, Engine, Path]) -> None:
    conn, engine, _ = database
    with transaction(conn):
        _rule(conn, 30)
    with pytest.raises(RuntimeError), transaction(conn):
        _rule(conn, 5)
        _place(conn, engine, "gone")  # reads (and keeps) the rule of 5 days
        raise RuntimeError("a job of the chunk failed")
    with transaction(conn):
        # Another change, the first one the worker sees after the rollback: a count of changes would be back
        # at the rolled-back one's number here.
        _rule(conn, 7)
        _place(conn, engine, "b")
    with transaction(conn):
        _rule(conn, 30)
        _place(conn, engine, "a")
    assert (_due_days(conn, "gone"), _due_days(conn, "b"), _due_days(conn, "a")) == (None, 7, 30)


def _upsert(engine: Engine, conn: sqlite3.Connection, days: int | None) -> None:
    """A catalog update of the worker's own (the API's or a native one): through the lifecycle."""
    assert engine.lifecycle is not None
    rule = None if days is None else {"days": days}
    engine.lifecycle.upsert_products(
        conn, [Product.model_validate({"productId": "P", "replenishment": rule})], "api", NOW
    )


def test_within_a_chunk_the_worker_s_own_catalog_update_applies_from_the_next_order(
    database: tuple[sqlite3.Connection, Engine, Path],
) -> None:
    conn, engine, path = database
    with transaction(conn), engine.chunk(conn):
        _upsert(engine, conn, 30)
        _place(conn, engine, "a")
        _upsert(engine, conn, None)
        _place(conn, engine, "b")
        with pytest.raises(RuntimeError), savepoint(conn):  # a job of the chunk that fails after its update
            _upsert(engine, conn, 5)
            raise RuntimeError("the job failed")
        _place(conn, engine, "c")
        _upsert(engine, conn, 10)
        _place(conn, engine, "d")
    other = connect(path)  # between two chunks, the API's writer or another process
    with transaction(other):
        _rule(other, 20)
    other.close()
    with transaction(conn), engine.chunk(conn):
        _place(conn, engine, "e")
    days = [_due_days(conn, order_id) for order_id in "abcde"]
    assert days == [30, None, None, 10, 20]


def _active_by_flow(conn: sqlite3.Connection) -> dict[str, int]:
    """The active automations by flow, counted from their rows: what `automation_counts` must keep."""
    rows = conn.execute("SELECT flow, count(*) FROM automations WHERE status = 'active' GROUP BY flow")
    return dict(rows.fetchall())


def test_active_counts_are_kept_through_start_fire_stop_and_erasure(
    database: tuple[sqlite3.Connection, Engine, Path],
) -> None:
    conn, engine, _ = database

    with transaction(conn):
        _rule(conn, 30)
        for number in range(4):
            _place(conn, engine, f"o{number}")
    assert automation_counts.active(conn) == _active_by_flow(conn) == {"replenishment": 4}
    ids = [row[0] for row in conn.execute("SELECT id, subscriber_id FROM automations ORDER BY id")]
    subscriber = conn.execute("SELECT subscriber_id FROM automations WHERE id = ?", (ids[3],)).fetchone()[0]
    with transaction(conn):
        assert automations.fire(conn, ids[0], NOW)
        assert automations.stop(conn, ids[1], NOW, "order_cancelled")
        assert not automations.stop(conn, ids[1], NOW, "order_cancelled")  # no longer active: counted once
        assert automations.forget_subscriber(conn, subscriber) == 1
    assert automation_counts.active(conn) == _active_by_flow(conn) == {"replenishment": 1}


def test_active_counts_folded_after_each_chunk_stay_exact_through_ends_and_a_reused_id(
    database: tuple[sqlite3.Connection, Engine, Path],
) -> None:
    """The worker folds a chunk's new automations into the kept counts at its end; the ends of counted ones are
    taken off, and an erased newest automation's id, which SQLite gives the next one, is counted once."""
    conn, engine, _ = database

    with transaction(conn):
        _rule(conn, 30)
    with transaction(conn), engine.chunk(conn):
        for number in range(4):
            _place(conn, engine, f"o{number}")
    assert automation_counts.active(conn) == _active_by_flow(conn) == {"replenishment": 4}
    ids = [row[0] for row in conn.execute("SELECT id FROM automations ORDER BY id")]
    newest = conn.execute("SELECT subscriber_id FROM automations WHERE id = ?", (ids[3],)).fetchone()[0]
    with transaction(conn):
        assert automations.fire(conn, ids[0], NOW)
        assert automations.stop(conn, ids[1], NOW, "order_cancelled")
        assert automations.forget_subscriber(conn, newest) == 1
    assert automation_counts.active(conn) == _active_by_flow(conn) == {"replenishment": 1}
    with transaction(conn), engine.chunk(conn):
        _place(conn, engine, "o4")
    assert conn.execute("SELECT max(id) FROM automations").fetchone()[0] == ids[3]  # the erased one's id again
    assert automation_counts.active(conn) == _active_by_flow(conn) == {"replenishment": 2}
    with transaction(conn):
        assert automations.stop(conn, ids[3], NOW, "order_cancelled")
        assert automations.stop(conn, ids[2], NOW, "order_cancelled")
    assert automation_counts.active(conn) == _active_by_flow(conn) == {}
