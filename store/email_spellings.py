"""One address, one subscriber. Emails are stored in their normalised form (`normalizer.emails`: NFC, lower-cased,
the domain as IDNA's Unicode form); before that rule, one address written two ways (`a@b.cóm` with a composed or a
decomposed accent) was two subscribers with its totals split between them. `merge_spellings` (the schema
migration to that rule) makes them one again, and lists the merged addresses in `totals_to_recompute`: their
totals are recomputed from the ledger at the next start, where the base currency and rates are known."""

import sqlite3
from collections import defaultdict
from typing import Any

from normalizer.emails import stored_form
from store import json_columns

_COLUMNS = "id, email, external_id, first_name, last_name, attributes, baseline, created_at, updated_at"


def merge_spellings(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE totals_to_recompute (email TEXT PRIMARY KEY)")
    groups: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for row in conn.execute(f"SELECT {_COLUMNS} FROM subscribers ORDER BY updated_at, id"):
        groups[stored_form(row[1])].append(row)
    for form, members in groups.items():
        if len(members) > 1:
            _merge(conn, form, members)
            conn.execute("INSERT INTO totals_to_recompute (email) VALUES (?)", (form,))
        elif members[0][1] != form:
            conn.execute("UPDATE subscribers SET email = ? WHERE id = ?", (form, members[0][0]))
    for (email,) in conn.execute("SELECT DISTINCT email FROM orders WHERE email IS NOT NULL").fetchall():
        if (form := stored_form(email)) != email:
            conn.execute("UPDATE orders SET email = ? WHERE email = ?", (form, email))


def _merge(conn: sqlite3.Connection, form: str, members: list[tuple[Any, ...]]) -> None:
    """`members`, oldest update first, become the one created first: what refers to the others (events,
    automations, any table with a subscriber_id) moves to it; of its attributes, names, externalId and
    baseline, the most recently updated value wins."""
    kept = min(members, key=lambda row: (row[7], row[0]))
    others = json_columns.dumps([row[0] for row in members if row is not kept])
    attributes: dict[str, Any] = {}
    for row in members:
        attributes.update(json_columns.loads(row[5]) if row[5] else {})

    def latest(column: int) -> Any:
        return next((row[column] for row in reversed(members) if row[column]), None)

    for table in _referring_tables(conn):
        # OR IGNORE, then delete: a row that would repeat one the kept subscriber has (a membership) goes.
        conn.execute(
            f"UPDATE OR IGNORE {table} SET subscriber_id = ? WHERE subscriber_id IN (SELECT value FROM json_each(?))",
            (kept[0], others),
        )
        conn.execute(f"DELETE FROM {table} WHERE subscriber_id IN (SELECT value FROM json_each(?))", (others,))
    conn.execute("DELETE FROM subscribers WHERE id IN (SELECT value FROM json_each(?))", (others,))
    conn.execute(
        "UPDATE subscribers SET email = ?, external_id = ?, first_name = ?, last_name = ?, attributes = ?,"
        " baseline = ?, created_at = ?, updated_at = ? WHERE id = ?",
        (
            form,
            latest(2),
            latest(3),
            latest(4),
            json_columns.dumps(attributes),
            latest(6),
            min(row[7] for row in members),
            max(row[8] for row in members),
            kept[0],
        ),
    )


def _referring_tables(conn: sqlite3.Connection) -> list[str]:
    tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return [
        table
        for table in tables
        if table != "subscribers"
        and any(column[1] == "subscriber_id" for column in conn.execute(f"PRAGMA table_info({table})"))
    ]


def to_recompute(conn: sqlite3.Connection) -> list[str]:
    return [row[0] for row in conn.execute("SELECT email FROM totals_to_recompute ORDER BY email")]


def recomputed(conn: sqlite3.Connection, emails: list[str]) -> None:
    conn.execute(
        "DELETE FROM totals_to_recompute WHERE email IN (SELECT value FROM json_each(?))", (json_columns.dumps(emails),)
    )
