"""`POST /api/v1/orders` (docs/api.md, Push Order) as plain ASGI, answered before the Starlette app's own stack.

The Push Order endpoint is the one a store hits on every order, so it skips what the other routes use:
the app's middleware (its error middleware, the request counter), routing, the Request object and
JSONResponse. Even as the ASGI endpoint of a `Route` (no Request, no JSONResponse), the route table's routing
and error middleware add ~13 µs of CPU a request, ~10% of a whole request at the gateway's saturated ingest
rate (`bench/push_route.py`, docs/PERFORMANCE.md); the app's middleware alone another ~9 µs. Errors keep the
one shape of `errors.error_body`; `gateway.web.app.GatewayApp` hands every other path to Starlette unchanged.
"""

from collections import Counter
from typing import Any, Literal

import orjson
from pydantic import Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway.pipeline.ingest import Committer
from gateway.web import errors
from gateway.web.auth import ApiKeys
from gateway.web.contract import Answer, Contract, api_route
from gateway.web.delivery_counts import DeliveryCounts
from gateway.web.json_depth import MAX_JSON_DEPTH
from gateway.web.request_bodies import BodyReader, ClientGone
from normalizer import PushOrder
from normalizer.timefmt import now_us
from store import queue

PATH = "/api/v1/orders"
_REFUSED = frozenset({400, 401, 413, 422})  # what the client sent was refused (not: the gateway could not take it)


class PushOrders:
    """The ASGI endpoint of every HTTP request to PATH, whatever its method."""

    def __init__(
        self,
        keys: ApiKeys,
        committer: Committer,
        max_body_bytes: int,
        counts: DeliveryCounts,
        bodies: BodyReader,
        requests: Counter[tuple[str, str, int]] | None = None,
    ) -> None:
        """`requests`: where the metrics count requests by route, method and status (`scrape.CountRequests`,
        which this path does not pass through), or None without metrics."""
        self.keys = keys
        self.committer = committer
        self.max_body_bytes = max_body_bytes
        self.counts = counts
        self.bodies = bodies
        self.requests = requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body: dict[str, Any] | errors.GatewayError
        try:
            if scope["method"] != "POST":
                raise errors.MethodNotAllowed(headers={"Allow": "POST"})
            status, body = await self._accept(scope, receive)
        except ClientGone:
            if self.requests is not None:  # as `CountRequests` counts a request that sent no answer
                self.requests[(PATH, scope["method"], 500)] += 1
            return
        except Exception as exc:
            body = errors.answer_for(exc, PATH)
            status = body.status
        if status == 202:
            self.counts.add("api", "queued")
        elif status in _REFUSED and isinstance(body, errors.GatewayError):
            self.counts.refuse("api", "rejected", body.code)
        try:
            await _respond(send, status, body)
        finally:
            if self.requests is not None:
                self.requests[(PATH, scope["method"], status)] += 1

    async def _accept(self, scope: Scope, receive: Receive) -> tuple[int, dict[str, Any]]:
        authorization: list[str] = []
        content_length = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization.append(value.decode("latin-1"))
            elif name == b"content-length":
                content_length = value
        self.keys.check(authorization)
        raw = await self.bodies.read(receive, content_length, self.max_body_bytes)
        order = parse_order(raw)
        received = now_us()
        job_id = queue.new_job_id("commerce-order", received)
        # Stored normalised and with only the fields the client gave: a field left out must not overwrite what
        # the ledger knows (a refund without items keeps the order's items).
        stored = order.model_dump_json(exclude_unset=True).encode()
        await self.committer.submit(queue.NewJob(job_id, "order", "api", stored, received))
        return 202, {"success": True, "queued": True, "jobId": job_id, "orderId": order.orderId, "status": order.status}


def parse_order(body: bytes) -> PushOrder:
    """A Push Order body, or its error (docs/api.md): bad JSON, not an object, or each field's problem."""
    try:
        return PushOrder.model_validate_json(body)
    except ValidationError as exc:
        problems = exc.errors(include_url=False)
        invalid = next((p for p in problems if p["type"] == "json_invalid"), None)
        if invalid is not None:
            if "recursion limit" in invalid["msg"]:
                raise errors.InvalidJson(
                    f"The request body nests JSON deeper than the parser's limit of {MAX_JSON_DEPTH} levels."
                ) from None
            raise errors.InvalidJson("The request body is not valid JSON.") from None
        if any(p["type"] == "model_type" and not p["loc"] for p in problems):
            raise errors.InvalidJson("The request body must be a JSON object.") from None
        raise errors.ValidationFailed(
            f"The order has {len(problems)} problem{'s' if len(problems) > 1 else ''}; see details.",
            errors.validation_details(exc),
        ) from None


async def _respond(send: Send, status: int, body: dict[str, Any] | errors.GatewayError) -> None:
    headers = [(b"content-type", b"application/json")]
    if isinstance(body, errors.GatewayError):
        headers += [(name.lower().encode(), value.encode()) for name, value in body.headers.items()]
        body = errors.error_body(body)
    content = orjson.dumps(body)
    headers.append((b"content-length", str(len(content)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


class Accepted(Answer):
    success: Literal[True]
    queued: Literal[True]
    jobId: str = Field(description="commerce-order- then the acceptance time and 24 random bits; see GET /api/v1/jobs.")
    orderId: str
    status: str


async def _answered_in_front(request: Request) -> Response:
    """Never reached: `PushOrders` answers this path before the router. The route carries its contract."""
    raise errors.MethodNotAllowed()


ROUTES = [
    api_route(
        PATH,
        _answered_in_front,
        "POST",
        Contract(
            "Push an order",
            "orders",
            {202: Accepted},
            (400, 401, 408, 413, 422),
            body=PushOrder,
            description="Answered 202 once the job is committed; the order is processed by the worker"
            " (docs/api.md, Push Order).",
        ),
        name="push_order",
    )
]
