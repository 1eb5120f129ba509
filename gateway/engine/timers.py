"""What fires durable timers (`store.timers`): a handler per timer kind, called by the worker in the
transaction that takes the timer, so the timer is fired exactly when the handler's effects commit.

A kind is registered once at start (`Timers.register`), e.g. lifecycle automations coming due. A handler may
set timers again, its own included (a batch that continues later). One that raises is rolled back alone, as a
job is: its timer is set again after the jobs' backoff with its attempts counted, and after the last attempt it
is dead with its error (docs/operations.md), so one broken timer never stalls the others nor retries forever.
"""

import logging
import sqlite3
import time
from collections.abc import Callable

from normalizer.problems import describe
from store import timers
from store.db import savepoint, store_trouble

log = logging.getLogger("gateway.timers")

# (conn, key, due_at µs, now µs), in the firing transaction.
TimerHandler = Callable[[sqlite3.Connection, str, int, int], None]
# (attempts failed so far, now µs) -> when to try again (µs), or None: that was the last attempt.
Backoff = Callable[[int, int], int | None]

BATCH = 500  # timers taken per statement
RETRY_US = 60 * 1_000_000  # a timer of a kind no one handles (yet) is kept and looked at again this late


class Timers:
    def __init__(self) -> None:
        self.handlers: dict[str, TimerHandler] = {}

    def register(self, kind: str, handler: TimerHandler) -> None:
        if kind in self.handlers:
            raise ValueError(f"timer kind {kind!r} is already registered")
        self.handlers[kind] = handler

    def fire_due(self, conn: sqlite3.Connection, now: int, deadline: float, backoff: Backoff) -> tuple[int, bool]:
        """Fire due timers in the caller's transaction, batch by batch, until none is due or `deadline`
        (time.monotonic) has passed; a failed one is set again at `backoff`'s time, or dead. Returns (timers
        fired or failed, whether more may be due)."""
        fired = 0
        while batch := timers.due(conn, now, BATCH):  # again after the last: a handler may set one due now
            for rowid, kind, key, due_at, attempts in batch:
                if time.monotonic() >= deadline and fired:
                    return fired, True
                if timers.take(conn, rowid, now):
                    self._fire(conn, kind, key, due_at, attempts, now, backoff)
                    fired += 1
        return fired, False

    def _fire(
        self, conn: sqlite3.Connection, kind: str, key: str, due_at: int, attempts: int, now: int, backoff: Backoff
    ) -> None:
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
            _failed(conn, kind, key, due_at, attempts + 1, exc, now, backoff)

    @staticmethod
    def seconds_until_due(conn: sqlite3.Connection, now: int) -> float | None:
        """How long until the earliest timer is due (0 when one already is), or None when none is set."""
        due_at = timers.next_due(conn)
        return None if due_at is None else max(0.0, (due_at - now) / 1e6)


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
