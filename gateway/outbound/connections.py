"""HTTP/1.1 to one destination: keep-alive connections, one per request in flight, to addresses vetted by the
SSRF rule. The host is resolved once per new connection, every address it resolves to is checked, and the
socket connects to a vetted address: there is no second lookup. TLS still names the host (SNI and certificate
check) and the Host header is the URL's. Redirects are answers like any other: nothing here follows them.

Each connection is an asyncio protocol around an `h11` state machine (the HTTP/1.1 parser httpx's engine uses),
without httpx's request layers or anyio's cancel scopes and locks around every read and write: those cost more
CPU per delivery than everything else the sender does (docs/destinations.md has the measured figures). The
caller bounds a whole exchange, connecting included, with its timeout (`asyncio.timeout`); a connection whose
exchange did not finish is closed, never reused."""

import asyncio
import socket
import ssl
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import h11

from gateway.outbound.addresses import Network, vet

_DRAIN_LIMIT = 64 * 1024  # a response body past this closes the connection instead of being read to its end
_KEPT_BODY = 1024
_USER_AGENT = b"commerce-gateway"


class ConnectionFailed(Exception):
    """No answer: the host could not be resolved or reached, or the connection broke or spoke bad HTTP."""


class Refused(ConnectionFailed):
    """The destination's host resolves to an address the SSRF rule does not allow."""


@dataclass(slots=True)
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]  # names lower-cased
    body: bytes  # the first 1 KiB


class _Connection(asyncio.Protocol):
    """One keep-alive connection: sends a request, gathers its answer as the bytes arrive."""

    def __init__(self) -> None:
        self.http = h11.Connection(h11.CLIENT)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.answered_before = False  # kept alive from an earlier exchange: the server may have closed it since
        self._ended = False  # the end of the stream was handed to h11
        self._waiter: asyncio.Future[Answer] | None = None
        self._status = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._kept = b""
        self._total = 0

    # -- asyncio.Protocol ----------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = typing.cast(asyncio.Transport, transport)  # uvloop's is not an asyncio.Transport subclass

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self.close()  # bytes nobody asked for: the connection cannot be trusted with another request
            return
        self.http.receive_data(data)
        self._read()

    def eof_received(self) -> bool | None:
        self._end()
        return None  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._end()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionFailed("the connection closed before the answer ended"))

    # -- the exchange ------------------------------------------------------------------------------------------
    async def exchange(self, request: h11.Request, body: bytes) -> Answer:
        assert self.transport is not None
        http = self.http
        data = http.send(request) or b""
        data += http.send(h11.Data(data=body)) or b""
        data += http.send(h11.EndOfMessage()) or b""
        waiter: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        self._status, self._headers, self._kept, self._total = 0, [], b"", 0
        self.transport.write(data)  # head and body in one write: one system call, one packet for small bodies
        try:
            answer = await waiter
        except BaseException:
            self.close()  # cancelled (the timeout) or broken: whatever is in flight makes it unusable
            raise
        self.answered_before = True
        if http.our_state is h11.DONE and http.their_state is h11.DONE and not self.closed:
            http.start_next_cycle()
        else:
            self.close()  # the server said `Connection: close`, or the body was past the drain limit
        return answer

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self.http.receive_data(b"")
            self._read()

    def _read(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        http = self.http
        try:
            while True:
                event = http.next_event()
                kind = type(event)
                if kind is h11.Data:
                    chunk = event.data  # type: ignore[union-attr]
                    if len(self._kept) < _KEPT_BODY:
                        self._kept += chunk[: _KEPT_BODY - len(self._kept)]
                    self._total += len(chunk)
                    if self._total > _DRAIN_LIMIT:
                        waiter.set_result(Answer(self._status, self._headers, self._kept))
                        self.close()
                        return
                elif kind is h11.Response:
                    self._status = event.status_code  # type: ignore[union-attr]
                    self._headers = list(event.headers)  # type: ignore[union-attr]
                elif kind is h11.EndOfMessage:
                    waiter.set_result(Answer(self._status, self._headers, self._kept))
                    return
                elif event is h11.NEED_DATA or event is h11.PAUSED:
                    return
                elif kind is h11.ConnectionClosed:
                    waiter.set_exception(ConnectionFailed("the connection closed before the answer ended"))
                    return
                # an InformationalResponse (1xx) precedes the answer: read on
        except h11.RemoteProtocolError as exc:
            cut = "the connection closed before the answer ended"
            waiter.set_exception(ConnectionFailed(cut if self._ended else f"the destination spoke bad HTTP: {exc}"))
            self.close()


class DestinationConnections:
    """Keep-alive connections to one destination URL; as many as requests in flight."""

    def __init__(self, url: str, networks: Sequence[Network], allow_http: bool) -> None:
        parts = urlsplit(url)
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        host_header = self._host if parts.port is None else f"{self._host}:{parts.port}"
        if ":" in self._host:  # an IPv6 literal
            host_header = f"[{self._host}]" + (f":{parts.port}" if parts.port else "")
        self._target = ((parts.path or "/") + (f"?{parts.query}" if parts.query else "")).encode()
        self._fixed = [
            (b"Host", host_header.encode("idna")),
            (b"Content-Type", b"application/json"),
            (b"User-Agent", _USER_AGENT),
        ]
        self._networks = networks
        self._private_only = parts.scheme == "http" and not allow_http
        self._ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self._idle: list[_Connection] = []

    async def post(self, body: bytes, headers: list[tuple[bytes, bytes]]) -> Answer:
        request = h11.Request(
            method=b"POST",
            target=self._target,
            headers=[*self._fixed, (b"Content-Length", str(len(body)).encode()), *headers],
        )
        while self._idle:
            conn = self._idle.pop()
            if conn.closed:
                continue
            try:
                return await self._exchange(conn, request, body)
            except ConnectionFailed:
                if conn.answered_before:
                    break  # the server closed a kept-alive connection as it was reused: once more on a new one
                raise
        return await self._exchange(await self._open(), request, body)

    async def _exchange(self, conn: _Connection, request: h11.Request, body: bytes) -> Answer:
        answer = await conn.exchange(request, body)
        if not conn.closed:
            self._idle.append(conn)
        return answer

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            found = await loop.getaddrinfo(self._host, self._port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        except OSError as exc:
            raise ConnectionFailed(f"cannot resolve the host: {exc.strerror or exc}") from None
        addresses = list(dict.fromkeys(str(sockaddr[0]) for *_, sockaddr in found))
        for address in addresses:
            reason = vet(address, self._networks, self._private_only)
            if reason is not None:
                raise Refused(f"refused: {reason}")
        error = "the host resolves to no address"
        for address in addresses:  # every one vetted above; the first that answers
            try:
                _, conn = await loop.create_connection(
                    _Connection,
                    address,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._ssl is not None else None,
                )
            except OSError as exc:  # ssl.SSLError included: a bad certificate is a failed connection
                error = exc.strerror or str(exc)
                continue
            return conn
        raise ConnectionFailed(f"cannot connect: {error}")

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()
