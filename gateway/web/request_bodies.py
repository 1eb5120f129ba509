"""Request bodies, read whole under three limits: a size per body (413), a deadline for the whole body to arrive
(408), and a budget of bytes buffered across every request being read at once (503).

A client that sends its headers and then stops, or trickles its body, would otherwise hold a connection and the
bytes it sent for as long as it likes: 150 such clients on `/webhooks/{source}`, each 4 MiB into its body, took
the process from 255 to 723 MiB and kept it there.
"""

import asyncio

from starlette.requests import ClientDisconnect
from starlette.types import Receive

from gateway.web import errors

# Bodies this small are read outside the budget: an order is ~1 KB, so a flood of large stalled bodies that
# fills the budget never turns away the ordinary traffic. The connection limit bounds what they add up to.
FREE_BYTES = 64 * 1024


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

    async def read(self, receive: Receive, content_length: str | bytes | None, limit: int) -> bytes:
        """The whole body; 413 as soon as it is known to be over `limit` (declared or counted), 408 when it has not
        arrived within the deadline, 503 when buffering it would pass the budget. After 408 or 503 the connection
        is closed: the rest of the body is never read."""
        if content_length is not None and content_length.isdigit() and int(content_length) > limit:
            raise errors.PayloadTooLarge(f"The request body is over the limit of {limit} bytes.")
        try:
            async with asyncio.timeout(self.timeout_seconds):
                return await self._read(receive, limit)
        except TimeoutError:
            raise RequestTimeout(
                f"The request body did not arrive within {self.timeout_seconds:g} s.", headers={"Connection": "close"}
            ) from None

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
            self.buffered -= held
