"""The durable job queue: insert (with delivery dedup), lease or take, finish, retry, dead, replay."""

import random
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from store import json_columns
from store.db import execute_rows


def new_job_id(prefix: str, now_us: int) -> str:
    """`prefix-` then the time in µs (13 hex digits) and 24 random bits. Ids in time order make the unique
    index on job_id grow at its right edge: a random id dirtied one more index page per accepted request.
    The bits only tell apart ids of one microsecond, they guard nothing: the process's generator draws them,
    not the system's (`secrets`, a system call per id)."""
    return f"{prefix}-{now_us:013x}{random.getrandbits(24):06x}"


@dataclass(slots=True)  # not frozen: one per accepted request, and a frozen one costs ~3 µs more to build
class NewJob:
    job_id: str
    kind: str
    source: str
    body: bytes
    received_at: int
    dedup_key: str | None = None
    topic: str | None = None
    headers: str | None = None
    status: str = "queued"  # "done" records a delivery that needs no processing (a test notification, a ping)
    warnings: str | None = None


@dataclass(slots=True)  # not frozen: a frozen dataclass sets each field through object.__setattr__
class Job:
    id: int
    job_id: str
    kind: str
    source: str
    topic: str | None
    headers: dict[str, str]
    body: bytes
    received_at: int
    attempts: int


_COLUMNS = (
    "job_id, kind, source, dedup_key, topic, headers, body, received_at, status, attempts, run_at, warnings,"
    " finished_at"
)
_INSERT = f"INSERT INTO jobs ({_COLUMNS}) VALUES {{rows}} ON CONFLICT DO NOTHING"
_WIDTH = 13


def _values(job: NewJob) -> tuple[Any, ...]:
    return (
        job.job_id,
        job.kind,
        job.source,
        job.dedup_key,
        job.topic,
        job.headers,
        job.body,
        job.received_at,
        job.status,
        0,
        job.received_at,
        job.warnings,
        job.received_at if job.status == "done" else None,
    )


def insert(conn: sqlite3.Connection, job: NewJob) -> bool:
    """Insert one job inside the caller's transaction; False when its delivery key was already recorded."""
    return execute_rows(conn, _INSERT, _WIDTH, _values(job)) == 1


def insert_many(conn: sqlite3.Connection, jobs: Sequence[NewJob]) -> list[bool]:
    """`insert` for a batch, in as few statements as `execute_rows` writes them: the group-commit thread leaves and
    re-takes the GIL around every statement, and each re-take can wait behind the event loop."""
    inserted = execute_rows(conn, _INSERT, _WIDTH, [value for job in jobs for value in _values(job)])
    if inserted == len(jobs):
        return [True] * len(jobs)
    # Some were repeats of recorded deliveries (or of each other); job ids are fresh, so present = inserted now.
    return [conn.execute("SELECT 1 FROM jobs WHERE job_id = ?", (job.job_id,)).fetchone() is not None for job in jobs]


# The ids of up to :limit runnable jobs: queued, due retries, expired leases. Each branch reads its partial index
# oldest-first and stops at the limit: ordering the whole union by id made SQLite walk the table in rowid order,
# every finished job included, on every claim. The indexes are named: the listing indexes on (status, id) also
# match `status`, and without statistics SQLite would take one of them and sort the whole backlog.
_RUNNABLE = """
SELECT id FROM (
    SELECT id FROM jobs INDEXED BY jobs_ready
    WHERE status IN ('queued', 'failed') AND run_at <= :now ORDER BY run_at LIMIT :limit
)
UNION ALL
SELECT id FROM (
    SELECT id FROM jobs INDEXED BY jobs_leased
    WHERE status = 'processing' AND lease_expires < :now ORDER BY lease_expires LIMIT :limit
)
ORDER BY id LIMIT :limit
"""
_JOB_COLUMNS = "id, job_id, kind, source, topic, headers, body, received_at"  # then attempts: `Job`'s order
_CLAIM = f"""
UPDATE jobs SET status = 'processing', lease_owner = :owner, lease_expires = :expires, attempts = attempts + 1
WHERE id IN ({_RUNNABLE})
RETURNING {_JOB_COLUMNS}, attempts
"""
_TAKE = f"SELECT {_JOB_COLUMNS}, attempts + 1 FROM jobs WHERE id IN ({_RUNNABLE})"  # `_jobs` sorts them by id


_BY_ID = attrgetter("id")


def _jobs(rows: list[tuple[Any, ...]]) -> list[Job]:
    # Positional arguments and a key in C: keywords and a lambda cost more per job (docs/PERFORMANCE.md).
    jobs = [
        Job(
            row[0], row[1], row[2], row[3], row[4], json_columns.loads(row[5]) if row[5] else {}, row[6], row[7], row[8]
        )
        for row in rows
    ]
    jobs.sort(key=_BY_ID)
    return jobs


