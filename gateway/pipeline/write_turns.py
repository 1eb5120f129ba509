"""Turns on SQLite's one write lock between the writing threads of one process: the ingest committer and the
in-process worker.

SQLite's busy handler retries a locked BEGIN after a growing sleep (up to 100 ms), while a worker draining a
backlog commits a chunk and begins the next within microseconds, so the committer could wait seconds for a
202. Here the threads queue on a Python lock instead, and the worker, after each chunk, hands the lock over
to a committer that is waiting before it takes the next one. Writers in other processes still meet SQLite's
busy handler.
"""

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from store.db import StoreUnavailable

_HAND_OVER_LIMIT_SECONDS = 1.0  # never let a stuck committer stall the worker for good
_BUSY_SECONDS = 0.1  # ingest counts as busy this long after its last turn
_YIELD = 8.0  # under heavy ingest, the worker sleeps this many times as long as each chunk took
_HEAVY_RATE = 2000.0  # accepted requests per second at which the worker yields fully (docs/PERFORMANCE.md)


class WriteTurns:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition()
        self._ingest_waiting = 0
        self._ingest_turns = 0
        self._last_ingest = -1.0
        self._recent = 0.0  # requests accepted, decayed by e^-t (t in seconds): about the rate per second
        self._recent_at = time.monotonic()

    @property
    def ingest_waiting(self) -> bool:
        """A committer waits for the lock: the worker ends its chunk after the current job."""
        return self._ingest_waiting > 0

    @property
    def busy(self) -> bool:
        """Requests are arriving: the committer took a turn within the last _BUSY_SECONDS."""
        return time.monotonic() - self._last_ingest < _BUSY_SECONDS

    def pace(self, worked: float) -> None:
        """Called by the worker after a chunk that took `worked` seconds. While requests are arriving, the worker
        sleeps in proportion to the square of their rate, up to _YIELD times its chunk at _HEAVY_RATE and above
        (1/9 of the time): it shares the GIL with the event loop, whose latency comes first, and the queue is
        durable. At a moderate rate it keeps most of its speed, so the queue does not fall behind while there is
        room (docs/PERFORMANCE.md has the figures)."""
        time.sleep(self.pause(worked))

    def pause(self, worked: float) -> float:
        """How long `pace` sleeps after a chunk of `worked` seconds."""
        if not self.busy:
            return 0.0
        return worked * _YIELD * min(1.0, self._rate() / _HEAVY_RATE) ** 2

    def _rate(self, accepted: int = 0) -> float:
        with self._changed:  # the committer adds, the worker reads
            now = time.monotonic()
            self._recent = self._recent * math.exp(self._recent_at - now) + accepted
            self._recent_at = now
            return self._recent

    def joined(self, requests: int) -> None:
        """`requests` more accepted requests joined a committer transaction after it took its turn."""
        self._rate(requests)

    @contextmanager
    def ingest(self, requests: int = 1, timeout: float | None = None) -> Iterator[None]:
        """Hold the write lock for one committer transaction (of `requests` accepted requests), ahead of the
        worker's next chunk. Waits at most `timeout` seconds (None: for good), then raises StoreUnavailable."""
        with self._changed:
            self._ingest_waiting += 1
        try:
            if not self._lock.acquire(timeout=-1 if timeout is None else max(timeout, 0.0)):
                raise StoreUnavailable("the worker held the write lock past the busy timeout")
            try:
                self._last_ingest = time.monotonic()
                self._rate(requests)
                yield
            finally:
                self._lock.release()
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
