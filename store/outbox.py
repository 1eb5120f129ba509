"""The transactional outbox: every event recorded gets one delivery row per destination that wants it, written in
the transaction that records the event (`store.events.record` calls `offer`).

The destinations' routing (name, event patterns, include_historical) lives in the `destinations` table, written
at start from the config (`sync`), so every process and every connection routes alike. A connection compiles
the routing once (patterns to regular expressions) and answers each event name from a dictionary afterwards.
"""

import fnmatch
import re
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from normalizer.timefmt import now_us
from store import json_columns
from store.db import transaction

_CACHED_NAMES = 4096  # distinct (event name, historical) pairs remembered per connection
# A delivery's webhook-id is derived from its row when read (`store.deliveries.WEBHOOK_ID`: its creation time then
# its id), so the insert writes the row and two index entries only: `deliveries_event` (an event's delivery to a
# destination is written once) and `deliveries_due` (the sender's claim). No NULL is bound: Python's sqlite3 looks
# a None parameter up among the adapters first.
INSERT = (
    "INSERT INTO deliveries (event_id, destination, status, attempts, tries, next_attempt_at, created_at,"
    " updated_at) VALUES (?1, ?2, 'pending', 0, 0, ?3, ?3, ?3) ON CONFLICT (event_id, destination) DO NOTHING"
)
_generation = 0  # bumped by `sync` in this process: connections compiled before it compile again
_generation_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Route:
    destination: str
    patterns: tuple[str, ...]  # shell-style; empty: every event
    include_historical: bool


class Routes:
    """Which destinations an event goes to; the answer for a name is computed once and kept."""

    def __init__(self, routes: Sequence[Route], generation: int = 0) -> None:
        self.generation = generation
        self._compiled = [
            (route.destination, [re.compile(fnmatch.translate(p)) for p in route.patterns], route.include_historical)
            for route in routes
        ]
        self._answers: dict[tuple[str, bool], tuple[str, ...]] = {}
        self.destinations = len(self._compiled)  # 0: every event's answer is none, without a lookup

    def __bool__(self) -> bool:
        return bool(self._compiled)

    def match(self, name: str, historical: bool) -> tuple[str, ...]:
        key = (name, historical)
        found = self._answers.get(key)
        if found is None:
            found = tuple(
                destination
                for destination, patterns, include_historical in self._compiled
                if (include_historical or not historical) and (not patterns or any(p.match(name) for p in patterns))
            )
            if len(self._answers) < _CACHED_NAMES:
                self._answers[key] = found
        return found


def load(conn: sqlite3.Connection) -> Routes:
    rows = conn.execute(
        "SELECT name, events, include_historical FROM destinations WHERE configured = 1 ORDER BY name"
    ).fetchall()
    return Routes(
        [Route(name, tuple(json_columns.loads(events or "[]")), bool(historical)) for name, events, historical in rows],
        _generation,
    )


def routing(conn: sqlite3.Connection) -> Routes:
    """The routing of `conn`'s events: compiled once per connection (`store.db.Connection` keeps it; any other
    connection reads it anew), and again after a `sync` in this process."""
    routes: Routes | None = getattr(conn, "routes", None)
    if routes is None or routes.generation != _generation:
        routes = load(conn)
        if hasattr(conn, "routes"):
            conn.routes = routes
    return routes


def offer(conn: sqlite3.Connection, event_id: int, name: str, properties: dict[str, Any]) -> int:
    """Write the deliveries of a newly recorded event (`properties`: its own, `historical` among them); returns
    how many. With no destination configured, the connection's compiled routing answers without a lookup."""
    routes = routing(conn)
    if not routes.destinations:
        return 0
    destinations = routes.match(name, properties.get("historical") is True)
    if not destinations:
        return 0
    now = now_us()
    if len(destinations) == 1:
        conn.execute(INSERT, (event_id, destinations[0], now))
    else:
        conn.executemany(INSERT, [(event_id, destination, now) for destination in destinations])
    return len(destinations)


def forget(conn: sqlite3.Connection, event_ids: Sequence[int]) -> None:
    """Delete the deliveries (and their attempts) of events about to be deleted: nothing is left to send, and their
    history goes with the customer's events. (An attempt in flight meanwhile is not recorded: `deliveries.finish`.)"""
    doomed = (
        "SELECT d.id FROM deliveries AS d WHERE d.destination IN (SELECT name FROM destinations)"
        " AND d.event_id IN (SELECT value FROM json_each(?))"
    )
    ids = (json_columns.dumps(list(event_ids)),)
    conn.execute(f"DELETE FROM delivery_attempts WHERE delivery_id IN ({doomed})", ids)
    conn.execute(f"DELETE FROM legacy_webhook_ids WHERE delivery_id IN ({doomed})", ids)
    conn.execute(f"DELETE FROM deliveries WHERE id IN ({doomed})", ids)


def sync(conn: sqlite3.Connection, routes: Iterable[tuple[Route, str]], now: int) -> None:
    """Make the `destinations` table route as the config says ((route, url) pairs), in a transaction of its own;
    a destination no longer configured keeps its row and history but gets no new events."""
    global _generation
    with transaction(conn):
        _write(conn, routes, now)
    with _generation_lock:
        _generation += 1


def _write(conn: sqlite3.Connection, routes: Iterable[tuple[Route, str]], now: int) -> None:
    names = []
    for route, url in routes:
        names.append(route.destination)
        conn.execute(
            "INSERT INTO destinations (name, url, events, include_historical, configured, enabled, configured_at)"
            " VALUES (?, ?, ?, ?, 1, 1, ?) ON CONFLICT (name) DO UPDATE SET url = excluded.url,"
            " events = excluded.events, include_historical = excluded.include_historical, configured = 1,"
            " configured_at = CASE WHEN destinations.configured = 1 THEN destinations.configured_at"
            " ELSE excluded.configured_at END",
            (route.destination, url, json_columns.dumps(list(route.patterns)), int(route.include_historical), now),
        )
    placeholders = ",".join("?" * len(names))
    conn.execute(f"UPDATE destinations SET configured = 0 WHERE name NOT IN ({placeholders})", names)
