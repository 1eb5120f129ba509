"""Operator actions on deliveries, shared by the API and the CLI: replay one, replay a destination since a time."""

import sqlite3
from typing import Literal

from store import deliveries, outbox
from store.db import transaction

ReplayScope = Literal["dead", "undelivered"]


def replay_destination(conn: sqlite3.Connection, name: str, scope: ReplayScope, since: int, now: int) -> int:
    """For the events recorded since `since` (µs): `dead` makes the destination's dead deliveries due again;
    `undelivered` also writes deliveries for the events it never got (recorded before it was configured), as far
    as its `events` patterns and `include_historical` want them. Returns how many deliveries are due."""
    with transaction(conn):
        count = deliveries.replay_dead(conn, name, since, now)
        if scope == "undelivered":
            routes = outbox.load(conn)
            count += deliveries.offer_missed(
                conn, name, since, now, lambda event, historical: name in routes.match(event, historical)
            )
    return count


def replay_one(conn: sqlite3.Connection, delivery_id: str, now: int) -> str | None:
    """The delivery's status before (it is now due, unless it was in flight or its destination is no longer
    configured: `deliveries.UNCONFIGURED`); None when there is none."""
    with transaction(conn):
        return deliveries.replay(conn, delivery_id, now)
