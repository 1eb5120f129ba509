"""Prometheus metrics of one process: the worker's job series, who may scrape them, and the small HTTP server a
standalone `worker` process answers scrapes with (docs/operations.md, Metrics).

Each process has its own registry and endpoint: `serve` at `/metrics` on its HTTP port (the worker in it
included, plus the database-wide gauges), a `worker` process at `--metrics-port`. Prometheus sums the
instances; the database-wide gauges come from `serve` alone, so nothing is counted twice."""

import hmac
import ipaddress
import logging
import threading
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from store import queue

log = logging.getLogger("gateway.metrics")

PREFIX = "commerce_gateway"
_DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_SYNC_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
CLIENT_TIMEOUT_SECONDS = 10.0  # a scraper that stalls mid-request is dropped: its thread and socket are freed
_LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400)


class _Histogram:
    """One label's histogram, kept in plain integers: the worker is its only writer, so no lock per observation
    (prometheus_client's takes three; measured in docs/PERFORMANCE.md, Metrics on and off)."""

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def buckets(self) -> list[tuple[str, float]]:
        total, found = 0, []
        for bound, count in zip([*map(floatToGoString, self.bounds), "+Inf"], self.counts, strict=True):
            total += count
            found.append((bound, float(total)))
        return found


class IngestMetrics(Collector):
    """The group commit of accepted requests: how many commits carried how many requests and, under `durability:
    full`, how long each sync of the WAL to disk took: what a 202 waits for beyond its commit."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.commits = self.requests = 0  # counted by the committer thread alone
        self.syncs = _Histogram(_SYNC_BUCKETS)
        self._lock = threading.Lock()  # the WAL-sync threads observe concurrently
        registry.register(self)

    def committed(self, requests: int) -> None:
        self.commits += 1
        self.requests += requests

    def synced(self, seconds: float) -> None:
        with self._lock:
            self.syncs.observe(seconds)

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(f"{PREFIX}_ingest_commits", "Group commits of accepted requests.", self.commits)
        yield CounterMetricFamily(
            f"{PREFIX}_ingest_committed_requests", "Accepted requests committed by the group commits.", self.requests
        )
        family = HistogramMetricFamily(
            f"{PREFIX}_wal_sync_seconds", "Syncs of the WAL to disk that 202s wait for (durability: full)."
        )
        family.add_metric([], self.syncs.buckets(), self.syncs.sum)
        yield family


class JobMetrics(Collector):
    """Jobs ended by this process's worker: counts by kind and outcome, how long each took to apply, and how long
    after its acceptance it was done. Observed only once the transaction that ended them has committed (a
    rolled-back chunk runs again and is counted then)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.processed: dict[tuple[str, str], int] = {}
        self.duration: dict[str, _Histogram] = {}
        self.latency: dict[str, _Histogram] = {}
        self._pending: list[tuple[str, str, float, float]] = []  # kind, outcome, duration s, latency s
        registry.register(self)

    def completed(self, done: Sequence[tuple[queue.Job, int, list[str]]], end_us: int) -> None:
        """Jobs completed in the open transaction: (job, start µs, warnings) in the order they ran."""
        for index, (job, started, _) in enumerate(done):
            finished = done[index + 1][1] if index + 1 < len(done) else end_us
            self._pending.append((job.kind, "done", (finished - started) / 1e6, (finished - job.received_at) / 1e6))

    def failed(self, job: queue.Job, dead: bool, started_us: int, end_us: int) -> None:
        self._pending.append((job.kind, "dead" if dead else "failed", (end_us - started_us) / 1e6, 0.0))

    def commit(self) -> None:
        """The transaction committed: observe what it ended."""
        pending, self._pending = self._pending, []
        for kind, outcome, duration, latency in pending:
            self.processed[(kind, outcome)] = self.processed.get((kind, outcome), 0) + 1
            if (histogram := self.duration.get(kind)) is None:
                histogram = self.duration[kind] = _Histogram(_DURATION_BUCKETS)
                self.latency[kind] = _Histogram(_LATENCY_BUCKETS)
            histogram.observe(duration)
            if outcome == "done":
                self.latency[kind].observe(latency)

    def discard(self) -> None:
        """The transaction rolled back: nothing it did happened."""
        self._pending.clear()

    def collect(self) -> Iterator[Metric]:
        yield counted(
            "jobs_processed",
            "Jobs ended by the worker, by kind (order, webhook, …) and outcome (done; failed: will retry; dead).",
            ["kind", "outcome"],
            self.processed,
        )
        for name, doc, histograms in (
            ("job_duration_seconds", "Time the worker spent applying one job, by kind.", self.duration),
            (
                "job_latency_seconds",
                "From the job's acceptance to its completion (received -> done), by kind.",
                self.latency,
            ),
        ):
            family = HistogramMetricFamily(f"{PREFIX}_{name}", doc, labels=["kind"])
            for kind, histogram in sorted(histograms.items()):
                family.add_metric([kind], histogram.buckets(), histogram.sum)
            yield family


class DeliveryMetrics(Collector):
    """Delivery attempts made by this process's sender, by destination and outcome, counted once the transaction
    that recorded them has committed."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.attempts: dict[tuple[str, str], int] = {}
        registry.register(self)

    def recorded(self, outcomes: Iterable[tuple[str, str]]) -> None:
        """(destination, the delivery's status after the attempt: succeeded, failed or dead) per attempt."""
        for key in outcomes:
            self.attempts[key] = self.attempts.get(key, 0) + 1

    def collect(self) -> Iterator[Metric]:
        yield counted(
            "delivery_attempts",
            "Delivery attempts by destination and outcome (succeeded; failed: will retry; dead: the last one).",
            ["destination", "outcome"],
            self.attempts,
        )


def counted(name: str, documentation: str, labels: list[str], counts: Mapping[tuple[Any, ...], int]) -> Metric:
    """A counter family of `counts` (label values, in `labels`' order -> count), in label order."""
    family = CounterMetricFamily(f"{PREFIX}_{name}", documentation, labels=labels)
    for values, count in sorted(counts.items()):
        family.add_metric([str(value) for value in values], count)
    return family


def scrape_allowed(token: str | None, authorization: str | None, client_host: str | None) -> bool:
    """With a `metrics_token`, a scrape must bring it as a Bearer token; without one, only loopback clients may
    scrape."""
    if token:
        scheme, _, given = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
    try:
        return client_host is not None and ipaddress.ip_address(client_host).is_loopback
    except ValueError:
        return False


def serve_metrics(registry: CollectorRegistry, host: str, port: int, token: str | None) -> ThreadingHTTPServer:
    """Answer `GET /metrics` from `registry` on host:port in a daemon thread (a standalone worker's endpoint)."""

    class Handler(BaseHTTPRequestHandler):
        timeout = CLIENT_TIMEOUT_SECONDS  # each connection's socket: a stalled client no longer holds it for good

        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/metrics":
                self._answer(404, b"not found\n", "text/plain")
            elif not scrape_allowed(token, self.headers.get("Authorization"), self.client_address[0]):
                self._answer(401 if token else 403, b"metrics_token required\n", "text/plain")
            else:
                self._answer(200, generate_latest(registry), CONTENT_TYPE_LATEST)

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # no access log (see docs/operations.md, Logs)
            return

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    log.info("metrics endpoint started", extra={"host": host, "port": server.server_address[1]})
    return server
