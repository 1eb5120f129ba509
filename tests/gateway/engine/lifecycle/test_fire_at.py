"""An active automation's row is its timer: a database from before, whose reminders had `timers` rows, fires
each of them once after its migration; a reminder whose firing fails is retried from `store.timers` with its
attempts counted and fires once, and one stopped meanwhile is not retried."""

import math
import sqlite3
from pathlib import Path
from typing import Any
from unittest import mock

from gateway.config import LifecycleConfig
from gateway.engine import Engine
from gateway.engine import automations as effects
from gateway.engine.lifecycle import Lifecycle
from store import automations, events, schema, schema_flows, timers
from store.automations import REPLENISHMENT
from store.db import connect, transaction
from tests._schema import database_before

NOW = 1_780_000_000_000_000
DUE = NOW + 1_000_000
FIRED = "SELECT count(*), count(DISTINCT dedup_key) FROM events WHERE name = 'ecommerce.replenishment_due'"


def _engine() -> Engine:
    engine = Engine("USD", {})
    Lifecycle.register(engine, LifecycleConfig.model_validate({}))
    return engine


def _fire(conn: sqlite3.Connection, engine: Engine, now: int) -> int:
    with transaction(conn):
        fired, _more = engine.timers.fire_due(conn, now, math.inf, lambda attempts, at: at + 10)
    return fired


def _subscriber(conn: sqlite3.Connection) -> int:
    conn.execute(
        "INSERT INTO subscribers (id, email, attributes, orders_count, total_spent_cents, created_at, updated_at)"
        " VALUES (1, 's@example.com', '{}', 0, 0, 1, 1)"
    )
    return 1


def test_reminders_set_before_the_migration_fire_once_after_it(tmp_path: Path) -> None:
    conn = database_before(tmp_path / "old.db", schema_flows.automations_fire_at)
    with transaction(conn):  # as the store wrote them then: a timer row per active reminder
        subscriber = _subscriber(conn)
        conn.executemany(
            "INSERT INTO automations (id, subscriber_id, flow, key, status, started_at, due_at, data)"
            " VALUES (?, ?, 'replenishment', ?, ?, ?, ?, '{}')",
            [(1, subscriber, "P1", "active", NOW, DUE), (2, subscriber, "P2", "active", NOW, DUE),
             (3, subscriber, "P3", "fired", NOW, DUE)],
        )  # fmt: skip
        timers.schedule(conn, "automation", "1", DUE)
        timers.retry(conn, "automation", "2", DUE + 5, 1, "ValueError")  # failed once, set again
    schema.migrate(conn)
    assert automations.due(conn, REPLENISHMENT, DUE, 10) == [(1, DUE)]
    assert [row[1:4] for row in timers.due(conn, DUE + 5, 10)] == [("automation", "2", DUE + 5)]
    engine = _engine()
    assert engine.timers.next_due(conn) == DUE
    assert _fire(conn, engine, DUE + 5) == 2
    assert _fire(conn, engine, DUE + 5) == 0
    assert engine.timers.next_due(conn) is None
    assert conn.execute(FIRED).fetchone() == (2, 2)
    assert {row.id: row.status for row in automations.for_subscriber(conn, subscriber)} == {
        1: "fired",
        2: "fired",
        3: "fired",
    }
    conn.close()


def _failing_once() -> Any:
    record = events.record
    failures = []

    def failing(*args: Any, **kwargs: Any) -> Any:
        if not failures:
            failures.append(1)
            raise ValueError("a broken destination hook")
        return record(*args, **kwargs)

    return mock.patch("gateway.engine.automations.events.record", failing)


def _failed_once(tmp_path: Path) -> tuple[sqlite3.Connection, Engine, int]:
    """A reminder due at DUE whose first firing failed: taken, rolled back alone, set again with its attempt."""
    conn = connect(tmp_path / "gateway.db")
    schema.migrate(conn)
    engine = _engine()
    with transaction(conn):
        reminder = effects.start(conn, _subscriber(conn), REPLENISHMENT, "P1", NOW, {"productId": "P1"}, DUE)
    with _failing_once():
        assert _fire(conn, engine, DUE) == 1
    return conn, engine, reminder


def test_a_reminder_whose_firing_fails_is_retried_from_the_timers_and_fires_once(tmp_path: Path) -> None:
    conn, engine, reminder = _failed_once(tmp_path)
    stored = automations.get(conn, reminder)
    assert stored is not None and (stored.status, stored.fire_at) == ("active", None)
    assert [row[1:5] for row in timers.due(conn, DUE + 10, 10)] == [("automation", str(reminder), DUE + 10, 1)]
    assert conn.execute(FIRED).fetchone() == (0, 0)
    assert _fire(conn, engine, DUE + 9) == 0  # not before its retry time
    assert _fire(conn, engine, DUE + 10) == 1
    assert _fire(conn, engine, DUE + 10) == 0
    assert conn.execute(FIRED).fetchone() == (1, 1)
    assert engine.timers.next_due(conn) is None
    conn.close()


def test_a_reminder_stopped_while_its_firing_waits_for_a_retry_is_not_retried(tmp_path: Path) -> None:
    conn, engine, reminder = _failed_once(tmp_path)
    stored = automations.get(conn, reminder)
    assert stored is not None
    with transaction(conn):
        assert effects.stop(conn, stored, "order_cancelled", "o1", DUE)
    assert engine.timers.next_due(conn) is None
    assert _fire(conn, engine, DUE + 10) == 0
    assert conn.execute(FIRED).fetchone() == (0, 0)
    conn.close()


class _Rows:
    """Rows due at DUE, whose handler (below) leaves them due: a broken kind."""

    def __init__(self) -> None:
        self.due_at = {"a": DUE, "b": DUE}

    def next_due(self, conn: sqlite3.Connection) -> int | None:
        return min(self.due_at.values(), default=None)

    def due(self, conn: sqlite3.Connection, now: int, limit: int) -> list[tuple[str, int]]:
        return sorted((key, due_at) for key, due_at in self.due_at.items() if due_at <= now)[:limit]

    def take(self, conn: sqlite3.Connection, key: str, now: int) -> bool:
        return self.due_at.pop(key, None) is not None


def test_a_row_its_handler_leaves_due_is_fired_once_and_taken(tmp_path: Path) -> None:
    conn = connect(tmp_path / "gateway.db")
    schema.migrate(conn)
    engine, rows, calls = Engine("USD", {}), _Rows(), []
    engine.timers.register("broken", lambda conn, key, due_at, now: calls.append(key))
    engine.timers.register_rows("broken", rows)
    assert _fire(conn, engine, DUE) == 2
    assert calls == ["a", "b"] and rows.due_at == {}
    conn.close()
