"""What every route handler gets from its request: the running gateway, the key check, the body, the commit."""

from starlette.requests import Request

from gateway.web import errors
from gateway.web.push_orders import read_body
from gateway.web.service import Gateway
from normalizer.timefmt import format_instant_us
from store import queue
from store.db import StoreUnavailable


def authorize(gateway: Gateway, request: Request) -> None:
    gateway.keys.check(request.headers.get("authorization", ""))


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


async def read_request_body(request: Request, limit: int) -> bytes:
    return await read_body(request.receive, request.headers.get("content-length"), limit)


async def commit(gateway: Gateway, job: queue.NewJob) -> bool:
    try:
        return await gateway.committer.submit(job)
    except StoreUnavailable:
        raise errors.Unavailable() from None


def iso(micros: int) -> str:
    return format_instant_us(micros)
