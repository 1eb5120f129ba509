"""Which recorded events go to which destination, kept as the config says. Apart from the sender: the operator
commands sync routes too, and they send nothing."""

import sqlite3

from gateway.config import Config
from normalizer.timefmt import now_us
from store import outbox


def sync_destinations(conn: sqlite3.Connection, config: Config) -> None:
    """Route events as the config says, from now on (every process that records or sends events calls this)."""
    routes = [
        (outbox.Route(name, tuple(d.events), d.include_historical), d.url) for name, d in config.destinations.items()
    ]
    outbox.sync(conn, routes, now_us())
