"""A database made by an earlier release is brought to the newest schema at start, keeping its rows."""

from pathlib import Path

import sqlite_utils

from store import schema
from store.db import connect


def test_a_version_1_database_is_migrated_in_place(tmp_path: Path) -> None:
    conn = connect(tmp_path / "old.db")
    schema._v1(sqlite_utils.Database(conn))
    conn.execute("PRAGMA user_version=1")
    conn.execute(
        "INSERT INTO jobs (job_id, kind, source, body, received_at, status, attempts, run_at, finished_at)"
        " VALUES ('commerce-order-old', 'order', 'api', x'7b7d', 1, 'done', 1, 1, 2)"
    )
    assert schema.migrate(conn) == len(schema.MIGRATIONS) == 2
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    plan = conn.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM jobs WHERE status = 'done' AND finished_at < 5 ORDER BY finished_at"
    ).fetchall()
    assert any("jobs_done" in row[-1] for row in plan)
    assert conn.execute("SELECT job_id FROM jobs").fetchall() == [("commerce-order-old",)]
    assert schema.migrate(conn) == 2  # a second start changes nothing
    conn.close()
