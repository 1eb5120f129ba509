"""Group commit for accepted requests: handlers hand their job row to one writer thread, which inserts every
row waiting at that moment in one transaction and answers them all after COMMIT.

One commit per request caps a server near the disk's commit rate; a batch per commit does not, and the
202 still goes out only once the row is durable (docs/operations.md). The event loop never waits on a SQLite lock.
"""

import asyncio
import json
import logging
import queue as stdqueue
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from adapters import Delivery, Intake
from gateway.metrics import IngestMetrics
from gateway.pipeline.wal_sync import WalSync
from gateway.pipeline.write_turns import WriteTurns
from normalizer.timefmt import to_micros
from store import queue
from store.db import (
    DEFAULT_BUSY_TIMEOUT_SECONDS,
    Checkpointer,
    DatabaseFileLost,
    Durability,
    StoreUnavailable,
    connect,
    transaction,
)
from store.file_watch import FileWatch

log = logging.getLogger("gateway.ingest")
_MAX_BATCH = 1024
# A batch whose oldest request has less than its full busy timeout left waits for SQLite's lock only that long;
# the connection's busy timeout is changed for it only when the difference is worth a statement.
_BUSY_TIMEOUT_SLACK_SECONDS = 0.1


@dataclass(slots=True)
class _Pending:
    job: queue.NewJob
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[bool]
    arrived: float  # time.monotonic()


class Committer:
    def __init__(
        self,
        database: Path,
        durability: Durability,
        on_commit: Callable[[], None] | None = None,
        turns: WriteTurns | None = None,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT_SECONDS,
        metrics: IngestMetrics | None = None,
    ) -> None:
        self._database = database
        self._metrics = metrics
        self._durability = durability
        self._busy_timeout = busy_timeout
        self._busy_timeout_set = busy_timeout  # what the connection's busy timeout is now
        self._on_commit = on_commit
        self._turns = turns
        self._queue: stdqueue.SimpleQueue[list[_Pending] | None] = stdqueue.SimpleQueue()
        self._gathering: dict[asyncio.AbstractEventLoop, list[_Pending]] = {}
        self._stopping = False  # the stop request was taken from the queue: commit what came before, then end
        self._thread = threading.Thread(target=self._run, name="ingest-committer", daemon=True)
        self._conn: sqlite3.Connection | None = None
        # Set when this process has no worker: the committer is then its only writer (see `Checkpointer`).
        self.checkpointer: Checkpointer | None = None
        self.watch: FileWatch | None = None  # set by the app once its connections are open
        # `full`: the WAL is synced after the commit, by `WalSync`, not inside it (see there).
        observe = metrics.synced if metrics is not None else None
        self._wal_sync = WalSync(database, observe) if durability == "full" else None

    @property
    def wal_sync(self) -> WalSync | None:
        """With `full`, the syncs of the WAL that requests wait for (the worker's transactions may share them)."""
        return self._wal_sync

    def start(self) -> None:
        synchronous: Durability = "normal" if self._wal_sync is not None else self._durability
        self._conn = connect(self._database, synchronous, self._busy_timeout, autocheckpoint=False)
        if self._wal_sync is not None:
            self._wal_sync.start()
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self._wal_sync is not None:
            self._wal_sync.stop()
        if self._conn is not None:
            self._conn.close()

    async def submit(self, job: queue.NewJob) -> bool:
        """Durably insert `job`; True if inserted, False if its delivery key was already recorded."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        gathering = self._gathering.get(loop)
        if gathering is None:
            # Hand over everything this loop iteration accepted at once: one wake-up of the committer thread
            # (one GIL hand-over) per iteration rather than per request.
            gathering = self._gathering[loop] = []
            loop.call_soon(self._hand_over, loop)
        gathering.append(_Pending(job, loop, future, time.monotonic()))
        return await future

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        self._queue.put(self._gathering.pop(loop))

    def _run(self) -> None:
        while not self._stopping:
            first = self._queue.get()
            if first is None:
                break
            batch = list(first)
            self._gather(batch)
            self._commit(batch)

    def _gather(self, batch: list[_Pending]) -> None:
        """Add to `batch` every request handed over meanwhile (up to _MAX_BATCH); notes a stop request."""
        while len(batch) < _MAX_BATCH and not self._stopping:
            try:
                item = self._queue.get_nowait()
            except stdqueue.Empty:
                return
            if item is None:
                self._stopping = True
            else:
                batch += item

    def _commit(self, batch: list[_Pending]) -> None:
        assert self._conn is not None
        results: list[bool] = []
        error: Exception | None = None
        # Every request is answered within the busy timeout of its arrival (then 503, and its row is not
        # written): the batch waits for the locks only as long as its oldest request has left.
        deadline = batch[0].arrived + self._busy_timeout
        try:
            with self._turn(len(batch), deadline), transaction(self._lock_waiting_until(deadline)) as conn:
                # Requests handed over while this batch waited for the lock (the worker ending its chunk, another
                # process's writer) go in this commit, not the next: else each would wait for two.
                waited = len(batch)
                self._gather(batch)
                if self._turns is not None and len(batch) > waited:
                    self._turns.joined(len(batch) - waited)
                # Checked with the lock held, just before the rows go in: a commit into a file deleted or
                # replaced meanwhile would be gone at the next start.
                if self.watch is not None and (lost := self.watch.lost(fresh=True)) is not None:
                    raise DatabaseFileLost(lost)
                results = queue.insert_many(conn, [pending.job for pending in batch])
        except (StoreUnavailable, sqlite3.Error) as exc:
            log.error("ingest commit failed", extra={"error": str(exc), "jobs": len(batch)})
            error = exc if isinstance(exc, StoreUnavailable) else StoreUnavailable(str(exc))
        if error is None and self._wal_sync is not None:
            self._wal_sync.after_commit(lambda synced: _answer(batch, results, synced))
        else:
            _answer(batch, results, error)
        if error is None:
            if self._on_commit is not None:  # after the sync is asked for: the worker waits, requests do not
                self._on_commit()
            if self._metrics is not None:
                self._metrics.committed(len(batch))
        if self.checkpointer is not None:  # after the answers: no request waits on this
            self.checkpointer.rewind_if_due(self._conn)

    def _turn(self, requests: int, deadline: float) -> AbstractContextManager[None]:
        """The in-process worker's turn on the write lock (`WriteTurns`), waited for until `deadline`."""
        if self._turns is None:
            return nullcontext()
        return self._turns.ingest(requests, timeout=deadline - time.monotonic())

    def _lock_waiting_until(self, deadline: float) -> sqlite3.Connection:
        """The connection, its busy timeout (how long BEGIN waits for another process's writer) cut to what is
        left until `deadline`."""
        assert self._conn is not None
        left = deadline - time.monotonic()
        if left <= 0:
            raise StoreUnavailable("the write lock was not free within the busy timeout")
        wanted = self._busy_timeout if left > self._busy_timeout - _BUSY_TIMEOUT_SLACK_SECONDS else left
        if wanted != self._busy_timeout_set:
            self._conn.execute(f"PRAGMA busy_timeout={max(1, round(wanted * 1000))}")
            self._busy_timeout_set = wanted
        return self._conn


