"""The worker: leases jobs, turns each into canonical orders, applies them with the engine, and marks the job
done in the same transaction (docs/operations.md, the queue). Safe to run in several threads or processes on
one database."""

import logging
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext

from adapters import Adapter
from gateway.config import Config
from gateway.engine import Engine
from gateway.metrics import JobMetrics
from gateway.pipeline.chunks import ChunkRunner, JobFailed
from gateway.pipeline.wal_sync import WalFile, WalSync
from gateway.pipeline.write_turns import WriteTurns
from normalizer.timefmt import now_us
from store import queue
from store.db import Checkpointer, StoreUnavailable, connect, transaction
from store.file_watch import FileWatch

log = logging.getLogger("gateway.worker")
_BUSY_BATCH = 16
# While requests arrive, a chunk of `serve`'s worker ends after this much work (at least one job): the worker
# holds the GIL, and the write lock, in short slices, and a request that arrives meanwhile waits at most about
# that long for either (docs/PERFORMANCE.md).
_BUSY_CHUNK_SECONDS = 0.001
_PRUNE_SECONDS = 60.0
_PRUNE_BATCH, _PRUNE_BATCHES = 500, 20  # at most 10,000 done jobs a minute, 500 per transaction
# A chunk is one transaction: commit at least this often. A standalone worker commits often, since writers in
# other processes wait for it in SQLite's busy handler. In `serve`, a request batch that waits ends the chunk
# after the current job (`WriteTurns`), so chunks can be long: fewer, larger commits write each page the
# chunk changes once: half the WAL per order at 1,000 jobs as at 200 (docs/PERFORMANCE.md).
_CHUNK_SECONDS = 0.05
_TIMER_SECONDS = 0.05  # timers fired per transaction: the write lock is held about this long
_CHUNK_SECONDS_IN_SERVE = 0.5
_TROUBLE_BACKOFF_MAX_SECONDS = 5.0  # between batches while the database is in trouble (locked, disk full)


