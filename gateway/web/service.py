"""The running app's state: config, adapters, engine, the ingest committer and the in-process worker thread."""

import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager

from prometheus_client import CollectorRegistry

from adapters import Adapter
from gateway.config import Config
from gateway.engine import build_engine, merged_totals, segment_rebuild
from gateway.engine.orders import Engine
from gateway.metrics import DeliveryMetrics, IngestMetrics, JobMetrics
from gateway.outbound.routes import sync_destinations
from gateway.outbound.sender import Sender
from gateway.pipeline.ingest import Committer
from gateway.pipeline.worker import Worker
from gateway.pipeline.write_turns import WriteTurns
from gateway.web.admin_session import AdminSessions
from gateway.web.auth import ApiKeys
from gateway.web.delivery_counts import DeliveryCounts
from gateway.web.read_pool import ReadPool
from gateway.web.request_bodies import BodyReader
from gateway.web.scrape import DatabaseGauges
from normalizer.timefmt import now_us
from store.db import Checkpointer, DatabaseFileLost, connect
from store.file_watch import FileWatch
from store.schema import migrate


class Gateway:
    """Everything one running app holds: config, adapters, engine, the committer and the in-process worker."""

    def __init__(
        self,
        config: Config,
        adapters: Mapping[str, Adapter],
        api_keys: list[str],
        run_worker: bool,
        engine: Engine | None = None,
    ) -> None:
        self.config = config
        self.adapters = adapters
        self.keys = ApiKeys(api_keys)
        self.engine = engine if engine is not None else build_engine(config)
        turns = self.turns = WriteTurns()
        self.registry = CollectorRegistry()
        self.requests: Counter[tuple[str, str, int]] = Counter()  # by route, method, status (CountRequests)
        self.deliveries = DeliveryCounts()
        self.admin_sessions = AdminSessions()
        self.scrape: DatabaseGauges | None = None
        self.job_metrics: JobMetrics | None = None
        self.delivery_metrics: DeliveryMetrics | None = None
        ingest_metrics: IngestMetrics | None = None
        if config.metrics_enabled:
            self.scrape = DatabaseGauges(config.database, self.deliveries, self.requests)
            self.registry.register(self.scrape)
            self.job_metrics = JobMetrics(self.registry)
            self.delivery_metrics = DeliveryMetrics(self.registry)
            ingest_metrics = IngestMetrics(self.registry)
        self.worker = Worker(config, adapters, self.engine, turns, self.job_metrics) if run_worker else None
        # Deliveries go out from the process that records the events: the worker's.
        self.sender = (
            Sender(config, self.engine.revenue_attributes, turns, self.delivery_metrics)
            if run_worker and config.destinations
            else None
        )
        if self.worker is not None and self.sender is not None:
            self.sender.yield_to(self.worker)
        self.committer = Committer(
            config.database,
            config.durability,
            on_commit=self.worker.wake.set if self.worker else None,
            turns=turns,
            busy_timeout=config.busy_timeout_seconds,
            metrics=ingest_metrics,
        )
        if self.worker is not None:
            self.worker.wal_sync = self.committer.wal_sync
        self._stop = threading.Event()
        self._worker_thread: threading.Thread | None = None
        self._resources = ExitStack()
        self._reader: sqlite3.Connection | None = None
        self.reads = ReadPool(config.database, config.durability)
        self.bodies = BodyReader(config.body_read_timeout, config.max_buffered_body_bytes)
        self._writer: sqlite3.Connection | None = None
        self._writer_lock = threading.Lock()
        self.watch: FileWatch | None = None

    @property
    def reader(self) -> sqlite3.Connection:
        assert self._reader is not None, "the app is not started"
        return self._reader

    @contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """The connection for a request that writes in its own transaction (a catalog update), one request at a
        time, in its turn on the write lock ahead of the worker's next chunk. Call it from a thread of the pool,
        never the event loop: it may wait for the lock."""
        settings = self.config
        with self._writer_lock, self.turns.ingest(timeout=settings.busy_timeout_seconds):
            if self._writer is None:
                self._writer = connect(settings.database, settings.durability, settings.busy_timeout_seconds)
            if self.watch is not None and (lost := self.watch.lost(fresh=True)) is not None:
                raise DatabaseFileLost(lost)
            yield self._writer

    def start(self) -> None:
        conn = connect(self.config.database, self.config.durability, self.config.busy_timeout_seconds)
        migrate(conn)
        sync_destinations(conn, self.config)
        merged_totals.settle(conn, self.engine, now_us())  # before segments: membership reads the totals
        segment_rebuild.sync(self.engine.segments, conn, now_us())
        if self.scrape is not None:
            self.scrape.start(conn)
        conn.close()
        self._reader = connect(self.config.database, self.config.durability, self.config.busy_timeout_seconds)
        self.reads.start()
        self.committer.start()
        # From here the process holds the database and its WAL open: note which files they are.
        self.watch = self.committer.watch = FileWatch(self.config.database)
        if self.worker is not None:
            self.worker.watch = self.watch
            self._worker_thread = threading.Thread(target=self.worker.run, args=(self._stop,), name="worker")
            self._worker_thread.start()
        if self.sender is not None:
            self.sender.start()
        else:
            # The committer's connection leaves checkpoints to others; with no worker here (`--no-worker`, the
            # tests), this process copies its own WAL back, so the file stays bounded without a worker process.
            self.committer.checkpointer = self._resources.enter_context(Checkpointer(self.config.database))

    def stop(self) -> None:
        self.committer.stop()
        self._stop.set()
        if self.worker is not None:
            self.worker.wake.set()
        if self._worker_thread is not None:
            self._worker_thread.join()
        if self.sender is not None:
            self.sender.stop()
        self._resources.close()
        if self._reader is not None:
            self._reader.close()
        self.reads.close()
        if self._writer is not None:
            self._writer.close()
