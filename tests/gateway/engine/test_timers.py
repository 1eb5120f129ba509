"""Durable timers fired by the worker: once each, in the transaction of their effects, never lost; the worker
sleeps until the earliest due time rather than polling for it."""

import sqlite3
import threading
from typing import Any

import pytest

from gateway.engine.timers import RETRY_US
from normalizer.timefmt import now_us
from store import timers
from store.db import connect, transaction
from tests.conftest import Harness

SECOND = 1_000_000


def _fired_table(harness: Harness) -> None:
    with harness.db() as conn:
        conn.execute("CREATE TABLE fired (key TEXT, due_at INTEGER, fired_at INTEGER)")


def _record(conn: sqlite3.Connection, key: str, due_at: int, now: int) -> None:
    conn.execute("INSERT INTO fired VALUES (?, ?, ?)", (key, due_at, now))


def _fired(harness: Harness) -> list[tuple[Any, ...]]:
    with harness.db() as conn:
        return conn.execute("SELECT key, due_at FROM fired ORDER BY rowid").fetchall()


def _schedule(harness: Harness, *entries: tuple[str, int]) -> None:
    """Set timers from a connection of their own, as a job or a request would."""
    writer = connect(harness.config.database)
    with transaction(writer) as conn:
        for key, due_at in entries:
            timers.schedule(conn, "test", key, due_at)
    writer.close()


def test_a_timer_fires_once_when_due_and_not_before(harness: Harness) -> None:
    _fired_table(harness)
    harness.worker.engine.timers.register("test", _record)
    start = now_us()
    _schedule(harness, ("b", start + 20 * SECOND), ("a", start + 10 * SECOND), ("c", start + 30 * SECOND))
    _schedule(harness, ("c", start + 40 * SECOND))  # moved: one timer per (kind, key)
    assert harness.worker.fire_timers(start) == 0
    assert harness.worker.fire_timers(start + 25 * SECOND) == 2
    assert _fired(harness) == [("a", start + 10 * SECOND), ("b", start + 20 * SECOND)]
    assert harness.worker.fire_timers(start + 25 * SECOND) == 0  # fired means gone
    assert harness.worker.fire_timers(start + 45 * SECOND) == 1
    assert [key for key, _ in _fired(harness)] == ["a", "b", "c"]


def test_a_crash_inside_the_firing_transaction_fires_nothing_and_loses_nothing(harness: Harness) -> None:
    """The process dying mid-batch (here: an exception no handler catches, as SystemExit would be) rolls back
    the timers taken with their effects; the next worker fires each exactly once."""
    _fired_table(harness)
    calls = []

    def dies_on_the_third(conn: sqlite3.Connection, key: str, due_at: int, now: int) -> None:
        calls.append(key)
        if len(calls) == 3:
            raise SystemExit("killed")
        _record(conn, key, due_at, now)

    harness.worker.engine.timers.register("test", dies_on_the_third)
    start = now_us()
    _schedule(harness, *[(f"t{i}", start + i) for i in range(10)])
    with pytest.raises(SystemExit):
        harness.worker.fire_timers(start + SECOND)
    assert _fired(harness) == []
    with harness.db() as conn:
        assert conn.execute("SELECT count(*) FROM timers").fetchone()[0] == 10
    assert harness.worker.fire_timers(start + SECOND) == 10
    assert sorted(key for key, _ in _fired(harness)) == sorted(f"t{i}" for i in range(10))
    assert harness.worker.fire_timers(start + SECOND) == 0


def test_a_failing_handler_is_rolled_back_alone_and_tried_again_later(harness: Harness) -> None:
    _fired_table(harness)

    def fails_for_b(conn: sqlite3.Connection, key: str, due_at: int, now: int) -> None:
        _record(conn, key, due_at, now)
        if key == "b":
            raise ValueError("broken")

    harness.worker.engine.timers.register("test", fails_for_b)
    start = now_us()
    _schedule(harness, ("a", start), ("b", start), ("c", start))
    assert harness.worker.fire_timers(start + 1) == 3
    assert sorted(key for key, _ in _fired(harness)) == ["a", "c"]
    with harness.db() as conn:
        assert timers.get(conn, "test", "b") == start + 1 + RETRY_US


def test_a_timer_of_a_kind_no_one_handles_is_kept(harness: Harness) -> None:
    start = now_us()
    _schedule(harness, ("x", start))
    harness.worker.fire_timers(start + 1)
    with harness.db() as conn:
        assert timers.get(conn, "test", "x") == start + 1 + RETRY_US


def test_after_downtime_everything_that_came_due_fires_once(make_harness: Any) -> None:
    first = make_harness()
    _fired_table(first)
    start = now_us()
    _schedule(first, *[(f"t{i}", start - (i + 1) * 3600 * SECOND) for i in range(1200)])
    first.worker.close()
    # A new process (new engine, new worker) on the same database: three batches, each timer once.
    restarted = make_harness()
    restarted.worker.engine.timers.register("test", _record)
    assert restarted.drain() == 0
    assert len(_fired(restarted)) == 1200
    assert len({key for key, _ in _fired(restarted)}) == 1200


def test_the_worker_sleeps_until_the_next_due_time(make_harness: Any) -> None:
    """With a job poll of a minute, a timer due in 0.3 s still fires: the idle worker wakes at its due time."""
    harness = make_harness(worker={"poll_seconds": 60})
    fired = threading.Event()
    harness.worker.engine.timers.register("test", lambda conn, key, due_at, now: fired.set())
    stop = threading.Event()
    thread = threading.Thread(target=harness.worker.run, args=(stop,))
    thread.start()
    try:
        harness.worker.wake.set()
        _schedule(harness, ("soon", now_us() + 300_000))
        harness.worker.wake.set()  # as a writer in the same process does after committing an earlier timer
        assert fired.wait(30)
    finally:
        stop.set()
        harness.worker.wake.set()
        thread.join()
