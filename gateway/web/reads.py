"""The read API: ledger orders, subscribers with their revenue attributes and events, sources, health."""

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.web import errors
from gateway.web.context import authorize, gateway_of, iso, page_params
from gateway.web.service import Gateway
from normalizer.emails import stored_form
from store import events, ledger, privacy, subscribers
from store import segments as segment_store


async def get_order(request: Request) -> Response:
    gateway = gateway_of(request)
    authorize(gateway, request)
    source = request.query_params.get("source", "api")
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
        "segments": [
            name
            for name in segment_store.of_subscriber(gateway.reader, row["id"])
            if name in gateway.engine.segments.segments
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
    return await gateway.reads.run(lambda conn: JSONResponse(_subscriber_view(gateway, _subscriber(conn, email))))


async def export_subscriber(request: Request) -> Response:
    """Everything held about one person (a data subject request): subscriber, all events, ledger orders."""
    gateway = gateway_of(request)
    authorize(gateway, request)
    email = request.path_params["email"]

    def read(conn: sqlite3.Connection) -> Response:
        row = _subscriber(conn, email)
        return JSONResponse(
            {
                "subscriber": _subscriber_view(gateway, row),
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


ROUTES = [
    Route("/api/v1/orders/{order_id:path}", get_order, methods=["GET"]),
    Route("/api/v1/sources", list_sources, methods=["GET"]),
    Route("/api/v1/subscribers/{email}/events", get_events, methods=["GET"]),
    Route("/api/v1/subscribers/{email}/export", export_subscriber, methods=["GET"]),
    Route("/api/v1/subscribers/{email}", get_subscriber, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
]
