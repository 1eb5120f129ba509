"""What every route handler gets from its request: the running gateway, the key check, query parameters, the
body, the commit."""

import re

from starlette.requests import Request

from gateway.web import errors
from gateway.web.service import Gateway
from normalizer.timefmt import format_instant_us
from store import queue
from store.db import StoreUnavailable


def authorize(gateway: Gateway, request: Request) -> None:
    gateway.keys.check(request.headers.getlist("authorization"))


_INTEGER = re.compile(r"-?[0-9]{1,19}")
_MAX_ID = 2**63 - 1  # SQLite's largest integer


def query_integer(request: Request, name: str, default: int, low: int, high: int | None = None) -> int:
    """An integer query parameter within [low, high], or 422 naming the parameter."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not _INTEGER.fullmatch(raw) or not low <= int(raw) <= (_MAX_ID if high is None else high):
        message = (
            f"must be an integer of at least {low}" if high is None else f"must be an integer from {low} to {high}"
        )
        raise errors.ValidationFailed(f"{name} {message}.", [{"field": name, "message": message}])
    return int(raw)


def page_params(request: Request, default_limit: int, max_limit: int) -> tuple[int, int]:
    """`after` (an id, 0 for the start) and `limit` (1 or more; above `max_limit` it is `max_limit`)."""
    after = query_integer(request, "after", 0, 0, _MAX_ID)
    limit = query_integer(request, "limit", default_limit, 1)
    return after, min(limit, max_limit)


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


async def read_request_body(request: Request, limit: int) -> bytes:
    return await gateway_of(request).bodies.read(request.receive, request.headers.get("content-length"), limit)


async def commit(gateway: Gateway, job: queue.NewJob) -> bool:
    try:
        return await gateway.committer.submit(job)
    except StoreUnavailable as exc:
        raise errors.answer_for(exc, "") from None


def iso(micros: int) -> str:
    return format_instant_us(micros)
