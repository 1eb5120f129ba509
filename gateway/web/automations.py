"""Lifecycle requests and reads: `POST /api/v1/back-in-stock` and `POST /api/v1/checkouts` (queued, answered
202 once durable, processed by the worker) and `GET /api/v1/subscribers/{email}/automations`."""

import sqlite3
from typing import Literal

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.web import errors
from gateway.web.bodies import parse
from gateway.web.context import authorize, commit, gateway_of, read_request_body
from gateway.web.contract import Answer, Contract, api_route
from normalizer.checkout import BackInStockRequest, Checkout
from normalizer.emails import stored_form
from normalizer.timefmt import now_us
from store import automations, queue, subscribers


async def _queue(request: Request, model: type[BaseModel], kind: str, prefix: str, what: str) -> BaseModel:
    gateway = gateway_of(request)
    authorize(gateway, request)
    accepted = parse(model, await read_request_body(request, gateway.config.max_body_bytes), what)
    received = now_us()
    job_id = queue.new_job_id(prefix, received)
    # Stored normalised, with only the fields given, as Push Orders are.
    body = accepted.model_dump_json(exclude_unset=True).encode()
    await commit(gateway, queue.NewJob(job_id, kind, "api", body, received))
    request.state.job_id = job_id
    return accepted


async def post_back_in_stock(request: Request) -> Response:
    wanted = await _queue(request, BackInStockRequest, "back_in_stock", "commerce-bis", "The request")
    assert isinstance(wanted, BackInStockRequest)
    return JSONResponse(
        {
            "success": True,
            "queued": True,
            "jobId": request.state.job_id,
            "productId": wanted.productId,
            "variantId": wanted.variantId,
        },
        status_code=202,
    )


async def post_checkout(request: Request) -> Response:
    checkout = await _queue(request, Checkout, "checkout", "commerce-checkout", "The checkout")
    assert isinstance(checkout, Checkout)
    return JSONResponse(
        {"success": True, "queued": True, "jobId": request.state.job_id, "checkoutId": checkout.checkoutId},
        status_code=202,
    )


async def get_automations(request: Request) -> Response:
    gateway = gateway_of(request)
    authorize(gateway, request)
    email = stored_form(request.path_params["email"])

    def read(conn: sqlite3.Connection) -> list[automations.Automation]:
        subscriber = subscribers.get(conn, email)
        if subscriber is None:
            raise errors.NotFound("No subscriber with this email.")
        return automations.for_subscriber(conn, subscriber["id"])

    found = await gateway.reads.run(read)
    return JSONResponse({"automations": [automation.as_api() for automation in found]})


class BackInStockQueued(Answer):
    success: Literal[True]
    queued: Literal[True]
    jobId: str
    productId: str
    variantId: str | None


class CheckoutQueued(Answer):
    success: Literal[True]
    queued: Literal[True]
    jobId: str
    checkoutId: str


class AutomationView(Answer):
    flow: str = Field(description="replenishment, back_in_stock or checkout.")
    key: str
    status: Literal["active", "fired", "stopped"]
    startedAt: str
    dueAt: str | None
    firedAt: str | None
    stoppedAt: str | None
    reason: str | None = Field(description="Why it stopped: superseded, order_cancelled, order_refunded.")
    orderId: str | None


class Automations(Answer):
    automations: list[AutomationView]


_QUEUED = (400, 401, 408, 413, 422)
ROUTES = [
    api_route(
        "/api/v1/back-in-stock",
        post_back_in_stock,
        "POST",
        Contract(
            "Ask to be told when a product is back",
            "lifecycle",
            {202: BackInStockQueued},
            _QUEUED,
            body=BackInStockRequest,
        ),
    ),
    api_route(
        "/api/v1/checkouts",
        post_checkout,
        "POST",
        Contract("Report a checkout (abandonment timer)", "lifecycle", {202: CheckoutQueued}, _QUEUED, body=Checkout),
    ),
    api_route(
        "/api/v1/subscribers/{email}/automations",
        get_automations,
        "GET",
        Contract(
            "A subscriber's automations, newest first",
            "lifecycle",
            {200: Automations},
            (401, 404),
            path_params={"email": "The subscriber's email (any case)."},
        ),
    ),
]
