"""Request bodies, read whole under three limits: a size per body (413), a deadline for the whole body to arrive
(408), and a budget of bytes buffered across every request being read at once (503).

A client that sends its headers and then stops, or trickles its body, would otherwise hold a connection and the
bytes it sent for as long as it likes: 150 such clients on `/webhooks/{source}`, each 4 MiB into its body, took
the process from 255 to 723 MiB and kept it there.
"""

import asyncio
import ctypes
import ctypes.util
from collections.abc import Callable
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import Receive

from gateway.web import errors

# Bodies this small are read outside the budget: an order is ~1 KB, so a flood of large stalled bodies that
# fills the budget never turns away the ordinary traffic. The connection limit bounds what they add up to.
FREE_BYTES = 64 * 1024
# Large bodies arrive as many 64 KiB chunks, which glibc serves from its heap rather than from mappings of their
# own; freed, they stay in the process (fragmented, or under a trim threshold glibc raised after the first large
# free). Once this many budget bytes have been released and no large body is being read, the freed memory is
# handed back to the system: a flood of stalled bodies then leaves nothing behind once it is cut off.
TRIM_AFTER_BYTES = 8 * 1024 * 1024


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None under another C library (musl, macOS), where there is nothing to call."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


_TRIM = _malloc_trim()


class ClientGone(ClientDisconnect):
    """The client disconnected before its body arrived: there is nothing to answer."""


class RequestTimeout(errors.GatewayError):
    status, code, message = 408, "request_timeout", "The request body did not arrive in time."


class BodyBudgetExceeded(errors.Unavailable):
    message = "The gateway is receiving too many large request bodies at once; retry shortly."


class BodyReader:
    def __init__(self, timeout_seconds: float, max_buffered_bytes: int) -> None:
        self.timeout_seconds = timeout_seconds
        self.max_buffered_bytes = max_buffered_bytes
        self.buffered = 0  # bytes past FREE_BYTES held by bodies being read now, all requests together
        self.released = 0  # budget bytes given back since memory was last returned to the system
        # The deadline (loop time) of each task reading a body now, the tasks cut at theirs, and the timer that
        # looks at them on each event loop with a read on (one in `serve`; a test client may run several).
        self._reading: dict[asyncio.Task[Any], float] = {}
        self._cut: set[asyncio.Task[Any]] = set()
        self._watches: dict[asyncio.AbstractEventLoop, asyncio.TimerHandle] = {}

    async def read(self, receive: Receive, content_length: str | bytes | None, limit: int) -> bytes:
        """The whole body; 413 as soon as it is known to be over `limit` (declared or counted), 408 when it has not
        arrived within the deadline, 503 when buffering it would pass the budget. After 408 or 503 the connection
        is closed: the rest of the body is never read."""
        if content_length is not None and content_length.isdigit() and int(content_length) > limit:
            raise errors.PayloadTooLarge(f"The request body is over the limit of {limit} bytes.")
        task = asyncio.current_task()
        assert task is not None
        loop = task.get_loop()
        self._reading[task] = loop.time() + self.timeout_seconds
        if loop not in self._watches:
            self._watches[loop] = loop.call_later(self._tick(), self._cut_late, loop)
        try:
            return await self._read(receive, limit)
        except asyncio.CancelledError:
            if task not in self._cut:
                raise
            task.uncancel()
            raise RequestTimeout(
                f"The request body did not arrive within {self.timeout_seconds:g} s.", headers={"Connection": "close"}
            ) from None
        finally:
            del self._reading[task]
            self._cut.discard(task)

    def _tick(self) -> float:
        """How often deadlines are looked at: a body is cut at most this long after its deadline."""
        return min(1.0, self.timeout_seconds / 10)

    def _cut_late(self, loop: asyncio.AbstractEventLoop) -> None:
        """Cancel the reads past their deadline (each raises 408 in `read`); look again while any read is on.

        One timer for every body being read, not one per request: `asyncio.timeout` costs ~6 µs of the event
        loop's CPU a request, a few per cent of a Push Order's (docs/PERFORMANCE.md)."""
        now = loop.time()
        reading = False
        for task, deadline in list(self._reading.items()):  # a copy: another loop's thread may add to it
            if task.get_loop() is not loop:
                continue
            reading = True
            if deadline <= now and task not in self._cut:
                self._cut.add(task)
                task.cancel()
        if reading:
            self._watches[loop] = loop.call_later(self._tick(), self._cut_late, loop)
        else:
            del self._watches[loop]

    async def _read(self, receive: Receive, limit: int) -> bytes:
        chunks = []
        size = held = 0
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientGone()
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise errors.PayloadTooLarge(f"The request body is over the limit of {limit} bytes.")
                if size > FREE_BYTES:
                    more = size - FREE_BYTES - held
                    if self.buffered + more > self.max_buffered_bytes:
                        refused = BodyBudgetExceeded()
                        refused.headers["Connection"] = "close"
                        raise refused
                    self.buffered += more
                    held += more
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return b"".join(chunks)
        finally:
            self._release(held)

    def _release(self, held: int) -> None:
        self.buffered -= held
        self.released += held
        if self.buffered == 0 and self.released >= TRIM_AFTER_BYTES:
            self.released = 0
            if _TRIM is not None:
                _TRIM(0)
