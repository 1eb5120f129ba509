"""What fires durable timers (`store.timers`): a handler per timer kind, called by the worker in the
transaction that takes the timer, so the timer is fired exactly when the handler's effects commit.

A kind is registered once at start (`Timers.register`), e.g. lifecycle automations coming due. A handler may
set timers again, its own included (a batch that continues later). One that raises is rolled back alone and
its timer set again a little later, so one broken timer never stalls the others.
"""

import logging
import sqlite3
import time
from collections.abc import Callable

from store import timers
from store.db import savepoint

log = logging.getLogger("gateway.timers")

# (conn, key, due_at µs, now µs), in the firing transaction.
TimerHandler = Callable[[sqlite3.Connection, str, int, int], None]

BATCH = 500  # timers taken per statement
RETRY_US = 60 * 1_000_000  # a timer whose handler failed, or of a kind no one handles, is tried again this late


class Timers:
    def __init__(self) -> None:
        self.handlers: dict[str, TimerHandler] = {}

    def register(self, kind: str, handler: TimerHandler) -> None:
        if kind in self.handlers:
            raise ValueError(f"timer kind {kind!r} is already registered")
        self.handlers[kind] = handler

    def fire_due(self, conn: sqlite3.Connection, now: int, deadline: float) -> tuple[int, bool]:
        """Fire due timers in the caller's transaction, batch by batch, until none is due or `deadline`
        (time.monotonic) has passed. Returns (timers fired, whether more may be due)."""
        fired = 0
        while batch := timers.due(conn, now, BATCH):  # again after the last: a handler may set one due now
            for rowid, kind, key, due_at in batch:
                if time.monotonic() >= deadline and fired:
                    return fired, True
                if timers.take(conn, rowid, now):
                    self._fire(conn, kind, key, due_at, now)
                    fired += 1
        return fired, False

    def _fire(self, conn: sqlite3.Connection, kind: str, key: str, due_at: int, now: int) -> None:
        handler = self.handlers.get(kind)
        if handler is None:
            log.warning("timer of an unknown kind: kept for later", extra={"kind": kind})
            timers.schedule(conn, kind, key, now + RETRY_US)
            return
        try:
            with savepoint(conn, "timer"):
                handler(conn, key, due_at, now)
        except sqlite3.Error:
            raise  # the transaction itself is in trouble: the whole batch is taken again later
        except Exception:
            log.exception("timer handler failed: tried again later", extra={"kind": kind})
            timers.schedule(conn, kind, key, now + RETRY_US)

    @staticmethod
    def seconds_until_due(conn: sqlite3.Connection, now: int) -> float | None:
        """How long until the earliest timer is due (0 when one already is), or None when none is set."""
        due_at = timers.next_due(conn)
        return None if due_at is None else max(0.0, (due_at - now) / 1e6)