class Worker:
    def __init__(
        self,
        config: Config,
        adapters: Mapping[str, Adapter],
        engine: Engine,
        turns: WriteTurns | None = None,
        metrics: JobMetrics | None = None,
    ) -> None:
        self.config = config
        self.adapters = adapters
        self.engine = engine
        self.turns = turns
        self.metrics = metrics
        self.owner = f"{secrets.token_hex(4)}"
        self.chunks = ChunkRunner(config.worker, adapters, engine, self.owner, turns, metrics)
        self.wake = threading.Event()
        self.after_commit: Callable[[], None] | None = None
        self.behind = False  # more jobs are waiting after the last batch (the sender yields to it meanwhile)
        self._conn: sqlite3.Connection | None = None
        self.checkpointer = Checkpointer(config.database)
        self._prune_at = 0.0
        self._next_due: int | None = None  # the earliest timer's due time as last read (µs)
        self._said_lost = False
        self.timer_seconds = _TIMER_SECONDS  # a firing transaction ends past this, once one timer has fired
        self.watch: FileWatch | None = None  # set with the connection, unless given (serve shares its own)
        # `full`: each transaction commits at synchronous=NORMAL and the WAL is synced after it, once the write
        # lock is released (`_durable`): requests waiting for the lock do not wait for the disk too.
        self._wal = WalFile(config.database) if config.durability == "full" else None
        self.wal_sync: WalSync | None = None  # `serve`: the committer's, whose syncs the worker then shares

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            settings = self.config
            self._conn = connect(settings.database, "normal", settings.busy_timeout_seconds, autocheckpoint=False)
            if self.watch is None:
                self.watch = FileWatch(settings.database)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._wal is not None:
            self._wal.close()

    def _durable(self) -> None:
        """With `full`, what this worker committed is on disk when this returns (the WAL synced, with the write
        lock free): called after each of its transactions, before it goes on (and before the sender hears)."""
        if self.wal_sync is not None:
            self.wal_sync.wait()  # one sync for the worker's commit and the requests' batches before it
        elif self._wal is not None:
            self._wal.sync()

    def run(self, stop: threading.Event) -> None:
        troubled = 0  # batches in a row that the database's trouble broke off
        assert self.conn is not None and self.watch is not None  # opened before the loop: the watch begins here
        with self.checkpointer:
            while not stop.is_set():
                if self._file_lost(self.watch):
                    self.wake.wait(_TROUBLE_BACKOFF_MAX_SECONDS)
                    continue
                try:
                    processed = self.run_once()
                    troubled = 0
                except StoreUnavailable as exc:
                    log.warning("worker cannot reach the database", extra={"error": str(exc)})
                    processed, troubled = 0, troubled + 1
                except Exception:
                    # Only the database's own trouble gets here (a job's failure is recorded on the job): the
                    # batch rolled back and its jobs run again (a standalone worker's once their leases expire).
                    # The worker itself must outlive any one batch.
                    log.exception("worker batch failed")
                    processed, troubled = 0, troubled + 1
                try:
                    processed += self.fire_timers()
                except StoreUnavailable as exc:
                    log.warning("worker cannot reach the database", extra={"error": str(exc)})
                except Exception:
                    log.exception("firing timers failed")  # rolled back: they are still due, tried again
                try:
                    self.prune_done_jobs()
                except (StoreUnavailable, sqlite3.Error) as exc:
                    log.warning("pruning done jobs failed", extra={"error": str(exc)})
                if processed and self.after_commit is not None:
                    self.after_commit()  # the jobs' events may have deliveries for the sender
                if processed == 0:
                    self.wake.wait(self._idle_seconds(troubled))
                    self.wake.clear()
        self.close()

    def fire_timers(self, now: int | None = None) -> int:
        """Fire due timers (`gateway.engine.timers`) in one transaction of at most `timer_seconds`, each in the
        transaction that applies its effects; returns how many fired. Nothing due costs a probe of each timer
        index, no lock."""
        now = now_us() if now is None else now
        self._next_due = self.engine.timers.next_due(self.conn)
        if self._next_due is None or self._next_due > now:
            return 0
        with self._turn(), transaction(self.conn) as conn, self.engine.recording():
            deadline = time.monotonic() + self.timer_seconds
            fired, _more = self.engine.timers.fire_due(conn, now, deadline, self.config.worker.retry_at)
        self._durable()
        self._next_due = 0  # read again before sleeping
        return fired

    def _idle_seconds(self, troubled: int = 0) -> float:
        """Sleep until the next job poll or the earliest timer's due time, whichever is sooner. A job this
        worker commits is seen by the next `fire_timers`; another writer in this process (a catalog update)
        sets `wake`. While the database is in trouble (`troubled` batches in a row broken off by it), the poll
        interval doubles with each, up to _TROUBLE_BACKOFF_MAX_SECONDS."""
        poll = self.config.worker.poll_seconds
        if troubled:
            return min(poll * 2.0 ** min(troubled, 16), max(poll, _TROUBLE_BACKOFF_MAX_SECONDS))
        if self._next_due is None:
            return poll
        return min(poll, max(0.0, (self._next_due - now_us()) / 1e6))

    def _file_lost(self, watch: FileWatch) -> bool:
        """The database file was deleted or replaced: whatever this worker wrote would be lost with the open
        file, so it writes nothing more until restarted (said once, in the log)."""
        lost = watch.lost()
        if lost is not None and not self._said_lost:
            log.error("worker stopped: the database file is gone", extra={"error": lost})
            self._said_lost = True
        return lost is not None

    def run_once(self) -> int:
        """Process one batch of runnable jobs; returns how many were taken (0: nothing to do now)."""
        if self.metrics is not None:
            self.metrics.discard()  # a transaction abandoned by an exception left its observations behind
        with self.engine.recording():
            if self.turns is not None:
                return self._run_in_turn(self.turns)
            return self._run_leased()

    def _run_in_turn(self, turns: WriteTurns) -> int:
        """`serve`'s worker: one transaction takes runnable jobs, applies them and completes them. The write lock
        is held from the first statement to the commit, so no other worker can see the jobs meanwhile and no
        lease is written (a leased batch writes every job row twice); a crash leaves them queued as they were.
        While requests are arriving, the batch is small and the chunk ends after _BUSY_CHUNK_SECONDS of work: the
        worker shares the GIL with the event loop, and a request batch waits for the lock."""
        busy = turns.busy
        limit = _BUSY_BATCH if busy else self.config.worker.batch_size
        more = False  # jobs are left: the take was full, or the chunk ended before its last job
        with turns.background():
            try:
                with transaction(self.conn) as conn:
                    began = time.monotonic()
                    jobs = queue.take(conn, now_us(), limit)
                    more = len(jobs) >= limit
                    deadline = began + (_BUSY_CHUNK_SECONDS if busy else _CHUNK_SECONDS_IN_SERVE)
                    taken = self.chunks.run(conn, jobs, 0, {job.id for job in jobs}, deadline) if jobs else 0
                    more = more or taken < len(jobs)
            except JobFailed as failed:  # rolled back: run the chunk again up to the failed job, one by one
                self._observed(committed=False)
                with transaction(self.conn) as conn:
                    # The same take as the chunk's (its transaction left nothing behind), unless another worker
                    # took some of those jobs meanwhile: then a few others, just as runnable.
                    jobs = queue.take(conn, now_us(), limit)[: failed.index + 1]
                    self.chunks.one_by_one(conn, jobs, {job.id for job in jobs})
                taken = len(jobs)
            worked = time.monotonic() - began  # with the write lock and (most of) the GIL
            self._observed(committed=True)
            self.checkpointer.rewind_if_due(self.conn)
        if taken:
            self._durable()
        self.behind = more
        turns.pace(worked)
        return taken

    def _run_leased(self) -> int:
        """The standalone worker: lease a batch in one short transaction, then apply it in chunks of at most
        _CHUNK_SECONDS, one transaction each, so that writers in other processes get the lock in between."""
        settings = self.config.worker
        with transaction(self.conn) as conn:
            jobs = queue.claim(conn, self.owner, now_us(), int(settings.lease_seconds * 1e6), settings.batch_size)
        self.behind = len(jobs) >= settings.batch_size
        start = 0
        while start < len(jobs):
            try:
                with transaction(self.conn) as conn:
                    deadline = time.monotonic() + _CHUNK_SECONDS  # the write lock is ours from here
                    # Checked once per chunk: with the write lock held, no other worker can take a lease over.
                    leased = queue.still_leased_ids(conn, jobs[start:], self.owner)
                    start = self.chunks.run(conn, jobs, start, leased, deadline)
            except JobFailed as failed:  # the chunk's transaction is rolled back: see `ChunkRunner.run`
                self._observed(committed=False)
                with transaction(self.conn) as conn:
                    leased = queue.still_leased_ids(conn, jobs[start:], self.owner)
                    self.chunks.one_by_one(conn, jobs[start : failed.index + 1], leased)
                start = failed.index + 1
            self._observed(committed=True)
            self.checkpointer.rewind_if_due(self.conn)
            self._durable()
        return len(jobs)

    def prune_done_jobs(self, force: bool = False) -> int:
        """Delete done jobs older than `keep_done_jobs_days` (at most once a minute, a few short transactions):
        their raw bodies carry personal data and nothing reads them once done. Returns how many went."""
        days = self.config.worker.keep_done_jobs_days
        if days is None or (time.monotonic() < self._prune_at and not force):
            return 0
        self._prune_at = time.monotonic() + _PRUNE_SECONDS
        cutoff = now_us() - int(days * 86_400 * 1e6)
        removed = 0
        for _ in range(_PRUNE_BATCHES):
            with self._turn(), transaction(self.conn) as conn:
                batch = queue.prune_done(conn, cutoff, _PRUNE_BATCH)
            self._durable()
            removed += batch
            if batch < _PRUNE_BATCH:
                break
        if removed:
            log.info("done jobs pruned", extra={"jobs": removed, "days": days})
        return removed

    def _observed(self, committed: bool) -> None:
        if self.metrics is None:
            return
        if committed:
            self.metrics.commit()
        else:
            self.metrics.discard()

    def _turn(self) -> AbstractContextManager[None]:
        return self.turns.background() if self.turns is not None else nullcontext()
