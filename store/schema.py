"""Schema and migrations, numbered by PRAGMA user_version; sqlite-utils builds the tables. The steps are in
`store.schema_orders` (the order pipeline's tables) and `store.schema_flows` (lifecycle, segments, outbound);
`MIGRATIONS` is their one order, and a new step is appended at its end."""

import sqlite3
from collections.abc import Callable, Iterator

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
    schema_orders.events_ids_never_reused,
]


class _Database(sqlite_utils.Database):
    """sqlite-utils' Database, with a script split into statements in one pass. Inside a transaction its own
    `executescript` re-joins the statement read so far at every character (quadratic in a statement's length):
    that was most of the time a new database took to migrate, paid at every start on a fresh file."""

    def executescript(self, sql: str) -> sqlite3.Cursor:
        cursor = self.conn.cursor()
        for statement in _statements(sql):
            cursor.execute(statement)
        return cursor


def _statements(script: str) -> Iterator[str]:
    """The statements of `script`, each ended at the semicolon that completes it (not one inside a string, a
    comment or a trigger's body: `sqlite3.complete_statement` decides)."""
    start = 0
    for end, char in enumerate(script):
        if char == ";" and sqlite3.complete_statement(script[start : end + 1]):
            yield script[start : end + 1].strip()
            start = end + 1
    rest = script[start:].strip()
    if rest:
        yield rest


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to the newest schema; safe to run from several processes at once."""
    db = _Database(conn)
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
