"""Reading the queue for people: one job with its trace, pages of jobs newest first, counts and ages by status.
Bodies are never returned (they may hold personal data); what a job produced is read from the events it recorded."""

import sqlite3
from collections.abc import Sequence
from typing import Any

from normalizer.order_event import order_keys
from store import json_columns

_COLUMNS = "id, job_id, status, kind, source, topic, attempts, error, warnings, received_at, finished_at, run_at, body"


def _orders_in_body(kind: str, source: str, body: bytes) -> list[dict[str, str]]:
    """A Push Order job names its order in its body (its event may be a repeat that recorded nothing)."""
    if kind != "order":
        return []
    try:
        order_id = json_columns.loads(body).get("orderId")
    except (ValueError, AttributeError):
        return []
    return [{"source": source, "orderId": order_id}] if isinstance(order_id, str) else []


# The events a job recorded carry its jobId. A Push Order job's are among its order's events, read from the dedup
# keys' index (which leaves out events with no key: the `!= ''` term, the index's own, lets the query read it); a
# delivery's from `events_job`, which indexes only events of configured sources (never `api`): the
# worker's Push Orders write no index entry for their trace (docs/PERFORMANCE.md).
_OF_ORDER = (
    "SELECT name, source, order_id FROM events WHERE dedup_key >= ? AND dedup_key < ? AND dedup_key != ''"
    " AND job_id = ? ORDER BY id"
)
_OF_DELIVERY = "SELECT name, source, order_id FROM events WHERE job_id = ? AND source != 'api' ORDER BY id"


def _produced(conn: sqlite3.Connection, job_id: str, kind: str, orders: list[dict[str, str]]) -> dict[str, Any]:
    if kind == "order":
        if not orders:  # no orderId: it recorded nothing
            return {"orders": orders, "events": []}
        rows = conn.execute(_OF_ORDER, (*order_keys(orders[0]["source"], orders[0]["orderId"]), job_id))
    else:
        rows = conn.execute(_OF_DELIVERY, (job_id,))
    names = []
    for name, source, order_id in rows:
        names.append(name)
        key = {"source": source, "orderId": order_id}
        if order_id is not None and key not in orders:
            orders.append(key)
    return {"orders": orders, "events": names}


def _view(conn: sqlite3.Connection, row: Sequence[Any]) -> dict[str, Any]:
    _, job_id, status, kind, source, topic, attempts, error, warnings, received, finished, run_at, body = row
    return {
        "jobId": job_id,
        "status": status,
        "kind": kind,
        "source": source,
        "topic": topic,
        "attempts": attempts,
        "error": error,
        "warnings": json_columns.loads(warnings) if warnings else [],
        "receivedAt": received,
        "finishedAt": finished if status in ("done", "dead") else None,
        "nextAttemptAt": run_at if status in ("queued", "failed") else None,
        "produced": _produced(conn, job_id, kind, _orders_in_body(kind, source, body)),
    }


def get(conn: sqlite3.Connection, job_id: str) -> dict[str, Any] | None:
    """One job and its trace, its failed attempts included; times are µs since the epoch (the API formats them)."""
    row = conn.execute(f"SELECT {_COLUMNS} FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    if row is None:
        return None
    return {**_view(conn, row), "failedAttempts": failed_attempts(conn, row[0])}


def failed_attempts(conn: sqlite3.Connection, job: int) -> list[dict[str, Any]]:
    """The job's failed attempts, oldest first (a replay numbers them from 1 again); a successful attempt has no
    row: the job's `finishedAt` records it."""
    return [
        {
            "attempt": attempt,
            "at": at,
            "error": error,
            "outcome": "dead" if retry_at is None else "failed",
            "nextAttemptAt": retry_at,
        }
        for attempt, at, error, retry_at in conn.execute(
            "SELECT attempt, at, error, next_attempt_at FROM job_attempts WHERE job = ? ORDER BY id", (job,)
        )
    ]


def page(
    conn: sqlite3.Connection, status: str | None, source: str | None, limit: int, before: int | None
) -> tuple[list[dict[str, Any]], int | None]:
    """Up to `limit` jobs newest first (by acceptance), optionally of one status and/or one source, with ids
    below `before`; returns them and the cursor of the next page (None at the end). Each filter reads one range
    in id order: unfinished jobs of a status from `jobs_unfinished` (a source filtered on the way), jobs of a
    source from `jobs_source` (done ones filtered on the way: nearly every job is done), done jobs from the
    table itself."""
    below = before if before is not None else 2**63 - 1
    table, where, params = "jobs", [], []
    if status is not None:
        # Done: a bound value, which no partial index matches, so the table (or `jobs_source`) is read in id order.
        unfinished = status != "done"
        table = "jobs INDEXED BY jobs_unfinished" if unfinished else table  # rarer than any source's jobs
        where.append(_UNFINISHED if unfinished else "status = ?")
        params.append(status)
    if source is not None:
        where.append("source = ?")
        params.append(source)
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM {table} WHERE {' AND '.join([*where, 'id < ?'])} ORDER BY id DESC LIMIT ?",
        (*params, below, limit + 1),
    ).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    return [_view(conn, row) for row in rows], rows[-1][0] if more and rows else None


# Unfinished jobs of one status: the condition repeats `jobs_unfinished`'s WHERE, so that index is read.
_UNFINISHED = "status != 'done' AND status = ?"


_COUNT = {
    # Each condition repeats `jobs_unfinished`'s WHERE so the count reads a range of that small index alone.
    status: f"status != 'done' AND status = '{status}'"
    for status in ("queued", "failed", "processing", "dead")
}


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Jobs waiting, running or stopped, by status (done jobs are not counted: there can be millions)."""
    return {
        status: conn.execute(f"SELECT count(*) FROM jobs WHERE {where}").fetchone()[0]
        for status, where in _COUNT.items()
    }


def oldest(conn: sqlite3.Connection) -> dict[str, int | None]:
    """Since when the oldest job of each unfinished status has waited (µs), None when there is none: for a
    queued job, since it became runnable (accepted or replayed); for the others, since it was accepted."""
    row = conn.execute(
        "SELECT run_at FROM jobs INDEXED BY jobs_ready WHERE status IN ('queued', 'failed') AND status = 'queued'"
        " ORDER BY run_at LIMIT 1"
    ).fetchone()
    found: dict[str, int | None] = {"queued": row[0] if row else None}
    for status in ("processing", "failed", "dead"):
        row = conn.execute(
            f"SELECT received_at FROM jobs WHERE {_UNFINISHED} ORDER BY status, id LIMIT 1", (status,)
        ).fetchone()
        found[status] = row[0] if row else None
    return found


def latest_done(conn: sqlite3.Connection) -> int | None:
    """When the last job finished (µs), from the done jobs' index."""
    row = conn.execute("SELECT max(finished_at) FROM jobs INDEXED BY jobs_done WHERE status = 'done'").fetchone()
    return row[0] if row else None
