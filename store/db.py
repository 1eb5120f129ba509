"""Connections: WAL, the durability setting, explicit transactions."""

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

Durability = Literal["normal", "full"]
log = logging.getLogger("store.db")
# Reads of the database file are memory-mapped up to this size (SQLite caps it at its build's maximum: 2 GiB
# minus 64 KiB for Debian's). Past the mapping every page goes through SQLite's own cache and a read() each,
# which slows a worker over a large database (docs/PERFORMANCE.md).
_MMAP_BYTES = 2 * 1024 * 1024 * 1024
_WAL_LIMIT_BYTES = 64 * 1024 * 1024  # what a started-over WAL file is cut back to
_REWIND_FRAMES = 16_384  # a WAL this long (64 MiB of 4 KiB pages) should start over: see `Checkpointer`
_CATCH_UP_PASSES = 5
_QUICK_PASS_SECONDS = 0.01


DEFAULT_BUSY_TIMEOUT_SECONDS = 2.0  # the platforms give up on a webhook after ~5 s: answer 503 well before


class Connection(sqlite3.Connection):
    """A connection that carries what is compiled once per connection: the outbox's routes (`store.outbox`)."""

    routes: Any = None


class StoreUnavailable(Exception):
    """The database cannot take writes right now (locked past the timeout, disk full, read-only)."""


class DatabaseFileLost(StoreUnavailable):
    """The database file was deleted or replaced while open (`store.file_watch`): no write until a restart."""


# SQLite result codes (the low byte of an extended code) that say the database is in trouble, whatever the
# statement: another writer holds the lock (BUSY, LOCKED), the disk is full (FULL) or failing (IOERR), the file
# went read-only or away (READONLY, CANTOPEN, PROTOCOL). Any other code is about the statement and its data.
_STORE_TROUBLE_CODES = frozenset({5, 6, 8, 10, 13, 14, 15})
# For an error raised by hand, without a code: SQLite's own messages for those.
_STORE_TROUBLE_MESSAGES = (
    "database is locked",
    "database table is locked",
    "database or disk is full",
    "disk i/o error",
)


def store_trouble(exc: BaseException, conn: sqlite3.Connection) -> bool:
    """True when `exc`, raised inside a transaction on `conn`, is the database's trouble rather than the work's:
    retrying the same work later may succeed, so it must not count against the work. That is the lock, a full or
    failing disk, and any error after which SQLite rolled the whole transaction back on its own."""
    if isinstance(exc, StoreUnavailable):
        return True
    if not isinstance(exc, sqlite3.Error):
        return False
    if not conn.in_transaction:
        return True
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _STORE_TROUBLE_CODES
    text = str(exc).lower()
    return any(message in text for message in _STORE_TROUBLE_MESSAGES)


def connect(
    path: str | Path,
    durability: Durability = "full",
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT_SECONDS,
    autocheckpoint: bool = True,
) -> sqlite3.Connection:
    """`busy_timeout`: seconds a statement waits for a lock another connection holds, then fails "database is
    locked". `autocheckpoint=False` for hot writers: SQLite would otherwise run the checkpoint (two fsyncs)
    inside whichever COMMIT crosses 1000 WAL pages, with the write lock held; a `Checkpointer` does it aside."""
    busy_timeout_ms = round(busy_timeout * 1000)
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a transaction is exactly what the code says.
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000, factory=Connection
    )
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={'FULL' if durability == 'full' else 'NORMAL'}")
    conn.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    conn.execute("PRAGMA cache_size=-32000")
    conn.execute("PRAGMA temp_store=MEMORY")
    # Reads of pages the OS already caches come straight from memory, without a copy per page.
    conn.execute(f"PRAGMA mmap_size={_MMAP_BYTES}")
    conn.execute(f"PRAGMA journal_size_limit={_WAL_LIMIT_BYTES}")
    if not autocheckpoint:
        conn.execute("PRAGMA wal_autocheckpoint=0")
    return conn


