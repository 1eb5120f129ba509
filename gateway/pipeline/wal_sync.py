"""`durability: full` for accepted requests without holding SQLite's write lock through the disk's sync.

With synchronous=FULL, SQLite syncs the WAL inside every COMMIT, with the write lock held: the next batch of
requests cannot even begin until the disk answers, and with a few dozen clients each waiting for its answer,
throughput is clients ÷ sync time. Instead the committer commits with synchronous=NORMAL (the frames reach
the WAL file, not yet the disk) and hands the batch here; this thread syncs the WAL file and only then are
the batch's requests answered. One sync covers every batch committed before it began, and the committer
goes on committing the next batches while the disk works. A 202 still goes out only once its row is on disk:
a power cut loses at most frames no one was answered for, and SQLite's recovery stops at the first frame that
was not synced (each frame is checksummed, the chain ends there), so the database stays consistent.
The worker does the same with its own transactions (`WalFile`, `gateway.pipeline.worker`): a batch of requests
that waits for the worker's chunk to end then waits for its COMMIT only, not for the disk as well.

The file is opened read-only and kept open for the process's life: SQLite keeps no locks on the WAL file
itself (they live in the -shm file), so this descriptor cannot disturb them.
"""

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from store.db import StoreUnavailable

log = logging.getLogger("gateway.ingest")
Done = Callable[[Exception | None], None]
# Syncs in flight at once: a batch committed while one sync runs starts the next at once instead of waiting
# for it to end (measured, docs/PERFORMANCE.md).
_THREADS = 2


class WalFile:
    """The WAL of `database`, synced on demand. Opened at the first sync (a commit came first, so it exists),
    read-only, and kept open."""

    def __init__(self, database: Path) -> None:
        self._path = Path(f"{database}-wal")
        self._fd: int | None = None
        self._opening = threading.Lock()

    def sync(self) -> None:
        """Everything written to the WAL so far is on disk when this returns; StoreUnavailable if it failed."""
        try:
            with self._opening:
                if self._fd is None:
                    self._fd = os.open(self._path, os.O_RDONLY)
                fd = self._fd
            os.fdatasync(fd)
        except OSError as exc:
            raise StoreUnavailable(f"syncing the WAL to disk failed: {exc.strerror or exc}") from exc

    def close(self) -> None:
        with self._opening:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


class WalSync:
    def __init__(self, database: Path, observe: Callable[[float], None] | None = None) -> None:
        """`observe`: called with each sync's duration in seconds (the metrics)."""
        self._wal = WalFile(database)
        self._observe = observe
        self._waiting: list[Done] = []
        self._changed = threading.Condition()
        self._stopping = False
        self._started = False
        self._threads = [threading.Thread(target=self._run, name=f"wal-sync-{n}", daemon=True) for n in range(_THREADS)]

    def start(self) -> None:
        with self._changed:
            self._started = True
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Sync and answer what is waiting, then stop."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        for thread in self._threads:
            if thread.is_alive():
                thread.join()
        self._wal.close()

    def after_commit(self, done: Done) -> None:
        """Call `done(None)` once what was committed so far is on disk, or `done(error)` if syncing failed."""
        with self._changed:
            self._waiting.append(done)
            self._changed.notify()

    def wait(self) -> None:
        """Return once what was committed so far is on disk, in a sync shared with the batches of requests;
        StoreUnavailable if syncing failed. For a writer that is not answering requests (the worker)."""
        synced = threading.Event()
        errors: list[Exception | None] = []

        def done(error: Exception | None) -> None:
            errors.append(error)
            synced.set()

        with self._changed:
            inline = self._stopping or not self._started  # no thread to sync: sync here
            if not inline:
                self._waiting.append(done)
                self._changed.notify()
        if inline:
            self._wal.sync()
            return
        synced.wait()
        if errors[0] is not None:
            raise errors[0]

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._waiting or self._stopping)
                if not self._waiting:
                    return
                batches, self._waiting = self._waiting, []
            error = self._sync()
            for done in batches:
                try:
                    done(error)
                except Exception:  # one batch's answer (its event loop gone at shutdown) must not stop the rest
                    log.exception("answering a synced batch failed")

    def _sync(self) -> Exception | None:
        started = time.perf_counter()
        try:
            self._wal.sync()
        except StoreUnavailable as exc:
            return exc
        if self._observe is not None:
            self._observe(time.perf_counter() - started)
        return None
