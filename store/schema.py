"""Schema and migrations, numbered by PRAGMA user_version; sqlite-utils builds the tables. The steps are in
`store.schema_orders` (the order pipeline's tables) and `store.schema_flows` (lifecycle, segments, outbound);
`MIGRATIONS` is their one order, and a new step is appended at its end."""

import sqlite3
from collections.abc import Callable

import sqlite_utils

from store import schema_flows, schema_orders

MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    schema_orders.v1,
    schema_orders.v2,
    schema_orders.v3,
    schema_orders.v4,
    schema_orders.v5,
    schema_flows.v6,
    schema_flows.v7,
    schema_orders.v8,
    schema_flows.outbound,
    schema_flows.segment_state,
    schema_flows.timer_failures,
    schema_orders.job_attempts,
    schema_orders.job_lists_off_the_hot_path,
    schema_flows.lifecycle_counts,
    schema_flows.segment_due_dropped,
    schema_flows.open_waits,
    schema_orders.events_job_of_deliveries,
    schema_flows.automations_fire_at,
    schema_flows.open_waits_counted_on_start,
    schema_flows.deliveries_narrowed,
    schema_flows.deliveries_by_destination,
    schema_orders.events_dedup_of_keyed_events,
]


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to the newest schema; safe to run from several processes at once."""
    db = sqlite_utils.Database(conn)
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
            step(db)
            conn.execute(f"PRAGMA user_version={number}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return len(MIGRATIONS)
