"""Turns on SQLite's one write lock between the writing threads of one process: the ingest committer and the
in-process worker.

SQLite's busy handler retries a locked BEGIN after a growing sleep (up to 100 ms), while a worker draining a
backlog commits a chunk and begins the next within microseconds, so the committer could wait seconds for a
202. Here the threads queue on a Python lock instead, and the worker, after each chunk, hands the lock over
to a committer that is waiting before it takes the next one. Writers in other processes still meet SQLite's
busy handler.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_HAND_OVER_LIMIT_SECONDS = 1.0  # never let a stuck committer stall the worker for good


class WriteTurns:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition()
        self._ingest_waiting = 0
        self._ingest_turns = 0

    @contextmanager
    def ingest(self) -> Iterator[None]:
        """Hold the write lock for one committer transaction, ahead of the worker's next chunk."""
        with self._changed:
            self._ingest_waiting += 1
        try:
            with self._lock:
                yield
        finally:
            with self._changed:
                self._ingest_waiting -= 1
                self._ingest_turns += 1
                self._changed.notify_all()

    @contextmanager
    def background(self) -> Iterator[None]:
        """Hold the write lock for one worker transaction; on release, let a waiting committer go first."""
        with self._lock:
            yield
        with self._changed:
            if self._ingest_waiting:
                turns = self._ingest_turns
                self._changed.wait_for(lambda: self._ingest_turns != turns, _HAND_OVER_LIMIT_SECONDS)
