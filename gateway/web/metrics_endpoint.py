"""`GET /metrics` of `serve`: the process's own series and the database-wide gauges (gateway/web/scrape.py).
Who may scrape: `metrics_token`, or loopback clients when none is set (gateway/metrics.py)."""

import sqlite3

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from gateway.metrics import scrape_allowed
from gateway.web import errors
from gateway.web.context import gateway_of
from gateway.web.contract import Contract, api_route


async def metrics(request: Request) -> Response:
    gateway = gateway_of(request)
    config = gateway.config
    if not config.metrics_enabled or gateway.scrape is None:
        raise errors.NotFound("Metrics are turned off (metrics_enabled: false).")
    client = request.client.host if request.client else None
    if len(request.headers.getlist("authorization")) > 1:  # as on every route: which one counts is ambiguous
        raise errors.Unauthorized()
    if not scrape_allowed(config.metrics_token, request.headers.get("authorization"), client):
        if config.metrics_token:
            raise errors.Unauthorized("A valid metrics_token is required (Authorization: Bearer <token>).")
        raise errors.Forbidden("Without a metrics_token, /metrics answers loopback clients only.")
    scrape = gateway.scrape

    def render(conn: sqlite3.Connection) -> bytes:
        with scrape.lock:
            scrape.read(conn)
            return generate_latest(gateway.registry)

    return Response(await gateway.reads.run(render), media_type=CONTENT_TYPE_LATEST)


ROUTES = [
    api_route(
        "/metrics",
        metrics,
        "GET",
        Contract(
            "Prometheus metrics",
            "operations",
            {200: None},
            (401, 403, 404),
            auth="metrics",
            media="text/plain",
            description="The Prometheus text format. With `metrics_token` set, it is the Bearer token; without,"
            " only loopback clients may scrape. 404 when `metrics_enabled` is false.",
        ),
    )
]
