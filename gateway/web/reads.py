"""The read API: ledger orders, subscribers with their revenue attributes and events, sources, health."""

import json
import sqlite3
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.web import errors
from gateway.web.context import authorize, gateway_of, iso
from gateway.web.service import Gateway
from store import events, ledger, privacy, subscribers


async def get_order(request: Request) -> Response:
    gateway = gateway_of(request)
    authorize(gateway, request)
    source = request.query_params.get("source", "api")
    row = ledger.get(gateway.reader, source, request.path_params["order_id"])
    if row is None:
        raise errors.NotFound(f"No order with this id from source '{source}'.")
    return JSONResponse(ledger.as_api(row))


def _subscriber(gateway: Gateway, email: str) -> dict[str, Any]:
    row = subscribers.get(gateway.reader, email.strip().lower())
    if row is None:
        raise errors.NotFound("No subscriber with this email.")
    return row


def _subscriber_view(gateway: Gateway, row: dict[str, Any]) -> dict[str, Any]:
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
        "createdAt": iso(row["createdAt"]),
        "updatedAt": iso(row["updatedAt"]),
    }


async def get_subscriber(request: Request) -> Response:
    gateway = gateway_of(request)
    authorize(gateway, request)
    row = _subscriber(gateway, request.path_params["email"])
    return JSONResponse(_subscriber_view(gateway, row))


async def export_subscriber(request: Request) -> Response:
    """Everything held about one person (a data subject request): subscriber, all events, ledger orders."""
    gateway = gateway_of(request)
    authorize(gateway, request)
    row = _subscriber(gateway, request.path_params["email"])
    found = privacy.events_for_subscriber(gateway.reader, row["id"])
    return JSONResponse(
        {
            "subscriber": _subscriber_view(gateway, row),
            "events": [
                {"id": event_id, "name": name, "properties": json.loads(props), "occurredAt": iso(at)}
                for event_id, name, props, at in found
            ],
            "orders": privacy.orders_for_email(gateway.reader, row["email"]),
        }
    )


async def get_events(request: Request) -> Response:
    gateway = gateway_of(request)
    authorize(gateway, request)
    row = _subscriber(gateway, request.path_params["email"])
    try:
        after = int(request.query_params.get("after", "0"))
        limit = min(int(request.query_params.get("limit", "1000")), 1000)
    except ValueError:
        raise errors.ValidationFailed(
            "after and limit must be integers.", [{"field": "after", "message": "after and limit must be integers"}]
        ) from None
    found = events.for_subscriber(gateway.reader, row["id"], after, limit)
    return JSONResponse(
        {
            "events": [
                {"id": event_id, "name": name, "properties": json.loads(props), "occurredAt": iso(at)}
                for event_id, name, props, at in found
            ]
        }
    )


async def list_sources(request: Request) -> Response:
    gateway = gateway_of(request)
    authorize(gateway, request)
    return JSONResponse(
        {
            "sources": [
                {"name": name, "type": adapter.provider, "rejectedSignatures": gateway.rejected[name]}
                for name, adapter in sorted(gateway.adapters.items())
            ]
        }
    )


async def healthz(request: Request) -> Response:
    gateway = gateway_of(request)
    try:
        gateway.reader.execute("SELECT 1 FROM jobs LIMIT 1").fetchall()
    except sqlite3.Error:
        raise errors.Unavailable("The database cannot be read.") from None
    return JSONResponse({"status": "ok"})


ROUTES = [
    Route("/api/v1/orders/{order_id:path}", get_order, methods=["GET"]),
    Route("/api/v1/sources", list_sources, methods=["GET"]),
    Route("/api/v1/subscribers/{email}/events", get_events, methods=["GET"]),
    Route("/api/v1/subscribers/{email}/export", export_subscriber, methods=["GET"]),
    Route("/api/v1/subscribers/{email}", get_subscriber, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
]
