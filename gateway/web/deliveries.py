"""The deliveries and destinations API: list and read deliveries with their attempts, replay one or a
destination's since a time, list destinations with their health, enable a disabled one."""

import sqlite3
from datetime import datetime
from typing import Any, Literal

from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.outbound.replays import ReplayScope, replay_destination, replay_one
from gateway.outbound.views import delivery_view, destination_view
from gateway.web import errors
from gateway.web.bodies import parse
from gateway.web.context import authorize, gateway_of, read_request_body
from gateway.web.contract import Answer, Contract, Model, api_route, parse_query
from gateway.web.service import Gateway
from normalizer.timefmt import now_us, to_micros
from store import deliveries, destinations
from store.db import transaction

_MAX_LIMIT = 1000
DeliveryStatus = Literal["pending", "delivering", "succeeded", "failed", "dead"]


class AttemptView(Answer):
    at: str = Field(description="When the attempt started.")
    statusCode: int | None = Field(description="The receiver's status; null when there was no answer.")
    durationMs: int
    error: str | None = Field(description="Why it failed: `HTTP 500`, `timed out after 15 s`, `refused: …`.")
    responseBody: str | None = Field(description="The first 1 KiB of the receiver's answer.")


class Delivery(Answer):
    deliveryId: str = Field(description="The `webhook-id` every attempt of this delivery carries.")
    destination: str
    eventId: int | None
    type: str | None = Field(description="The event name.")
    status: DeliveryStatus
    attemptCount: int
    createdAt: str
    nextAttemptAt: str | None = Field(description="When a pending or failed delivery goes out next.")


class DeliveryDetail(Delivery):
    attempts: list[AttemptView] = Field(description="Every attempt, oldest first.")


class DeliveryPage(Answer):
    deliveries: list[Delivery]
    nextCursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class DeliveriesQuery(Model):
    destination: str | None = Field(default=None, description="Only this destination's deliveries.")
    status: DeliveryStatus | None = Field(default=None, description="Only deliveries in this status.")
    limit: int = Field(default=100, ge=1, description="At most this many (above 1000: 1000).")
    cursor: str | None = Field(default=None, pattern=r"^[0-9]{1,18}$", description="`nextCursor` of the last page.")


class DeliveryReplayed(Answer):
    success: Literal[True]
    deliveryId: str
    status: Literal["pending"]


class ReplayRequest(Model):
    status: ReplayScope = Field(
        default="undelivered",
        description="`dead`: the dead deliveries; `undelivered`: also the events the destination never got.",
    )
    since: datetime = Field(description="Events recorded since this instant (ISO 8601; without offset: UTC).")


class DestinationReplayed(Answer):
    success: Literal[True]
    replayed: int = Field(description="Deliveries now due.")


class Destination(Answer):
    name: str
    url: str = Field(description="Without credentials or query string.")
    enabled: bool
    disabledAt: str | None
    disabledReason: str | None
    pending: int = Field(description="Deliveries waiting: pending, failed or delivering.")
    dead: int
    failingSince: str | None = Field(description="The first failure since the last success.")
    lastSuccessAt: str | None
    lastFailureAt: str | None


class Destinations(Answer):
    destinations: list[Destination]


async def list_deliveries(request: Request) -> Response:
    gateway = gateway_of(request)
    authorize(gateway, request)
    query = parse_query(DeliveriesQuery, request)
    limit = min(query.limit, _MAX_LIMIT)
    before = int(query.cursor) if query.cursor is not None else None

    def read(conn: sqlite3.Connection) -> dict[str, Any]:
        rows = deliveries.listing(conn, query.destination, query.status, before, limit + 1)
        page = {
            "deliveries": [delivery_view(row) for row in rows[:limit]],
            "nextCursor": str(rows[limit - 1]["cursor"]) if len(rows) > limit else None,
        }
        return DeliveryPage.model_validate(page).model_dump()

    return JSONResponse(await gateway.reads.run(read))


async def get_delivery(request: Request) -> Response:
    gateway = gateway_of(request)
    authorize(gateway, request)
    delivery_id = request.path_params["delivery_id"]
    row = await gateway.reads.run(lambda conn: deliveries.get(conn, delivery_id))
    if row is None:
        raise errors.NotFound("No delivery with this id.")
    return JSONResponse(DeliveryDetail.model_validate(delivery_view(row)).model_dump())


