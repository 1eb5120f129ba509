"""One bad job never stalls the queue: whatever a job raises while it is applied, an SQLite error included, fails
that job alone (rolled back, retried with backoff, dead after `max_attempts` with its error) while the jobs
around it complete, in both workers; a replay after the fix runs it. Only the database's own trouble (the lock,
a full disk) leaves a chunk's jobs to run again untouched."""

import json
import sqlite3
from typing import Any

import pytest

from adapters import REGISTRY
from store.db import store_trouble
from tests.conftest import Harness, order
from tests.gateway._fake_platform import ExplodingPlatform, deliver

SECRET = "poison-platform-secret"
GOOD = 200


@pytest.fixture(params=["serve", "standalone"])
def harness(make_harness: Any, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Harness:
    monkeypatch.setitem(REGISTRY, "exploding", ExplodingPlatform)
    built: Harness = make_harness(
        standalone=request.param == "standalone",
        sources={"shop": {"type": "exploding", "secrets": [SECRET]}},
        worker={"max_attempts": 2},
    )
    return built


def _deliver(harness: Harness, payload: dict[str, Any]) -> str:
    response = deliver(harness, payload, secret=SECRET)
    assert response.status_code == 200, response.text
    job_id: str = response.json()["jobId"]
    return job_id


def _post(harness: Harness, order_id: str, email: str, cents: int = 1000) -> str:
    body = order(order_id, totalCents=cents, customer={"email": email}, items=[])
    response = harness.post_order(body)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["jobId"]
    return job_id


def _sqlite_poison(harness: Harness) -> str:
    """An order whose ledger write raises SQLite's own "integer overflow", as a sum past 2**63 did."""
    with harness.db() as conn:
        conn.execute(
            "CREATE TRIGGER poison BEFORE INSERT ON orders WHEN NEW.order_id = 'poison'"
            " BEGIN SELECT abs(-9223372036854775807 - 1); END"
        )
    return _post(harness, "poison", "poisoned@example.com")


def _plain_poison(harness: Harness) -> str:
    payload = {**order("poison", customer={"email": "poisoned@example.com"}, items=[]), "explode": True}
    return _deliver(harness, payload)


def _cure(harness: Harness, kind: str, job_id: str) -> None:
    """The fix the operator ships before replaying: the trigger dropped, the adapter's input repaired."""
    with harness.db() as conn:
        if kind == "sqlite":
            conn.execute("DROP TRIGGER poison")
        else:
            (body,) = conn.execute("SELECT body FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
            fixed = {key: value for key, value in json.loads(body).items() if key != "explode"}
            conn.execute("UPDATE jobs SET body = ? WHERE job_id = ?", (json.dumps(fixed).encode(), job_id))


def _statuses(harness: Harness) -> dict[str, int]:
    with harness.db() as conn:
        return dict(conn.execute("SELECT status, count(*) FROM jobs GROUP BY status").fetchall())


@pytest.mark.parametrize("kind", ["sqlite", "plain"])
def test_a_poison_job_among_good_ones_fails_alone_then_replays(harness: Harness, kind: str) -> None:
    good = [_post(harness, f"good-{n}", f"buyer-{n % 40}@example.com") for n in range(GOOD // 2)]
    poison = _sqlite_poison(harness) if kind == "sqlite" else _plain_poison(harness)
    good += [_post(harness, f"good-{n}", f"buyer-{n % 40}@example.com") for n in range(GOOD // 2, GOOD)]

    assert harness.drain() == GOOD + 1  # one pass over the queue: nothing is taken twice, nothing is stuck
    assert _statuses(harness) == {"done": GOOD, "failed": 1}
    failed = harness.job(poison)
    assert failed["attempts"] == 1
    # SQLite's messages name no data; any other unexpected exception is named by its type alone (its message
    # could quote the payload).
    assert failed["error"] == (
        "OperationalError: integer overflow"
        if kind == "sqlite"
        else "RuntimeError (its message is left out: it may quote the payload)"
    )

    harness.make_retries_due()
    assert harness.drain() == 1
    assert _statuses(harness) == {"done": GOOD, "dead": 1}
    dead = harness.job(poison)
    assert (dead["status"], dead["attempts"]) == ("dead", 2)
    assert harness.drain() == 0  # a dead job is never taken again

    # What the good jobs did is whole: every order counted once for its customer, nothing of the poison.
    assert all(harness.job(job_id)["status"] == "done" for job_id in good)
    assert harness.attributes("buyer-7@example.com")["ordersCount"] == GOOD // 40
    assert harness.get("/api/v1/subscribers/poisoned@example.com").status_code == 404

    _cure(harness, kind, poison)
    replay = harness.client.post(f"/api/v1/jobs/{poison}/replay", headers=harness.headers)
    assert replay.status_code == 202, replay.text
    assert harness.drain() == 1
    assert harness.job(poison)["status"] == "done"
    assert harness.attributes("poisoned@example.com")["ordersCount"] == 1
    assert _statuses(harness) == {"done": GOOD + 1}


def test_only_the_databases_own_trouble_leaves_a_job_untouched(tmp_path: Any) -> None:
    """The lock and a full disk say nothing about the job (it runs again later, no attempt counted); an SQLite
    error about the statement's data does."""
    path = tmp_path / "trouble.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN IMMEDIATE")
    conn = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        with pytest.raises(sqlite3.OperationalError) as locked:
            conn.execute("BEGIN IMMEDIATE")
        assert store_trouble(locked.value, conn)
        holder.execute("ROLLBACK")
        conn.execute("BEGIN IMMEDIATE")
        with pytest.raises(sqlite3.OperationalError) as overflow:
            conn.execute("SELECT abs(-9223372036854775807 - 1)")
        assert not store_trouble(overflow.value, conn)
        assert not store_trouble(RuntimeError("adapter bug"), conn)
        assert store_trouble(sqlite3.OperationalError("database or disk is full"), conn)
        conn.execute("ROLLBACK")
        # An error after which SQLite rolled the whole transaction back leaves nothing of the job to record.
        assert store_trouble(overflow.value, conn)
    finally:
        conn.close()
        holder.close()
