"""Connections: WAL, the durability setting, explicit transactions."""

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, TypeVar

Durability = Literal["normal", "full"]
log = logging.getLogger("store.db")
_MMAP_BYTES = 256 * 1024 * 1024


_T = TypeVar("_T")


def _as_is(value: _T) -> _T:
    return value


# Python's sqlite3 binds int, float and str directly, but sends None and bytes through its adapter registry,
# where a miss costs two failed attribute lookups per parameter (~2,000 instructions). Registered, they cost one
# dictionary hit. The values bound are the same.
sqlite3.register_adapter(type(None), _as_is)
sqlite3.register_adapter(bytes, _as_is)


class StoreUnavailable(Exception):
    """The database cannot take writes right now (locked past the timeout, disk full, read-only)."""


def connect(
    path: str | Path, durability: Durability = "normal", busy_timeout_ms: int = 10_000, autocheckpoint: bool = True
) -> sqlite3.Connection:
    """`autocheckpoint=False` for hot writers: SQLite would otherwise run the checkpoint (two fsyncs) inside
    whichever COMMIT crosses 1000 WAL pages, with the write lock held; a `Checkpointer` does it aside."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a transaction is exactly what the code says.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={'FULL' if durability == 'full' else 'NORMAL'}")
    conn.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    conn.execute("PRAGMA cache_size=-32000")
    conn.execute("PRAGMA temp_store=MEMORY")
    # Reads of pages the OS already caches come straight from memory, without a copy per page.
    conn.execute(f"PRAGMA mmap_size={_MMAP_BYTES}")
    if not autocheckpoint:
        conn.execute("PRAGMA wal_autocheckpoint=0")
    return conn


class Checkpointer:
    """Copies the WAL into the database every `interval` seconds from a thread of its own: the checkpoint's
    fsyncs then hold up neither a request's commit nor the worker (their connections have autocheckpoint off).
    PASSIVE: it never waits for, or blocks, readers and writers."""

    def __init__(self, path: str | Path, interval: float = 0.5) -> None:
        self._path = path
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="checkpointer", daemon=True)

    def __enter__(self) -> "Checkpointer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        conn = connect(self._path)
        try:
            while not self._stop.wait(self._interval):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:
                    log.warning("checkpoint failed", extra={"error": str(exc)})
        finally:
            conn.close()


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT; rolls back on any exception. Lock and I/O failures become StoreUnavailable."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        raise StoreUnavailable(str(exc)) from exc
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    try:
        conn.execute("COMMIT")
    except sqlite3.OperationalError as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise StoreUnavailable(str(exc)) from exc


@contextmanager
def savepoint(conn: sqlite3.Connection, name: str = "job") -> Iterator[None]:
    conn.execute(f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        conn.execute(f"ROLLBACK TO {name}")
        conn.execute(f"RELEASE {name}")
        raise
    conn.execute(f"RELEASE {name}")
