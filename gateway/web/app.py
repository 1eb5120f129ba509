"""The Starlette app: the route table of every route module, the Push Order fast path in front, and the
handlers through which every error leaves as one JSON body."""

import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from adapters import Adapter
from gateway.config import Config
from gateway.engine.orders import Engine
from gateway.web import (
    admin,
    automations,
    catalog,
    deliveries,
    errors,
    feed,
    jobs,
    metrics_endpoint,
    openapi,
    push_orders,
    reads,
    segments,
    webhooks,
)
from gateway.web.push_orders import PushOrders
from gateway.web.scrape import CountRequests
from gateway.web.service import Gateway
from store.db import StoreUnavailable

log = logging.getLogger("gateway.web")
ROUTES = [
    *push_orders.ROUTES,
    *reads.ROUTES,
    *jobs.ROUTES,
    *webhooks.ROUTES,
    *catalog.ROUTES,
    *automations.ROUTES,
    *segments.ROUTES,
    *metrics_endpoint.ROUTES,
    *openapi.ROUTES,
    *deliveries.ROUTES,
    *feed.ROUTES,
    *admin.ROUTES,
]


async def _gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.GatewayError)
    return JSONResponse(errors.error_body(exc), status_code=exc.status, headers=exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    mapped: errors.GatewayError
    if exc.status_code == 404:
        mapped = errors.NotFound()
    elif exc.status_code == 405:
        mapped = errors.MethodNotAllowed()
    else:
        mapped = errors.GatewayError(str(exc.detail))
        mapped.status = exc.status_code
    return await _gateway_error(request, mapped)


async def _unexpected(request: Request, exc: Exception) -> Response:
    return await _gateway_error(request, errors.answer_for(exc, request.url.path))


def exception_handlers() -> dict[Any, Callable[[Request, Exception], Awaitable[Response]]]:
    # The database's own trouble (locked, full, its file lost) is named apart from `Exception`: Starlette answers
    # `Exception` and then raises it again, which closes the client's connection and logs a traceback.
    store_trouble = {StoreUnavailable: _unexpected, sqlite3.OperationalError: _unexpected}
    return {errors.GatewayError: _gateway_error, HTTPException: _http_error, **store_trouble, Exception: _unexpected}


class GatewayApp(Starlette):
    """The Starlette app, with `POST /api/v1/orders` answered by `PushOrders` before the app's middleware and
    routing (the hot path: see `gateway.web.push_orders`)."""

    def __init__(self, push_orders: PushOrders, **settings: Any) -> None:
        super().__init__(**settings)
        self.push_orders = push_orders

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == push_orders.PATH:
            await self.push_orders(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(
    config: Config,
    adapters: Mapping[str, Adapter],
    api_keys: list[str],
    run_worker: bool = True,
    engine: Engine | None = None,
) -> Starlette:
    """The gateway's ASGI app; `engine` (one built from `config`), when the caller already built it to check the
    config, else built here."""
    gateway = Gateway(config, adapters, api_keys, run_worker, engine)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        gateway.start()
        log.info("gateway started", extra={"sources": sorted(adapters), "worker": run_worker})
        try:
            yield
        finally:
            gateway.stop()
            log.info("gateway stopped")

    app = GatewayApp(
        PushOrders(
            keys=gateway.keys,
            committer=gateway.committer,
            max_body_bytes=config.max_body_bytes,
            bodies=gateway.bodies,
            counts=gateway.deliveries,
            requests=gateway.requests if config.metrics_enabled else None,
        ),
        routes=ROUTES,
        exception_handlers=exception_handlers(),
        middleware=[Middleware(CountRequests, counts=gateway.requests)] if config.metrics_enabled else [],
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    return app