class Checkpointer:
    """Copies the WAL into the database every `interval` seconds from a thread of its own: the checkpoint's
    fsyncs then hold up neither a request's commit nor the worker (their connections have autocheckpoint off).
    PASSIVE: it never waits for, or blocks, readers and writers.

    SQLite starts the WAL over only once all of it is copied, and under a steady stream of writes new frames
    always arrive before a pass ends: draining a backlog grew the file without bound (docs/PERFORMANCE.md). So
    after a pass that leaves a long WAL, `rewind_due` is set; the writer then copies the few frames it wrote
    since (`rewind_if_due`), between two of its transactions, and its next write starts the WAL from the
    beginning."""

    def __init__(self, path: str | Path, interval: float = 0.5) -> None:
        self._path = path
        self._interval = interval
        self.rewind_due = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="checkpointer", daemon=True)
        self._passes = 0
        self._passed = threading.Condition()

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
                    if self._copy(conn) > _REWIND_FRAMES:
                        # Passes back to back, each copying what arrived during the one before, until one is
                        # quick: the writer is then left only a few frames to copy.
                        for _ in range(_CATCH_UP_PASSES):
                            started = time.monotonic()
                            self._copy(conn)
                            if time.monotonic() - started < _QUICK_PASS_SECONDS:
                                break
                        self.rewind_due = True
                except sqlite3.Error as exc:
                    log.warning("checkpoint failed", extra={"error": str(exc)})
                with self._passed:
                    self._passes += 1
                    self._passed.notify_all()
        finally:
            conn.close()

    def wait_for_pass(self, timeout: float) -> bool:
        """Wait until a pass that began after this call has ended, so it saw every commit made before the call
        (a pass already under way may not have); False if none did within `timeout` seconds."""
        with self._passed:
            seen = self._passes + 2
            return self._passed.wait_for(lambda: self._passes >= seen, timeout)

    def rewind_if_due(self, conn: sqlite3.Connection) -> bool:
        """Called by the writer, between two of its transactions on `conn`: copy what is left of a long WAL, so
        that the next write starts it over. True when it did."""
        if not self.rewind_due:
            return False
        self.rewind_due = False
        self._copy(conn)
        return True

    @staticmethod
    def _copy(conn: sqlite3.Connection) -> int:
        """One PASSIVE pass; returns how many frames the WAL holds."""
        _busy, frames, _copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(frames)


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
        if conn.in_transaction:  # SQLite rolls back by itself after some errors (a full disk, an I/O error)
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
        if conn.in_transaction:  # else SQLite rolled the whole transaction back, savepoint and all
            conn.execute(f"ROLLBACK TO {name}")
            conn.execute(f"RELEASE {name}")
        raise
    conn.execute(f"RELEASE {name}")


# Rows one statement writes in `execute_rows`. A statement run once per row (`executemany`) opens and closes a
# cursor on the table and each of its indexes every time, and releases and takes the GIL.
ROWS_PER_STATEMENT = 32


def execute_rows(
    conn: sqlite3.Connection, template: str, width: int, values: Sequence[Any], row: str | None = None
) -> int:
    """`template` run over `values` (flat, `width` to a row), up to ROWS_PER_STATEMENT rows a statement: its
    `{rows}` stands for the statement's list of rows, `(?, ?), (?, ?)`, or of `row` (a row's text with a `?` for
    each of its `width` values, and constants). Returns the rows changed."""
    changed = 0
    step = width * ROWS_PER_STATEMENT
    for start in range(0, len(values), step):
        part = values[start : start + step]
        changed += conn.execute(_with_rows(template, width, len(part) // width, row), part).rowcount
    return changed


@lru_cache(maxsize=8 * ROWS_PER_STATEMENT)
def _with_rows(template: str, width: int, count: int, row: str | None) -> str:
    if row is None:
        row = "(" + ", ".join(["?"] * width) + ")"
    return template.replace("{rows}", ",".join([row] * count))
