"""A database made by an earlier release is brought to the newest schema at start, keeping its rows."""

from pathlib import Path

import sqlite_utils

from store import events, job_reads, ledger, schema, schema_orders, segments
from store.db import connect
from tests._schema import database_before


def test_a_version_1_database_is_migrated_in_place(tmp_path: Path) -> None:
    conn = connect(tmp_path / "old.db")
    schema_orders.v1(sqlite_utils.Database(conn))
    conn.execute("PRAGMA user_version=1")
    conn.execute(
        "INSERT INTO jobs (job_id, kind, source, body, received_at, status, attempts, run_at, finished_at)"
        " VALUES ('commerce-order-old', 'order', 'api', x'7b7d', 1, 'done', 1, 1, 2)"
    )
    conn.execute(
        "INSERT INTO orders (source, order_id, provider, email, total_cents, currency, ordered_at, statuses,"
        " cancelled, fulfilled, refunded_cents, version, created_at, updated_at)"
        " VALUES ('api', 'o-1', 'api', 'old@example.com', 8850, 'USD', '2026-01-01T00:00:00.000Z', '[\"placed\"]',"
        " 0, 0, 1000, 1, 1, 1)"
    )
    newest = len(schema.MIGRATIONS)
    assert schema.migrate(conn) == newest
    assert conn.execute("PRAGMA user_version").fetchone()[0] == newest
    plan = conn.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM jobs INDEXED BY jobs_done WHERE status = 'done' AND finished_at < 5"
        " ORDER BY finished_at"
    ).fetchall()
    assert any("jobs_done" in row[-1] for row in plan)
    assert conn.execute("SELECT job_id FROM jobs").fetchall() == [("commerce-order-old",)]
    # v3: a customer's revenue is read from an index alone, and the old rows are in it.
    plan = conn.execute("EXPLAIN QUERY PLAN " + ledger.SPEND_SQL, ("old@example.com", "USD")).fetchall()
    assert any("COVERING INDEX orders_spend" in row[-1] for row in plan)
    assert ledger.spend(conn, "old@example.com", "USD") == ledger.Spend(1, 7850, [])
    # The job lists read an index range in id order, and the old job is in it.
    plan = conn.execute("EXPLAIN QUERY PLAN SELECT id FROM jobs WHERE source = 'api' ORDER BY id DESC").fetchall()
    assert any("jobs_source" in row[-1] for row in plan)
    plan = conn.execute(f"EXPLAIN QUERY PLAN SELECT id FROM jobs WHERE {job_reads._UNFINISHED}", ("dead",)).fetchall()
    assert any("jobs_unfinished" in row[-1] for row in plan)
    assert job_reads.page(conn, "done", "api", 10, None)[0][0]["jobId"] == "commerce-order-old"
    # A job's trace: a Push Order's events from its order's dedup keys, a delivery's from `events_job`, which
    # leaves the Push Orders' events out.
    plan = conn.execute("EXPLAIN QUERY PLAN " + job_reads._OF_ORDER, ("a", "b", "j")).fetchall()
    assert any("events_dedup" in row[-1] for row in plan)
    plan = conn.execute("EXPLAIN QUERY PLAN " + job_reads._OF_DELIVERY, ("j",)).fetchall()
    assert any("events_job" in row[-1] for row in plan)
    # Events are deduplicated on their keys; those with none (segment events) are all stored, indexed by nothing.
    conn.execute("INSERT INTO subscribers (id, email, created_at, updated_at) VALUES (1, 'old@example.com', 1, 1)")
    for key in ("k", "k", events.NO_KEY, events.NO_KEY):
        events.record(conn, 1, "segment.entered" if key == events.NO_KEY else "custom", {}, 1, key)
    assert conn.execute("SELECT dedup_key FROM events ORDER BY id").fetchall() == [("k",), ("",), ("",)]
    assert conn.execute("SELECT count(*) FROM events INDEXED BY events_dedup WHERE dedup_key != ''").fetchone() == (1,)
    assert schema.migrate(conn) == newest  # a second start changes nothing
    conn.close()


def test_events_are_renumbered_never_with_their_rows_and_indexes_kept(tmp_path: Path) -> None:
    """The step that makes event ids never reused copies the table: every row keeps its id and columns, every
    index (the segments' `events_counted` too) is there again, and an id deleted after it is not given again."""
    conn = database_before(tmp_path / "old.db", schema_orders.events_ids_never_reused)
    conn.execute("INSERT INTO subscribers (id, email, created_at, updated_at) VALUES (1, 'old@example.com', 1, 1)")
    for number in range(1, 4):
        events.record(conn, 1, "custom", {"n": number}, number, f"k{number}", "my-shop", f"o{number}", f"j{number}")
    segments.index_counted_events(conn, True)
    before = conn.execute("SELECT * FROM events ORDER BY id").fetchall()
    indexes = set(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'"))
    schema.migrate(conn)
    assert conn.execute("SELECT * FROM events ORDER BY id").fetchall() == before
    assert set(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'")) == (
        indexes
    )
    assert {name for name, _ in indexes} == {"events_subscriber", "events_job", "events_dedup", "events_counted"}
    conn.execute("DELETE FROM events WHERE id = 3")
    assert events.record(conn, 1, "custom", {}, 4, "k4") == 4
    conn.close()
