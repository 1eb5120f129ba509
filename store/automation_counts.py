"""Active automations by flow, for the metrics gauge, without a trigger per automation started:
`automation_counts` counts the rows up to `automations_counted.up_to`, and a reader adds the active rows after
it, which the worker folds in after each chunk of jobs. The automations' triggers take the end (fired, stopped,
deleted) of a counted one off its count."""

import sqlite3


def active(conn: sqlite3.Connection) -> dict[str, int]:
    """Active automations by flow (for metrics): the kept count, and the active rows started since it was last
    folded (`fold`: a chunk's at most), so no scan."""
    rows = conn.execute(
        "SELECT c.flow, c.active + (SELECT count(*) FROM automations AS a WHERE a.id > u.up_to AND a.flow = c.flow"
        " AND a.status = 'active') FROM automation_counts AS c, automations_counted AS u"
    ).fetchall()
    return {flow: count for flow, count in rows if count > 0}


def fold(conn: sqlite3.Connection) -> None:
    """Fold the active automations started since the last fold into the kept counts (after a worker's chunk of
    jobs, in its transaction): a statement per chunk rather than a trigger per automation."""
    newest, up_to = conn.execute(_NEWEST).fetchone()
    if newest > up_to:
        conn.execute(_FOLD, (up_to,))
        conn.execute("UPDATE automations_counted SET up_to = ?", (newest,))


_NEWEST = "SELECT (SELECT coalesce(max(id), 0) FROM automations), up_to FROM automations_counted"
_FOLD = (
    "UPDATE automation_counts SET active = active + (SELECT count(*) FROM automations AS a WHERE a.id > ?"
    " AND a.flow = automation_counts.flow AND a.status = 'active')"
)


def after_delete(conn: sqlite3.Connection) -> None:
    """After automations were deleted: SQLite gives a new row the largest id left plus one, so the counted ones
    end there, and a new row is never taken for one counted already. (No row lies between the two marks, so
    lowering it counts nothing twice.)"""
    conn.execute("UPDATE automations_counted SET up_to = min(up_to, (SELECT coalesce(max(id), 0) FROM automations))")