async def replay_delivery(request: Request) -> Response:
    gateway = gateway_of(request)
    authorize(gateway, request)
    delivery_id = request.path_params["delivery_id"]
    # A write may wait up to the busy timeout for another process's writer: in a thread, not the event loop.
    before = await run_in_threadpool(_write, gateway, lambda conn: replay_one(conn, delivery_id, now_us()))
    if before is None:
        raise errors.NotFound("No delivery with this id.")
    if before == "delivering":
        raise errors.Conflict("The delivery is being sent right now.")
    if before == deliveries.UNCONFIGURED:
        raise errors.Conflict("The delivery's destination is no longer configured: nothing would send it.")
    _wake(request)
    return JSONResponse({"success": True, "deliveryId": delivery_id, "status": "pending"}, status_code=202)


async def list_destinations(request: Request) -> Response:
    gateway = gateway_of(request)
    authorize(gateway, request)
    rows = await gateway.reads.run(destinations.listing)
    return JSONResponse(Destinations.model_validate({"destinations": [destination_view(r) for r in rows]}).model_dump())


async def replay_destination_route(request: Request) -> Response:
    gateway = gateway_of(request)
    authorize(gateway, request)
    name = request.path_params["name"]
    # Read under the body limits of every route (size, deadline, budget) and parsed like every other body: the
    # parser's depth limit makes a deeply nested body a 400, not a RecursionError.
    raw = await read_request_body(request, gateway.config.max_body_bytes)
    body = parse(ReplayRequest, raw or b"{}", "The replay request")
    if await gateway.reads.run(lambda conn: destinations.get(conn, name)) is None:
        raise errors.NotFound("No destination with this name is configured.")
    since = to_micros(body.since)
    count = await run_in_threadpool(
        _write, gateway, lambda conn: replay_destination(conn, name, body.status, since, now_us())
    )
    _wake(request)
    return JSONResponse({"success": True, "replayed": count})


async def enable_destination(request: Request) -> Response:
    gateway = gateway_of(request)
    authorize(gateway, request)
    name = request.path_params["name"]

    def enable(conn: sqlite3.Connection) -> bool:
        with transaction(conn):
            return destinations.enable(conn, name)

    if not await run_in_threadpool(_write, gateway, enable):
        raise errors.NotFound("No destination with this name is configured.")
    if gateway.sender is not None:
        gateway.sender.reread()
    row = await gateway.reads.run(lambda conn: destinations.get(conn, name))
    assert row is not None
    return JSONResponse(Destination.model_validate(destination_view(row)).model_dump())


def _write(gateway: Gateway, action: Any) -> Any:
    """`action` on the gateway's connection for writes, in its turn on the write lock (a thread of the pool)."""
    with gateway.writing() as conn:
        return action(conn)


def _wake(request: Request) -> None:
    sender = gateway_of(request).sender
    if sender is not None:
        sender.wake()


_DELIVERY_ID = {"delivery_id": "A deliveryId: the webhook-id of its requests (`msg_…`)."}
_NAME = {"name": "A destination's name in config.yaml."}
ROUTES = [
    api_route(
        "/api/v1/deliveries",
        list_deliveries,
        "GET",
        Contract(
            "List outbound deliveries, newest first",
            "deliveries",
            {200: DeliveryPage},
            (401, 422),
            query=DeliveriesQuery,
        ),
    ),
    api_route(
        "/api/v1/deliveries/{delivery_id}",
        get_delivery,
        "GET",
        Contract(
            "Read a delivery and its attempts",
            "deliveries",
            {200: DeliveryDetail},
            (401, 404),
            path_params=_DELIVERY_ID,
        ),
    ),
    api_route(
        "/api/v1/deliveries/{delivery_id}/replay",
        replay_delivery,
        "POST",
        Contract(
            "Send a delivery again now",
            "deliveries",
            {202: DeliveryReplayed},
            (401, 404, 409),
            path_params=_DELIVERY_ID,
            description="Due at once, its retry schedule started over, the same webhook-id.",
        ),
    ),
    api_route(
        "/api/v1/destinations",
        list_destinations,
        "GET",
        Contract("List destinations with their health", "deliveries", {200: Destinations}, (401,)),
    ),
    api_route(
        "/api/v1/destinations/{name}/replay",
        replay_destination_route,
        "POST",
        Contract(
            "Replay a destination's deliveries since a time",
            "deliveries",
            {200: DestinationReplayed},
            (400, 401, 404, 408, 413, 422),
            body=ReplayRequest,
            path_params=_NAME,
        ),
    ),
    api_route(
        "/api/v1/destinations/{name}/enable",
        enable_destination,
        "POST",
        Contract("Enable a disabled destination", "deliveries", {200: Destination}, (401, 404), path_params=_NAME),
    ),
]
