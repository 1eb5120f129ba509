"""The read API: ledger orders, subscribers with their revenue attributes and events, sources, health."""

import json
import sqlite3
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.web import errors
from gateway.web.context import authorize, gateway_of, iso, page_params
from gateway.web.contract import Answer, Contract, Model, api_route, parse_query
from gateway.web.service import Gateway
from normalizer.emails import stored_form
from store import events, ledger, privacy, subscribers
from store import segments as segment_store

_MAX_ID = 2**63 - 1


class OrderQuery(Model):
    source: str = Field(default="api", description="The order's source: `api` (Push Order) or a webhook source.")


class OrderItem(Answer):
    productId: str
    title: str
    quantity: int
    variantId: str | None = None
    sku: str | None = None
    variantTitle: str | None = None
    priceCents: int | None = None


class Order(Answer):
    source: str
    orderId: str
    orderNumber: str | None
    status: Literal["placed", "cancelled", "fulfilled", "refunded"] = Field(
        description="cancelled if cancelled, else refunded if any refund, else fulfilled if fulfilled, else placed."
    )
    totalCents: int
    refundedCents: int
    currency: str
    cancelled: bool
    fulfilled: bool
    email: str | None
    items: list[OrderItem]
    orderedAt: str | None


class Subscriber(Answer):
    email: str
    externalId: str | None
    firstName: str | None
    lastName: str | None
    attributes: dict[str, Any] = Field(description="Custom attributes and the revenue ones: ltv, totalSpent, …")
    segments: list[str] = Field(description="The configured segments the subscriber is in, by name.")
    createdAt: str
    updatedAt: str


class Event(Answer):
    id: int
    name: str
    properties: dict[str, Any]
    occurredAt: str


class EventsQuery(Model):
    after: int = Field(default=0, ge=0, le=_MAX_ID, description="The last event id seen (0: from the start).")
    limit: int = Field(default=1000, ge=1, le=_MAX_ID, description="At most this many (above 1000: 1000).")


class Events(Answer):
    events: list[Event]


class Export(Answer):
    subscriber: Subscriber
    events: list[Event]
    orders: list[Order]


class Source(Answer):
    name: str
    type: str
    received: int
    queued: int
    duplicate: int
    recorded: int
    ignored: int
    rejected: int
    rejectedSignatures: int
    reasons: dict[str, dict[str, int]]


class Sources(Answer):
    sources: list[Source]


class Health(Answer):
    status: Literal["ok"]


async def get_order(request: Request) -> Response:
    gateway = gateway_of(request)
    authorize(gateway, request)
    source = parse_query(OrderQuery, request).source
    order_id = request.path_params["order_id"]

    def read(conn: sqlite3.Connection) -> Response:
        row = ledger.get(conn, source, order_id)
        if row is None:
            raise errors.NotFound(f"No order with this id from source '{source}'.")
        return JSONResponse(ledger.as_api(row))

    return await gateway.reads.run(read)


def _subscriber(conn: sqlite3.Connection, email: str) -> dict[str, Any]:
    row = subscribers.get(conn, stored_form(email))
    if row is None:
        raise errors.NotFound("No subscriber with this email.")
    return row


def subscriber_view(gateway: Gateway, conn: sqlite3.Connection, row: dict[str, Any]) -> dict[str, Any]:
    attributes = {
        **row["attributes"],
        **gateway.engine.revenue_attributes(row["ordersCount"], row["totalSpentCents"]),
    }
    return {
        "email": row["email"],
        "externalId": row["externalId"],
        "firstName": row["firstName"],
        "lastName": row["lastName"],
        "attributes": attributes,
        "segments": [
            name for name in segment_store.of_subscriber(conn, row["id"]) if name in gateway.engine.segments.segments
        ],
        "createdAt": iso(row["createdAt"]),
        "updatedAt": iso(row["updatedAt"]),
    }


def _events(found: Iterable[tuple[int, str, str, int]]) -> list[dict[str, Any]]:
    return [
        {"id": event_id, "name": name, "properties": json.loads(props), "occurredAt": iso(at)}
        for event_id, name, props, at in found
    ]


