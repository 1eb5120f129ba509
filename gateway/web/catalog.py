"""The catalog API: `POST /api/v1/products` (upsert 1-100 products, answered after the commit) and
`GET /api/v1/products/{productId}`."""

from typing import Any, Literal

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.web import errors
from gateway.web.bodies import parse
from gateway.web.context import authorize, gateway_of, read_request_body
from gateway.web.contract import Answer, Contract, api_route
from gateway.web.service import Gateway
from normalizer.catalog import Product, ProductBatch
from normalizer.timefmt import now_us
from store import catalog
from store.db import transaction


def _upsert(gateway: Gateway, products: list[Product]) -> int:
    """In a thread of the pool: the catalog write, in its turn on the write lock ahead of the worker."""
    lifecycle = gateway.engine.lifecycle
    assert lifecycle is not None, "the engine is built with its lifecycle"
    with gateway.writing() as writer, transaction(writer) as conn:
        return lifecycle.upsert_products(conn, products, "api", now_us())


async def post_products(request: Request) -> Response:
    gateway = gateway_of(request)
    authorize(gateway, request)
    batch = parse(ProductBatch, await read_request_body(request, gateway.config.max_body_bytes), "The product batch")
    triggered = await run_in_threadpool(_upsert, gateway, batch.products)
    if triggered and gateway.worker is not None:
        gateway.worker.wake.set()  # the restock's waiters are told by the worker, in batches
    return JSONResponse({"success": True, "upserted": len(batch.products), "backInStockEventsTriggered": triggered})


async def get_product(request: Request) -> Response:
    gateway = gateway_of(request)
    authorize(gateway, request)
    product_id = request.path_params["product_id"]
    product = await gateway.reads.run(lambda conn: catalog.get(conn, product_id))
    if product is None:
        raise errors.NotFound("No product with this id.")
    return JSONResponse(product)


class Upserted(Answer):
    success: Literal[True]
    upserted: int
    backInStockEventsTriggered: int


class StoredProduct(Answer):
    productId: str
    title: str | None = None
    url: str | None = None
    imageUrl: str | None = None
    priceCents: int | None = None
    currency: str | None = None
    inStock: bool | None = None
    variants: list[dict[str, Any]] | None = None
    replenishment: dict[str, Any] | None = None


ROUTES = [
    api_route(
        "/api/v1/products",
        post_products,
        "POST",
        Contract(
            "Upsert 1-100 products",
            "lifecycle",
            {200: Upserted},
            (400, 401, 408, 413, 422),
            body=ProductBatch,
            description="A field left out keeps its stored value; an explicit null clears it (docs/lifecycle.md).",
        ),
    ),
    api_route(
        "/api/v1/products/{product_id:path}",
        get_product,
        "GET",
        Contract(
            "Read a stored product",
            "lifecycle",
            {200: StoredProduct},
            (401, 404),
            path_params={"product_id": "The product's id."},
        ),
    ),
]