def claim(conn: sqlite3.Connection, owner: str, now: int, lease_us: int, limit: int) -> list[Job]:
    """Lease up to `limit` runnable jobs (queued, due retries, expired leases) in the caller's transaction; their
    `attempts` count this one."""
    return _jobs(
        conn.execute(_CLAIM, {"owner": owner, "expires": now + lease_us, "now": now, "limit": limit}).fetchall()
    )


def take(conn: sqlite3.Connection, now: int, limit: int) -> list[Job]:
    """Up to `limit` runnable jobs, for a writer that applies and finishes them in this same transaction: with the
    write lock held from the first statement to the commit, no other worker can see them until they are done, so
    no lease is written. Their `attempts` count this one; `complete_many` and `fail` store it."""
    return _jobs(conn.execute(_TAKE, {"now": now, "limit": limit}).fetchall())


def still_leased_ids(conn: sqlite3.Connection, jobs: Sequence[Job], owner: str) -> set[int]:
    """The ids of `jobs` whose lease is still `owner`'s (not expired and taken over), in one query."""
    rows = conn.execute(
        "SELECT id FROM jobs WHERE id IN (SELECT value FROM json_each(?)) AND status = 'processing'"
        " AND lease_owner = ?",
        (json_columns.dumps([job.id for job in jobs]), owner),
    ).fetchall()
    return {row[0] for row in rows}


def complete_many(conn: sqlite3.Connection, done: Sequence[tuple[Job, int, list[str]]], owner: str) -> None:
    """Mark every (job, now, warnings) of a chunk done in one statement, in the transaction that holds the jobs'
    effects. A done job's `lease_owner` is the worker that did it."""
    if not done:
        return
    conn.execute(
        "UPDATE jobs SET status = 'done', lease_owner = ?, lease_expires = NULL, error = NULL,"
        " warnings = done.value ->> 1, finished_at = done.value ->> 2, attempts = done.value ->> 3"
        " FROM json_each(?) AS done WHERE jobs.id = done.value ->> 0",
        (
            owner,
            json_columns.dumps(
                [
                    [job.id, json_columns.dumps(warnings) if warnings else None, now, job.attempts]
                    for job, now, warnings in done
                ]
            ),
        ),
    )


def fail(conn: sqlite3.Connection, job: Job, error: str, retry_at: int | None, now: int) -> None:
    """A failed attempt: `failed` until `retry_at`, or `dead` (kept with its error) when retry_at is None. The
    attempt joins the job's trace (`job_attempts`), in the same transaction."""
    if retry_at is None:
        conn.execute(
            "UPDATE jobs SET status = 'dead', lease_owner = NULL, lease_expires = NULL, error = ?, finished_at = ?,"
            " attempts = ? WHERE id = ?",
            (error, now, job.attempts, job.id),
        )
    else:
        conn.execute(
            "UPDATE jobs SET status = 'failed', lease_owner = NULL, lease_expires = NULL, error = ?, run_at = ?,"
            " attempts = ? WHERE id = ?",
            (error, retry_at, job.attempts, job.id),
        )
    conn.execute(
        "INSERT INTO job_attempts (job, attempt, at, error, next_attempt_at) VALUES (?, ?, ?, ?, ?)",
        (job.id, job.attempts, now, error, retry_at),
    )


_PRUNABLE = (
    "SELECT id FROM jobs INDEXED BY jobs_done WHERE status = 'done' AND finished_at < ? ORDER BY finished_at LIMIT ?"
)


def prune_done(conn: sqlite3.Connection, finished_before: int, limit: int) -> int:
    """Delete up to `limit` done jobs finished before `finished_before` (µs), oldest first, with their failed
    attempts; returns how many. Dead and failed jobs stay for replay; what the done ones did stays in the ledger,
    subscribers and events."""
    conn.execute(f"DELETE FROM job_attempts WHERE job IN ({_PRUNABLE})", (finished_before, limit))
    return conn.execute(f"DELETE FROM jobs WHERE id IN ({_PRUNABLE})", (finished_before, limit)).rowcount


def replay(conn: sqlite3.Connection, job_id: str | None, now: int) -> list[str]:
    """Re-queue one job (dead or failed) or, with job_id None, every dead job; returns the re-queued ids."""
    where = "job_id = ? AND status IN ('dead', 'failed')" if job_id else "status != 'done' AND status = 'dead'"
    rows = conn.execute(
        f"UPDATE jobs SET status = 'queued', attempts = 0, run_at = ?, error = NULL, finished_at = NULL"
        f" WHERE {where} RETURNING job_id",
        (now, job_id) if job_id else (now,),
    ).fetchall()
    return [row[0] for row in rows]
