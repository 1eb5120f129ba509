"""The read API's connections: reads run in worker threads, each on a connection of its own, so a long read
(a subscriber with a large event history) never holds up the event loop and the requests waiting on it."""

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import anyio
from starlette.concurrency import run_in_threadpool

from store.db import Durability, connect

_T = TypeVar("_T")


class ReadPool:
    def __init__(self, database: Path, durability: Durability, size: int = 4) -> None:
        self._database = database
        self._durability = durability
        self._size = size
        self._idle: list[sqlite3.Connection] = []
        self._slots: anyio.Semaphore | None = None

    def start(self) -> None:
        self._idle = [connect(self._database, self._durability) for _ in range(self._size)]

    def close(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle = []

    async def run(self, read: Callable[[sqlite3.Connection], _T]) -> _T:
        """`read(connection)` in a worker thread; at most `size` reads at once, the others wait their turn."""
        if self._slots is None:  # created on the loop that serves the requests
            self._slots = anyio.Semaphore(self._size)
        async with self._slots:
            conn = self._idle.pop()
            try:
                return await run_in_threadpool(read, conn)
            finally:
                self._idle.append(conn)
