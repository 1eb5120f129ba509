"""What fires durable timers (`store.timers`): a handler per timer kind, called by the worker in the
transaction that takes the timer, so the timer is fired exactly when the handler's effects commit.

A kind is registered once at start (`Timers.register`), e.g. a restock's batches. A kind may also keep its due
times in rows of its own (`Timers.register_rows`: lifecycle automations, whose rows are their timers), fired the
same way. A handler may set timers again, its own included (a batch that continues later). One that raises is
rolled back alone, as a job is: its timer is set again after the jobs' backoff with its attempts counted, and
after the last attempt it is dead with its error (docs/operations.md), so one broken timer never stalls the
others nor retries forever.
"""

import logging
import sqlite3
import time
from collections.abc import Callable
from typing import Protocol

from normalizer.problems import describe
from store import timers
from store.db import savepoint, store_trouble

log = logging.getLogger("gateway.timers")

# (conn, key, due_at µs, now µs), in the firing transaction.
TimerHandler = Callable[[sqlite3.Connection, str, int, int], None]
# (attempts failed so far, now µs) -> when to try again (µs), or None: that was the last attempt.
Backoff = Callable[[int, int], int | None]


class DueRows(Protocol):
    """Timers kept in another table's rows, keyed by text, with an index on their due time. The kind's handler
    clears a row's due time when it fires it (in the same statement as its other changes to the row)."""

    def next_due(self, conn: sqlite3.Connection) -> int | None: ...

    def due(self, conn: sqlite3.Connection, now: int, limit: int) -> list[tuple[str, int]]:
        """Up to `limit` (key, due_at) due at `now`, earliest first."""
        ...

    def take(self, conn: sqlite3.Connection, key: str, now: int) -> bool:
        """Clear the row's due time (its firing failed, and it is set again in `store.timers`); False when it is
        no longer due."""
        ...


BATCH = 500  # timers taken per statement
RETRY_US = 60 * 1_000_000  # a timer of a kind no one handles (yet) is kept and looked at again this late


class Timers:
    def __init__(self) -> None:
        self.handlers: dict[str, TimerHandler] = {}
        self.rows: dict[str, DueRows] = {}

    def register(self, kind: str, handler: TimerHandler) -> None:
        if kind in self.handlers:
            raise ValueError(f"timer kind {kind!r} is already registered")
        self.handlers[kind] = handler

    def register_rows(self, kind: str, rows: DueRows) -> None:
        """`kind`'s due times are also kept in `rows`, fired by its handler; one that fails is set again in
        `store.timers` with its attempts counted, as any timer."""
        self.rows[kind] = rows

    def fire_due(self, conn: sqlite3.Connection, now: int, deadline: float, backoff: Backoff) -> tuple[int, bool]:
        """Fire due timers in the caller's transaction, batch by batch, until none is due or `deadline`
        (time.monotonic) has passed; a failed one is set again at `backoff`'s time, or dead. Returns (timers
        fired or failed, whether more may be due)."""
        fired, found = 0, True
        handled: set[tuple[str, str]] = set()  # the rows' timers fired by this call
        while found:  # again after the last: a handler may set one due now
            found = False
            for rowid, kind, key, due_at, attempts in timers.due(conn, now, BATCH):
                if time.monotonic() >= deadline and fired:
                    return fired, True
                found = True
                if timers.take(conn, rowid, now):
                    self._fire(conn, kind, key, due_at, attempts, now, backoff)
                    fired += 1
            for kind, rows in self.rows.items():
                for key, due_at in rows.due(conn, now, BATCH):
                    if time.monotonic() >= deadline and fired:
                        return fired, True
                    found = True
                    if (kind, key) in handled:  # its handler left it due: taken, never fired twice in a row
                        rows.take(conn, key, now)
                        continue
                    handled.add((kind, key))
                    self._fire(conn, kind, key, due_at, 0, now, backoff, rows)
                    fired += 1
        return fired, False

    def _fire(
        self,
        conn: sqlite3.Connection,
        kind: str,
        key: str,
        due_at: int,
        attempts: int,
        now: int,
        backoff: Backoff,
        rows: DueRows | None = None,
    ) -> None:
        """Fire one timer, taken from `store.timers` or still due in `rows`, whose handler clears it."""
        handler = self.handlers.get(kind)
        if handler is None:
            log.warning("timer of an unknown kind: kept for later", extra={"kind": kind})
            timers.schedule(conn, kind, key, now + RETRY_US)
            return
        try:
            with savepoint(conn, "timer"):
                handler(conn, key, due_at, now)
        except Exception as exc:
            if store_trouble(exc, conn):
                raise  # the database, not the timer: the whole batch is taken again later, no attempt counted
            if rows is not None:
                rows.take(conn, key, now)  # out of its rows: retried from store.timers
            _failed(conn, kind, key, due_at, attempts + 1, exc, now, backoff)

    def next_due(self, conn: sqlite3.Connection) -> int | None:
        """The earliest due time set (µs), in `store.timers` or the rows of a kind, or None when none is."""
        times = [timers.next_due(conn), *(rows.next_due(conn) for rows in self.rows.values())]
        return min((due_at for due_at in times if due_at is not None), default=None)


def _failed(
    conn: sqlite3.Connection,
    kind: str,
    key: str,
    due_at: int,
    attempts: int,
    exc: Exception,
    now: int,
    backoff: Backoff,
) -> None:
    """The handler raised (its savepoint rolled back): set the timer again after the backoff, or bury it. The
    error names the exception's type (SQLite's message too: it names limits, not data), never payload values."""
    error = f"{type(exc).__name__}: {exc}" if isinstance(exc, sqlite3.Error) else describe(exc)
    retry_at = backoff(attempts, now)
    if retry_at is None:
        timers.bury(conn, kind, key, due_at, attempts, error, now)
    else:
        timers.retry(conn, kind, key, retry_at, attempts, error)
    log.warning(
        "timer dead" if retry_at is None else "timer failed, will retry",
        exc_info=exc,
        extra={"kind": kind, "key": key, "attempts": attempts, "error": error},
    )
