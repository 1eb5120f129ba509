"""The series `GET /metrics` answers for `serve`: requests counted by a middleware, the intake counts, and the
database-wide gauges read at scrape time (queue by status, backlog age, events recorded)."""

import shutil
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.metrics import PREFIX, counted
from gateway.web.delivery_counts import DeliveryCounts
from normalizer.timefmt import now_us
from store import automation_counts, job_reads, operator_reads, segments, timers
from store.automations import BACK_IN_STOCK, CHECKOUT, REPLENISHMENT

UNMATCHED = "unmatched"  # the route label of requests no route matched (bounded: never the raw path)
FLOWS = (REPLENISHMENT, BACK_IN_STOCK, CHECKOUT)


class CountRequests:
    """ASGI middleware: counts every HTTP request by route template, method and status code (but Push Orders,
    answered before the app's middleware: `PushOrders` counts them into the same counter)."""

    def __init__(self, app: ASGIApp, counts: Counter[tuple[str, str, int]]) -> None:
        self.app = app
        self.counts = counts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            path = route.path if route is not None else UNMATCHED
            self.counts[(path, scope["method"], status)] += 1


class DatabaseGauges(Collector):
    """The series of one scrape: counters kept in memory, and gauges read from the database just before."""

    def __init__(self, database: Path, deliveries: DeliveryCounts, requests: Counter[tuple[str, str, int]]) -> None:
        self.database = database
        self.deliveries = deliveries
        self.requests = requests
        self.lock = threading.Lock()  # one scrape at a time: `read` then `collect`
        self._jobs: dict[str, int] = {}
        self._timers: dict[str, int] = {}
        self._backlog = 0.0
        self._events: Counter[str] = Counter()
        self._last_event = 0
        self._disk_free = 0
        self._database_bytes = 0
        self._automations: dict[str, int] = {}
        self._segments: dict[str, int] = {}
        self._destinations: list[dict[str, Any]] = []

    def start(self, conn: sqlite3.Connection) -> None:
        """Events are counted from here on (a counter starts with its process)."""
        self._last_event = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]

    def read(self, conn: sqlite3.Connection) -> None:
        self._jobs = job_reads.counts(conn)
        self._timers = timers.counts(conn)
        oldest = job_reads.oldest(conn)["queued"]
        self._backlog = max(0.0, (now_us() - oldest) / 1e6) if oldest is not None else 0.0
        rows = conn.execute(
            "SELECT name, count(*), max(id) FROM events WHERE id > ? GROUP BY name", (self._last_event,)
        ).fetchall()
        for name, count, last in rows:
            self._events[name] += count
            self._last_event = max(self._last_event, last)
        self._disk_free = shutil.disk_usage(self.database.parent).free
        files = (self.database, self.database.with_name(self.database.name + "-wal"))
        self._database_bytes = sum(file.stat().st_size for file in files if file.exists())
        self._automations = automation_counts.active(conn)
        self._segments = {name: defined.members for name, defined in segments.defined(conn).items()}
        self._destinations = operator_reads.destinations(conn) or []

    def collect(self) -> Iterator[Metric]:
        yield counted(
            "http_requests",
            "HTTP requests answered, by route template, method and status code.",
            ["route", "method", "status"],
            self.requests,
        )
        yield counted(
            "ingested_deliveries",
            "Deliveries and Push Order requests by source and outcome (queued, duplicate, recorded, ignored,"
            " rejected).",
            ["source", "outcome"],
            self.deliveries.by_outcome,
        )
        yield from self._gauges()

    def _gauges(self) -> Iterator[Metric]:
        """What `read` took from the database."""
        # Done jobs are not counted (millions, a range count each scrape): jobs_processed_total tells their rate.
        jobs = GaugeMetricFamily(f"{PREFIX}_jobs", "Jobs waiting or stopped, by status.", labels=["status"])
        for state in ("queued", "processing", "failed", "dead"):
            jobs.add_metric([state], self._jobs.get(state, 0))
        yield jobs
        stopped = GaugeMetricFamily(
            f"{PREFIX}_timers", "Timers whose firing failed: failed (will retry) and dead.", labels=["status"]
        )
        for state in ("failed", "dead"):
            stopped.add_metric([state], self._timers.get(state, 0))
        yield stopped
        yield GaugeMetricFamily(
            f"{PREFIX}_backlog_seconds", "How long the oldest runnable queued job has waited (0: none).", self._backlog
        )
        events = CounterMetricFamily(
            f"{PREFIX}_events_recorded", "Events recorded since this process started, by name.", labels=["name"]
        )
        for name, count in sorted(self._events.items()):
            events.add_metric([name], count)
        yield events
        yield GaugeMetricFamily(
            f"{PREFIX}_disk_free_bytes", "Free bytes on the filesystem of the database.", self._disk_free
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_database_bytes", "Size of the SQLite database file and its WAL.", self._database_bytes
        )
        active = GaugeMetricFamily(f"{PREFIX}_automations_active", "Active automations by flow.", labels=["flow"])
        for flow in sorted(FLOWS):  # every flow, 0 when none is active: a gauge that vanishes reads as "no data"
            active.add_metric([flow], self._automations.get(flow, 0))
        yield active
        sizes = GaugeMetricFamily(f"{PREFIX}_segment_members", "Members of each segment.", labels=["segment"])
        for name, members in sorted(self._segments.items()):
            sizes.add_metric([name], members)
        yield sizes
        enabled = GaugeMetricFamily(
            f"{PREFIX}_destination_enabled",
            "1 while a configured destination is enabled, 0 once disabled.",
            labels=["destination"],
        )
        outbox = GaugeMetricFamily(
            f"{PREFIX}_destination_deliveries",
            "Deliveries waiting or given up, by destination and status (pending, failed, dead).",
            labels=["destination", "status"],
        )
        for destination in self._destinations:
            enabled.add_metric([destination["name"]], 1 if destination["enabled"] else 0)
            for state in ("pending", "failed", "dead"):
                outbox.add_metric([destination["name"], state], destination[state])
        yield enabled
        yield outbox
