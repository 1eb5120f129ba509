"""Totals of subscribers a schema migration merged (`store.email_spellings`), recomputed from the ledger once the
engine, with the base currency and rates of the config, is there to do it: at every start, after `migrate`."""

import sqlite3

from gateway.engine.orders import Engine
from store import email_spellings
from store.db import transaction


def settle(conn: sqlite3.Connection, engine: Engine, now: int) -> int:
    """Recompute what is waiting; returns how many subscribers were recomputed."""
    emails = email_spellings.to_recompute(conn)
    if not emails:
        return 0
    with transaction(conn):
        for email in emails:
            engine.recompute(conn, email, now, None, [])
        email_spellings.recomputed(conn, emails)
    return len(emails)
