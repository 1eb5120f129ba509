"""The global event feed, in recording order, for consumers that poll instead of receiving deliveries."""

import json
import sqlite3
from typing import Any

from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.web.context import authorize, gateway_of, iso
from gateway.web.contract import Answer, Contract, Model, api_route, parse_query
from store import events

_MAX_LIMIT = 1000


class FeedQuery(Model):
    after: int = Field(default=0, ge=0, le=2**63 - 1, description="The last eventId seen (0: from the start).")
    limit: int = Field(default=100, ge=1, description="At most this many (above 1000: 1000).")


class FeedEvent(Answer):
    eventId: int = Field(description="Increasing in recording order; the `data.eventId` of deliveries.")
    email: str
    name: str
    properties: dict[str, Any]
    occurredAt: str


class Feed(Answer):
    events: list[FeedEvent]
    nextAfter: int = Field(description="Pass as `after` next time: the last eventId here, or `after` if none.")


async def event_feed(request: Request) -> Response:
    gateway = gateway_of(request)
    authorize(gateway, request)
    query = parse_query(FeedQuery, request)
    after, limit = query.after, min(query.limit, _MAX_LIMIT)

    def read(conn: sqlite3.Connection) -> dict[str, Any]:
        found = events.feed(conn, after, limit)
        page = {
            "events": [
                {
                    "eventId": event_id,
                    "email": email,
                    "name": name,
                    "properties": json.loads(props),
                    "occurredAt": iso(at),
                }
                for event_id, email, name, props, at in found
            ],
            "nextAfter": found[-1][0] if found else after,
        }
        return Feed.model_validate(page).model_dump()

    return JSONResponse(await gateway.reads.run(read))


ROUTES = [
    api_route(
        "/api/v1/events",
        event_feed,
        "GET",
        Contract(
            "Every event in recording order",
            "reads",
            {200: Feed},
            (401, 422),
            query=FeedQuery,
            description="For consumers that poll: start at `after=0`, then pass `nextAfter`.",
        ),
    )
]
