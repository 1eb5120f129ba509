"""HTTP to one destination: keep-alive connections (httpcore, httpx's HTTP engine), one per request in flight, to
addresses vetted by the SSRF rule. The host is resolved once per new connection, every address it resolves to is
checked, and the socket connects to a vetted address: there is no second lookup. TLS still names the host
(SNI and certificate check) and the Host header is the URL's.

Why connections of our own instead of `httpx.AsyncClient`: the client's pool scans every pooled connection on
each request (a poll() per connection), and its request layers cost as much again; measured figures are in
docs/PERFORMANCE.md ("Measurements behind design choices")."""

import asyncio
import socket
import ssl
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpcore

from gateway.outbound.addresses import Network, vet

_DRAIN_LIMIT = 64 * 1024  # a response body past this closes the connection instead of being read to its end
_KEPT_BODY = 1024


class Refused(httpcore.ConnectError):
    """The destination's host resolves to an address the SSRF rule does not allow."""


class _OneWrite(httpcore.AsyncNetworkStream):
    """Holds what httpcore writes (the request head, then the body) until it reads the answer, and sends it in
    one write: one system call and one packet per request instead of two."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._held: list[bytes] = []

    async def _flush(self, timeout: float | None) -> None:
        if self._held:
            data = b"".join(self._held)
            self._held.clear()
            await self._inner.write(data, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if buffer:
            self._held.append(buffer)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        await self._flush(timeout)
        return await self._inner.read(max_bytes, timeout)

    async def aclose(self) -> None:
        self._held.clear()
        await self._inner.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        await self._flush(timeout)
        return _OneWrite(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class _VettedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, networks: Sequence[Network], private_only: bool) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._networks = networks
        self._private_only = private_only

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            found = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve the host: {exc.strerror or exc}") from None
        addresses = list(dict.fromkeys(str(sockaddr[0]) for *_, sockaddr in found))
        for address in addresses:
            reason = vet(address, self._networks, self._private_only)
            if reason is not None:
                raise Refused(f"refused: {reason}")
        error: Exception = httpcore.ConnectError("the host resolves to no address")
        for address in addresses:  # every one vetted above; the first that answers
            try:
                return _OneWrite(await self._inner.connect_tcp(address, port, timeout, local_address, socket_options))
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error


@dataclass(slots=True)
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes  # the first 1 KiB


class DestinationConnections:
    """Keep-alive connections to one destination URL; as many as requests in flight."""

    def __init__(self, url: str, timeout: float, networks: Sequence[Network], allow_http: bool) -> None:
        parts = urlsplit(url)
        host = parts.hostname or ""
        scheme = parts.scheme.encode()
        port = parts.port or (443 if parts.scheme == "https" else 80)
        self.origin = httpcore.Origin(scheme, host.encode("idna"), port)
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._host_header = host if parts.port is None else f"{host}:{parts.port}"
        if ":" in host:  # an IPv6 literal
            self._host_header = f"[{host}]" + (f":{parts.port}" if parts.port else "")
        self._timeouts = {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}
        self._backend = _VettedBackend(networks, private_only=parts.scheme == "http" and not allow_http)
        self._ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self._idle: list[httpcore.AsyncHTTPConnection] = []

    def _connection(self) -> httpcore.AsyncHTTPConnection:
        return httpcore.AsyncHTTPConnection(
            self.origin, ssl_context=self._ssl, keepalive_expiry=30.0, network_backend=self._backend
        )

    async def post(self, body: bytes, headers: list[tuple[bytes, bytes]]) -> Answer:
        while self._idle:
            conn = self._idle.pop()
            if conn.is_available() and not conn.has_expired():
                try:
                    return await self._exchange(conn, body, headers)
                except (httpcore.RemoteProtocolError, httpcore.ReadError, httpcore.WriteError):
                    # The server closed a kept-alive connection as we reused it: once more on a fresh one.
                    break
            await conn.aclose()
        return await self._exchange(self._connection(), body, headers)

    async def _exchange(
        self, conn: httpcore.AsyncHTTPConnection, body: bytes, headers: list[tuple[bytes, bytes]]
    ) -> Answer:
        request = httpcore.Request(
            b"POST",
            httpcore.URL(scheme=self.origin.scheme, host=self.origin.host, port=self.origin.port, target=self._target),
            headers=[
                (b"Host", self._host_header.encode("idna")),
                (b"Content-Type", b"application/json"),
                (b"Content-Length", str(len(body)).encode()),
                (b"User-Agent", b"commerce-gateway"),
                *headers,
            ],
            content=body,
            extensions={"timeout": self._timeouts},
        )
        try:
            response = await conn.handle_async_request(request)
            kept, total = b"", 0
            try:
                async for chunk in response.aiter_stream():
                    if len(kept) < _KEPT_BODY:
                        kept += chunk[: _KEPT_BODY - len(kept)]
                    total += len(chunk)
                    if total > _DRAIN_LIMIT:
                        break
            finally:
                await response.aclose()
        except BaseException:
            await conn.aclose()
            raise
        if total > _DRAIN_LIMIT or not conn.is_idle():
            await conn.aclose()
        else:
            self._idle.append(conn)
        return Answer(response.status, response.headers, kept)

    async def aclose(self) -> None:
        while self._idle:
            await self._idle.pop().aclose()