async def get_subscriber(request: Request) -> Response:
    gateway = gateway_of(request)
    authorize(gateway, request)
    email = request.path_params["email"]
    return await gateway.reads.run(lambda conn: JSONResponse(subscriber_view(gateway, conn, _subscriber(conn, email))))


async def export_subscriber(request: Request) -> Response:
    """Everything held about one person (a data subject request): subscriber, all events, ledger orders."""
    gateway = gateway_of(request)
    authorize(gateway, request)
    email = request.path_params["email"]

    def read(conn: sqlite3.Connection) -> Response:
        row = _subscriber(conn, email)
        return JSONResponse(
            {
                "subscriber": subscriber_view(gateway, conn, row),
                "events": _events(privacy.events_for_subscriber(conn, row["id"])),
                "orders": privacy.orders_for_email(conn, row["email"]),
            }
        )

    return await gateway.reads.run(read)


async def get_events(request: Request) -> Response:
    gateway = gateway_of(request)
    authorize(gateway, request)
    email = request.path_params["email"]
    after, limit = page_params(request, default_limit=1000, max_limit=1000)

    def read(conn: sqlite3.Connection) -> Response:
        row = _subscriber(conn, email)
        return JSONResponse({"events": _events(events.for_subscriber(conn, row["id"], after, limit))})

    return await gateway.reads.run(read)


def source_summary(gateway: Gateway, name: str, kind: str) -> dict[str, Any]:
    """What a source delivered since the process started (see `DeliveryCounts`)."""
    counts = gateway.deliveries.of(name)
    return {
        "name": name,
        "type": kind,
        "received": sum(counts[outcome] for outcome in ("queued", "duplicate", "recorded", "ignored")),
        **counts,
        "rejectedSignatures": counts["rejected"] if name != "api" else 0,
        "reasons": {outcome: gateway.deliveries.reasons(name, outcome) for outcome in ("ignored", "rejected")},
    }


def source_summaries(gateway: Gateway) -> list[dict[str, Any]]:
    """The Push Order API (source `api`) first, then every configured webhook source by name."""
    named = sorted((name, adapter.provider) for name, adapter in gateway.adapters.items())
    return [source_summary(gateway, name, kind) for name, kind in [("api", "api"), *named]]


async def list_sources(request: Request) -> Response:
    gateway = gateway_of(request)
    authorize(gateway, request)
    return JSONResponse({"sources": source_summaries(gateway)})


async def healthz(request: Request) -> Response:
    gateway = gateway_of(request)
    if gateway.watch is not None and gateway.watch.lost() is not None:
        raise errors.Unavailable(errors.FILE_LOST)
    try:
        gateway.reader.execute("SELECT 1 FROM jobs LIMIT 1").fetchall()
    except sqlite3.Error:
        raise errors.Unavailable("The database cannot be read.") from None
    return JSONResponse({"status": "ok"})


_EMAIL = {"email": "The subscriber's email (any case)."}
ROUTES = [
    api_route(
        "/api/v1/orders/{order_id:path}",
        get_order,
        "GET",
        Contract(
            "Read a ledger order",
            "reads",
            {200: Order},
            (401, 404, 422),
            query=OrderQuery,
            path_params={"order_id": "The platform's order id (may contain slashes)."},
        ),
    ),
    api_route(
        "/api/v1/sources",
        list_sources,
        "GET",
        Contract("What each source delivered since the start", "reads", {200: Sources}, (401,)),
    ),
    api_route(
        "/api/v1/subscribers/{email}/events",
        get_events,
        "GET",
        Contract(
            "A subscriber's events, oldest first",
            "reads",
            {200: Events},
            (401, 404, 422),
            query=EventsQuery,
            path_params=_EMAIL,
        ),
    ),
    api_route(
        "/api/v1/subscribers/{email}/export",
        export_subscriber,
        "GET",
        Contract("Everything held about a subscriber", "reads", {200: Export}, (401, 404), path_params=_EMAIL),
    ),
    api_route(
        "/api/v1/subscribers/{email}",
        get_subscriber,
        "GET",
        Contract("Read a subscriber", "reads", {200: Subscriber}, (401, 404), path_params=_EMAIL),
    ),
    api_route("/healthz", healthz, "GET", Contract("Health", "operations", {200: Health}, auth="none")),
]
