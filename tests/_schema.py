"""A database as an earlier release left it: the schema up to just before one migration step. And a new
database at the newest schema, copied from one migrated once per test process (property tests make hundreds)."""

import functools
import sqlite3
import tempfile
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


@functools.cache
def _migrated_file() -> bytes:
    """The file `migrate` makes of a new database, closed (its WAL copied in): the bytes of a fresh start."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "gateway.db"
        conn = connect(path)
        schema.migrate(conn)
        conn.close()
        return path.read_bytes()


@functools.cache
def _migrated_in_memory() -> sqlite3.Connection:
    conn = connect(":memory:")
    schema.migrate(conn)
    return conn


def migrated_database(path: str | Path) -> sqlite3.Connection:
    """`connect` to a new database at `path` (a file, or ":memory:") at the newest schema: the database that
    `connect` then `migrate` makes, copied rather than built again."""
    if str(path) == ":memory:":
        conn = connect(path)
        _migrated_in_memory().backup(conn)
        return conn
    Path(path).write_bytes(_migrated_file())
    return connect(path)
