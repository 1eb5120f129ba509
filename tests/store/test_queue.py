"""The durable queue on its own: what `take` and `claim` hand out, and when; what `complete_many` and `fail`
leave behind; a repeated delivery recorded once."""

import json
import sqlite3
from typing import Any

from store import job_reads, queue
from store.db import transaction

NOW = 1_000_000_000
LEASE = 30_000_000


def _queue(conn: sqlite3.Connection, count: int) -> list[str]:
    ids = [f"commerce-order-{number:04d}" for number in range(count)]
    with transaction(conn):
        for number, job_id in enumerate(ids):
            assert queue.insert(conn, queue.NewJob(job_id, "order", "api", b"{}", NOW - count + number))
    return ids


def _job(conn: sqlite3.Connection, job_id: str) -> dict[str, Any]:
    row = conn.execute("SELECT status, attempts, error, warnings FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    return {"status": row[0], "attempts": row[1], "error": row[2], "warnings": json.loads(row[3] or "[]")}


def _status(conn: sqlite3.Connection) -> dict[str, tuple[str, int, str | None]]:
    rows = conn.execute("SELECT job_id, status, attempts, lease_owner FROM jobs").fetchall()
    return {job_id: (status, attempts, owner) for job_id, status, attempts, owner in rows}


def test_take_hands_out_runnable_jobs_oldest_first_up_to_the_limit_and_writes_nothing(
    conn: sqlite3.Connection,
) -> None:
    ids = _queue(conn, 5)
    with transaction(conn):
        taken = queue.take(conn, NOW + 10, limit=3)
    assert [job.job_id for job in taken] == ids[:3]
    assert [job.attempts for job in taken] == [1, 1, 1]  # this attempt, counted once it is stored
    assert {status for status, _, _ in _status(conn).values()} == {"queued"}  # no lease written
    with transaction(conn):
        assert [job.job_id for job in queue.take(conn, NOW + 10, limit=10)] == ids


def test_take_leaves_out_future_retries_and_live_leases(conn: sqlite3.Connection) -> None:
    ids = _queue(conn, 3)
    with transaction(conn):
        [first] = queue.claim(conn, "worker-a", NOW, LEASE, limit=1)
        second = queue.take(conn, NOW, limit=2)[0]
        queue.fail(conn, second, "waiting for its order", retry_at=NOW + 5_000_000, now=NOW)
    with transaction(conn):
        assert [job.job_id for job in queue.take(conn, NOW + 1, limit=10)] == [ids[2]]
    with transaction(conn):  # the retry is due, the lease has expired: both runnable again
        assert [job.job_id for job in queue.take(conn, NOW + LEASE + 1, limit=10)] == ids
    assert first.job_id == ids[0]


def test_claim_leases_jobs_to_one_owner_until_the_lease_expires(conn: sqlite3.Connection) -> None:
    ids = _queue(conn, 4)
    with transaction(conn):
        leased = queue.claim(conn, "worker-a", NOW, LEASE, limit=3)
    assert [job.job_id for job in leased] == ids[:3]
    assert _status(conn)[ids[0]] == ("processing", 1, "worker-a")
    with transaction(conn):  # another worker, while the lease holds, gets only what is left
        assert [job.job_id for job in queue.claim(conn, "worker-b", NOW + 1, LEASE, limit=10)] == [ids[3]]
    with transaction(conn):
        assert queue.still_leased_ids(conn, leased, "worker-a") == {job.id for job in leased}
    with transaction(conn):  # worker-a died: its jobs run again, counted as a second attempt
        taken_over = queue.claim(conn, "worker-b", NOW + LEASE + 1, LEASE, limit=10)
    assert [job.job_id for job in taken_over] == ids[:3]
    assert [job.attempts for job in taken_over] == [2, 2, 2]
    with transaction(conn):
        assert queue.still_leased_ids(conn, leased, "worker-a") == set()


def test_complete_many_marks_a_chunk_done_with_its_worker_and_warnings(conn: sqlite3.Connection) -> None:
    ids = _queue(conn, 3)
    with transaction(conn):
        jobs = queue.claim(conn, "worker-a", NOW, LEASE, limit=2)
        queue.complete_many(conn, [(jobs[0], NOW + 7, []), (jobs[1], NOW + 8, ["revenue key ignored"])], "worker-a")
    assert _status(conn) == {
        ids[0]: ("done", 1, "worker-a"),
        ids[1]: ("done", 1, "worker-a"),
        ids[2]: ("queued", 0, None),
    }
    assert _job(conn, ids[1])["warnings"] == ["revenue key ignored"]
    finished = dict(conn.execute("SELECT job_id, finished_at FROM jobs WHERE status = 'done'").fetchall())
    assert finished == {ids[0]: NOW + 7, ids[1]: NOW + 8}
    with transaction(conn):  # done jobs are never handed out again
        assert [job.job_id for job in queue.take(conn, NOW + 10 * LEASE, limit=10)] == [ids[2]]


def test_a_taken_job_completes_with_the_attempt_it_was_taken_for(conn: sqlite3.Connection) -> None:
    [job_id] = _queue(conn, 1)
    with transaction(conn):
        [job] = queue.take(conn, NOW, limit=1)
        queue.complete_many(conn, [(job, NOW + 1, [])], "serve-worker")
    assert _status(conn) == {job_id: ("done", 1, "serve-worker")}


def test_fail_is_a_retry_or_dead_with_its_error_and_replay_queues_it_again(conn: sqlite3.Connection) -> None:
    retried, dead = _queue(conn, 2)
    with transaction(conn):
        jobs = queue.take(conn, NOW, limit=2)
        queue.fail(conn, jobs[0], "waiting for its order", retry_at=NOW + 2_000_000, now=NOW)
        queue.fail(conn, jobs[1], "invalid canonical order", retry_at=None, now=NOW)
    assert [_job(conn, retried)[key] for key in ("status", "attempts", "error")] == [
        "failed",
        1,
        "waiting for its order",
    ]
    assert [_job(conn, dead)[key] for key in ("status", "attempts", "error")] == ["dead", 1, "invalid canonical order"]
    with transaction(conn):  # the dead job never runs again by itself
        assert [job.job_id for job in queue.take(conn, NOW + 10 * LEASE, limit=10)] == [retried]
    with transaction(conn):
        assert queue.replay(conn, dead, NOW + 1) == [dead]
        assert queue.replay(conn, dead, NOW + 1) == []  # queued now: nothing to replay
    assert _status(conn)[dead] == ("queued", 0, None)


def test_a_repeated_delivery_key_is_recorded_once(conn: sqlite3.Connection) -> None:
    first = queue.NewJob("commerce-webhook-1", "webhook", "my-shop", b"{}", NOW, dedup_key="delivery-1")
    again = queue.NewJob("commerce-webhook-2", "webhook", "my-shop", b"{}", NOW + 1, dedup_key="delivery-1")
    other = queue.NewJob("commerce-webhook-3", "webhook", "my-shop", b"{}", NOW + 2, dedup_key="delivery-2")
    with transaction(conn):
        assert queue.insert(conn, first)
        assert not queue.insert(conn, again)
        assert queue.insert_many(conn, [again, other]) == [False, True]
    assert sorted(_status(conn)) == ["commerce-webhook-1", "commerce-webhook-3"]


def test_each_failed_attempt_joins_the_trace_and_goes_with_its_job_when_pruned(conn: sqlite3.Connection) -> None:
    kept, pruned = _queue(conn, 2)
    for attempt in range(2):
        with transaction(conn):
            for job in queue.take(conn, NOW + attempt * LEASE, limit=2):
                queue.fail(
                    conn, job, f"waiting ({attempt + 1})", retry_at=NOW + (attempt + 1) * LEASE, now=NOW + attempt
                )
    with transaction(conn):
        [job] = [job for job in queue.take(conn, NOW + 2 * LEASE, limit=2) if job.job_id == pruned]
        queue.complete_many(conn, [(job, NOW + 2 * LEASE, [])], "worker-a")
    trace = job_reads.get(conn, pruned)
    assert trace is not None and trace["failedAttempts"] == [
        {"attempt": 1, "at": NOW, "error": "waiting (1)", "outcome": "failed", "nextAttemptAt": NOW + LEASE},
        {"attempt": 2, "at": NOW + 1, "error": "waiting (2)", "outcome": "failed", "nextAttemptAt": NOW + 2 * LEASE},
    ]
    with transaction(conn):  # done and old enough: pruned with its attempts; the failed one keeps its own
        assert queue.prune_done(conn, NOW + 3 * LEASE, limit=10) == 1
    assert job_reads.get(conn, pruned) is None
    assert [job for (job,) in conn.execute("SELECT job FROM job_attempts")] == [_id(conn, kept)] * 2


def test_a_dead_attempt_has_no_next_attempt_and_a_replay_keeps_the_history(conn: sqlite3.Connection) -> None:
    [job_id] = _queue(conn, 1)
    with transaction(conn):
        [job] = queue.take(conn, NOW, limit=1)
        queue.fail(conn, job, "invalid canonical order", retry_at=None, now=NOW)
    with transaction(conn):
        assert queue.replay(conn, job_id, NOW + 1) == [job_id]
        [job] = queue.take(conn, NOW + 1, limit=1)
        queue.fail(conn, job, "invalid canonical order", retry_at=None, now=NOW + 2)
    trace = job_reads.get(conn, job_id)
    assert trace is not None
    assert [
        (each["attempt"], each["at"], each["outcome"], each["nextAttemptAt"]) for each in trace["failedAttempts"]
    ] == [
        (1, NOW, "dead", None),
        (1, NOW + 2, "dead", None),  # a replay starts the count again
    ]


def _id(conn: sqlite3.Connection, job_id: str) -> int:
    row: tuple[int] = conn.execute("SELECT id FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    return row[0]
