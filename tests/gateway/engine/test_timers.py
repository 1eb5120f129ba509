"""Durable timers fired by the worker: once each, in the transaction of their effects, never lost; the worker
sleeps until the earliest due time rather than polling for it."""

import math
import sqlite3
import threading
from typing import Any
from unittest import mock

import pytest

from gateway.cli import main
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


def _counting(harness: Harness) -> Harness:
    """The harness's worker with no time budget per firing transaction: a test that counts the timers one call
    fires must not depend on how fast the machine is (the budget has a test of its own)."""
    harness.worker.timer_seconds = math.inf
    return harness


def _schedule(harness: Harness, *entries: tuple[str, int]) -> None:
    """Set timers from a connection of their own, as a job or a request would."""
    writer = connect(harness.config.database)
    with transaction(writer) as conn:
        for key, due_at in entries:
            timers.schedule(conn, "test", key, due_at)
    writer.close()


def test_a_timer_fires_once_when_due_and_not_before(harness: Harness) -> None:
    _fired_table(_counting(harness))
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
    _fired_table(_counting(harness))
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
    _fired_table(_counting(harness))

    def fails_for_b(conn: sqlite3.Connection, key: str, due_at: int, now: int) -> None:
        _record(conn, key, due_at, now)
        if key == "b":
            raise ValueError("broken")

    harness.worker.engine.timers.register("test", fails_for_b)
    start = now_us()
    _schedule(harness, ("a", start), ("b", start), ("c", start))
    assert harness.worker.fire_timers(start + 1) == 3
    assert sorted(key for key, _ in _fired(harness)) == ["a", "c"]
    base = harness.config.worker.retry_base_seconds * SECOND  # the jobs' backoff: base, then fourfold
    with harness.db() as conn:
        due_at, attempts, error = conn.execute("SELECT due_at, attempts, error FROM timers WHERE key = 'b'").fetchone()
    assert start + 1 + 0.8 * base <= due_at <= start + 1 + 1.2 * base
    assert (attempts, error) == (1, "ValueError (its message is left out: it may quote the payload)")


def test_a_timer_that_always_raises_ends_dead_after_max_attempts_while_others_fire(
    make_harness: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Retried with the jobs' backoff, then dead with its error (its type, not its message), out of the way of
    the timers set after it; the operator sees it in the metrics and can set it again."""
    harness = _counting(make_harness(worker={"max_attempts": 4, "retry_base_seconds": 1}, metrics_token="t" * 32))
    _fired_table(harness)

    def poison(conn: sqlite3.Connection, key: str, due_at: int, now: int) -> None:
        if key == "poison":
            _record(conn, key, due_at, now)  # rolled back with the attempt
            raise ValueError("no such customer: jane@example.com")
        _record(conn, key, due_at, now)

    harness.worker.engine.timers.register("test", poison)
    now = now_us()
    _schedule(harness, ("poison", now))
    for attempt in range(1, 5):
        _schedule(harness, (f"good{attempt}", now))
        assert harness.worker.fire_timers(now) == 2
        with harness.db() as conn:
            left = conn.execute("SELECT due_at, attempts FROM timers WHERE key = 'poison'").fetchone()
        if attempt < 4:
            assert left[1] == attempt and left[0] > now
            assert harness.worker.fire_timers(left[0] - 1) == 0  # not before its backoff
            now = left[0]
        else:
            assert left is None
    assert sorted(key for key, _ in _fired(harness)) == [f"good{i}" for i in range(1, 5)]
    with harness.db() as conn:
        assert timers.dead(conn, 10) == [
            {
                "kind": "test",
                "key": "poison",
                "dueAt": mock.ANY,
                "attempts": 4,
                "error": "ValueError (its message is left out: it may quote the payload)",
                "diedAt": now,
            }
        ]
        assert timers.counts(conn) == {"failed": 0, "dead": 1}
    # Dead, it no longer comes due; a new timer of the same kind and key is set as any other.
    assert harness.worker.fire_timers(now + 3600 * SECOND) == 0
    metrics = harness.client.get("/metrics", headers={"Authorization": "Bearer " + "t" * 32}).text
    assert 'commerce_gateway_timers{status="dead"} 1.0' in metrics
    # The operator's commands: the dead timer listed, then set due again with no attempt counted.
    config = str(harness.config.database.parent.parent / "config.yaml")
    assert main(["--config", config, "timers", "list"]) == 0
    listed = capsys.readouterr().out
    assert "poison" in listed and "ValueError" in listed and "jane" not in listed
    assert main(["timers", "replay", "--kind", "test", "--key", "poison", "--config", config]) == 0
    assert main(["timers", "replay", "--kind", "test", "--key", "poison", "--config", config]) == 1  # none left
    with harness.db() as conn:
        assert timers.dead(conn, 10) == []
        assert conn.execute("SELECT attempts, error FROM timers WHERE key = 'poison'").fetchone() == (0, None)


def test_a_firing_transaction_past_its_budget_ends_after_one_timer(harness: Harness) -> None:
    """The worker holds the write lock for one firing transaction: past its budget it ends, once at least one
    timer has fired (so timers always progress), and the rest fire in the next one."""
    _fired_table(harness)
    harness.worker.engine.timers.register("test", _record)
    harness.worker.timer_seconds = 0.0  # the budget is spent before the first timer: deterministic
    start = now_us()
    _schedule(harness, *[(f"t{i}", start + i) for i in range(3)])
    assert [harness.worker.fire_timers(start + SECOND) for _ in range(4)] == [1, 1, 1, 0]
    assert [key for key, _ in _fired(harness)] == ["t0", "t1", "t2"]


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
