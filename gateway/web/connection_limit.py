"""Past `max_connections`, requests are answered 503 in the API's error shape, and /healthz as usual.

uvicorn bounds the connections it serves (`limit_concurrency`: connections open or requests running): a request
that arrives past the bound is answered at once and its connection closed, so stalled clients cannot take the
process's file descriptors. Its own answer is a plain-text 503; `LimitedHttp`, the HTTP protocol `serve` runs,
answers instead `{"error": {"code": "unavailable", ...}}` with Retry-After, and lets /healthz through to the app
(a probe of a saturated process still learns that it is alive).
"""

import orjson
from uvicorn._types import ASGI3Application, ASGIReceiveCallable, ASGISendCallable, Scope
from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from gateway.web import errors

RETRY_AFTER_SECONDS = 1
_ANSWER = errors.Unavailable(
    "The gateway is serving as many connections as it takes (max_connections); retry shortly.", RETRY_AFTER_SECONDS
)
_BODY = orjson.dumps(errors.error_body(_ANSWER))
_HEADERS = [
    (b"content-type", b"application/json"),
    (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
    (b"content-length", str(len(_BODY)).encode()),
    (b"connection", b"close"),
]
_ALWAYS_SERVED = "/healthz"


async def _at_the_limit(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
    await send({"type": "http.response.start", "status": 503, "headers": _HEADERS, "trailers": False})
    await send({"type": "http.response.body", "body": _BODY, "more_body": False})


class LimitedHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol with the over-limit answer above."""

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        if app is service_unavailable:
            app = self.app if cycle.scope["path"] == _ALWAYS_SERVED else _at_the_limit
        super()._start_asgi_task(cycle, app)
