"""SIGKILL of a real `worker` process while it fires thousands of due reminders: after a restart every reminder
has fired exactly once, with exactly one event each."""

import time
from pathlib import Path

from gateway.config import load
from gateway.engine import automations as effects
from gateway.engine import build_engine
from normalizer import Customer
from normalizer.timefmt import now_us
from store.automations import REPLENISHMENT
from store.db import connect, transaction
from store.schema import migrate
from tests.conftest import write_config
from tests.gateway._server import Process, database

REMINDERS = 20_000
SUBSCRIBERS = 2_000


def _count(conn: object, sql: str) -> int:
    return int(conn.execute(sql).fetchone()[0])  # type: ignore[attr-defined]


def test_sigkill_while_firing_loses_no_reminder_and_fires_none_twice(tmp_path: Path) -> None:
    config_path = write_config(tmp_path)
    config = load(config_path)
    conn = connect(config.database)
    migrate(conn)
    engine = build_engine(config)
    due = now_us() + 1_000_000  # all due in a second: the worker is started before then
    with transaction(conn):
        ids = [
            engine.upsert_subscriber(conn, Customer(email=f"k{number}@example.com"), now_us(), [])
            for number in range(SUBSCRIBERS)
        ]
        for number in range(REMINDERS):
            data = {"productId": f"P{number}", "quantity": 1, "orderId": f"o{number}"}
            effects.start(conn, ids[number % SUBSCRIBERS], REPLENISHMENT, f"P{number}", now_us(), data, due)
    conn.close()

    watch = database(config_path)
    fired_sql = "SELECT count(*) FROM events WHERE name = 'ecommerce.replenishment_due'"
    with Process(config_path, "worker", name="killed") as worker:
        deadline = time.monotonic() + 120
        while _count(watch, fired_sql) == 0:
            worker.check_alive()
            assert time.monotonic() < deadline, "nothing fired"
            time.sleep(0.005)
        worker.kill()
    at_kill = _count(watch, fired_sql)
    assert 0 < at_kill < REMINDERS, "the kill came after every reminder had fired"
    # What fired is exactly what is marked fired: the event and the mark committed together.
    assert _count(watch, "SELECT count(*) FROM automations WHERE status = 'fired'") == at_kill

    with Process(config_path, "worker", name="restarted") as worker:
        deadline = time.monotonic() + 120
        while _count(watch, "SELECT count(*) FROM automations WHERE status = 'active'"):
            worker.check_alive()
            assert time.monotonic() < deadline, "reminders left active"
            time.sleep(0.05)
        worker.terminate()
    assert _count(watch, fired_sql) == REMINDERS
    assert _count(watch, "SELECT count(DISTINCT dedup_key) FROM events WHERE name = 'ecommerce.replenishment_due'") == (
        REMINDERS
    )
    assert engine.timers.next_due(watch) is None  # nothing is left to fire
    watch.close()
