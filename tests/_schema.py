"""A database as an earlier release left it: the schema up to just before one migration step."""

import sqlite3
from collections.abc import Callable
from pathlib import Path

import sqlite_utils

from store import schema
from store.db import connect


def database_before(path: Path, step: Callable[[sqlite_utils.Database], None]) -> sqlite3.Connection:
    """A connection to a new database at `path` with every migration before `step` applied and recorded, so that
    the next start migrates it from there."""
    conn = connect(path)
    version = schema.MIGRATIONS.index(step)
    db = sqlite_utils.Database(conn)
    for earlier in schema.MIGRATIONS[:version]:
        earlier(db)
    conn.execute(f"PRAGMA user_version={version}")
    return conn