def _answer(batch: list[_Pending], results: list[bool], error: Exception | None) -> None:
    """Answer every request of a batch on its own event loop: inserted or not, or the error."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[bool], bool]]] = {}
    for index, pending in enumerate(batch):
        by_loop.setdefault(pending.loop, []).append((pending.future, results[index] if error is None else False))
    for loop, answers in by_loop.items():
        loop.call_soon_threadsafe(_resolve, answers, error)


def _resolve(answers: list[tuple[asyncio.Future[bool], bool]], error: Exception | None) -> None:
    for future, inserted in answers:
        if future.done():  # the client went away; its row is committed all the same
            continue
        if error is None:
            future.set_result(inserted)
        else:
            future.set_exception(error)


def webhook_job(delivery: Delivery, intake: Intake, prefix: str = "commerce-webhook") -> queue.NewJob:
    """The job row of a verified delivery the adapter wants kept: queued to translate, or recorded as done."""
    received = to_micros(delivery.received_at)
    return queue.NewJob(
        job_id=queue.new_job_id(prefix, received),
        kind="webhook",
        source=delivery.source,
        body=delivery.body,
        received_at=received,
        dedup_key=intake.dedup_key,
        topic=intake.topic,
        headers=json.dumps(dict(delivery.headers)),
        status="queued" if intake.action == "queue" else "done",
        warnings=json.dumps([intake.reason]) if intake.action == "record" and intake.reason else None,
    )
