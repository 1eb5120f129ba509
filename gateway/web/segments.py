"""The segments read API: each configured segment with its member count, and a segment's members by page."""

from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.web import errors
from gateway.web.context import authorize, gateway_of
from gateway.web.contract import Answer, Contract, Model, api_route
from gateway.web.digits import small_number
from store import segments as store

_DEFAULT_LIMIT, _MAX_LIMIT = 100, 1000


async def list_segments(request: Request) -> Response:
    gateway = gateway_of(request)
    authorize(gateway, request)
    stored = await gateway.reads.run(store.defined)
    return JSONResponse(
        {
            "segments": [
                {"name": name, "members": stored[name].members if name in stored else 0}
                for name in sorted(gateway.engine.segments.segments)
            ]
        }
    )


def _page(request: Request) -> tuple[int, int]:
    """(limit, the subscriber id the page starts after) from the query; a bad value is a 422 naming it."""
    problems = []
    limit, after = _DEFAULT_LIMIT, 0
    raw = request.query_params.get("limit")
    if raw is not None:
        wanted = small_number(raw)
        if wanted is not None and 1 <= wanted <= _MAX_LIMIT:
            limit = wanted
        else:
            problems.append({"field": "limit", "message": f"must be an integer from 1 to {_MAX_LIMIT}"})
    cursor = request.query_params.get("cursor")
    if cursor:
        given = small_number(cursor)
        if given is not None:
            after = given
        else:
            problems.append({"field": "cursor", "message": "not a cursor this API returned"})
    if problems:
        raise errors.ValidationFailed("The query has invalid parameters; see details.", problems)
    return limit, after


async def segment_members(request: Request) -> Response:
    gateway = gateway_of(request)
    authorize(gateway, request)
    name = request.path_params["name"]
    if name not in gateway.engine.segments.segments:
        raise errors.NotFound(f"No segment named '{name}' is configured.")
    limit, after = _page(request)
    rows = await gateway.reads.run(lambda conn: store.members(conn, name, after, limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    return JSONResponse(
        {"members": [email for _, email in rows], "nextCursor": str(rows[-1][0]) if more and rows else None}
    )


class SegmentSize(Answer):
    name: str
    members: int


class Segments(Answer):
    segments: list[SegmentSize]


class MembersQuery(Model):
    """What `_page` checks (documented here; the handler words its own 422)."""

    limit: int = Field(default=_DEFAULT_LIMIT, ge=1, le=_MAX_LIMIT)
    cursor: str | None = Field(default=None, pattern=r"^[0-9]{0,18}$", description="`nextCursor` of the last page.")


class Members(Answer):
    members: list[str] = Field(description="Member emails, in a stable order.")
    nextCursor: str | None


ROUTES = [
    api_route(
        "/api/v1/segments",
        list_segments,
        "GET",
        Contract("Configured segments and their sizes", "segments", {200: Segments}, (401,)),
    ),
    api_route(
        "/api/v1/segments/{name}/members",
        segment_members,
        "GET",
        Contract(
            "A segment's members by page",
            "segments",
            {200: Members},
            (401, 404, 422),
            query=MembersQuery,
            path_params={"name": "A segment name of config.yaml `segments`."},
        ),
    ),
]
