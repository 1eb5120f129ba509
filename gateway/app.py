"""The HTTP app: Push Order API, webhook intake, read API, health. Every error leaves through `error_body`."""

import gc
import json
import logging
import sqlite3
import sys
import threading
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from contextlib import ExitStack, asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters import Adapter, Delivery, SignatureError
from gateway import errors
from gateway.auth import ApiKeys
from gateway.config import Config
from gateway.engine import Engine
from gateway.ingest import Committer, webhook_job
from gateway.push import PushOrders, read_body
from gateway.turns import WriteTurns
from gateway.worker import Worker
from normalizer.timefmt import format_instant_us, now_us, utcnow
from store import events, ledger, privacy, queue, subscribers
from store.db import Checkpointer, StoreUnavailable, connect, transaction
from store.schema import migrate

log = logging.getLogger("gateway.app")
_SWITCH_SECONDS = 0.001
_DROPPED_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


class Gateway:
    """Everything one running app holds: config, adapters, engine, the committer and the in-process worker."""

    def __init__(self, config: Config, adapters: Mapping[str, Adapter], api_keys: list[str], run_worker: bool) -> None:
        self.config = config
        self.adapters = adapters
        self.keys = ApiKeys(api_keys)
        self.engine = Engine(config.currency, config.fx_rates)
        turns = WriteTurns()
        self.worker = Worker(config, adapters, self.engine, turns) if run_worker else None
        self.committer = Committer(
            config.database, config.durability, on_commit=self.worker.wake.set if self.worker else None, turns=turns
        )
        # Deliveries refused for their signature, per source, since start. Kept in memory on purpose: a forged
        # request must cost the gateway no write.
        self.rejected: Counter[str] = Counter()
        self._stop = threading.Event()
        self._worker_thread: threading.Thread | None = None
        self._resources = ExitStack()
        self._reader: sqlite3.Connection | None = None

    @property
    def reader(self) -> sqlite3.Connection:
        assert self._reader is not None, "the app is not started"
        return self._reader

    def start(self) -> None:
        conn = connect(self.config.database, self.config.durability)
        migrate(conn)
        conn.close()
        self._reader = connect(self.config.database, self.config.durability)
        self.committer.start()
        # The committer and worker threads share the GIL with the event loop; CPython hands it over only every
        # switch interval (5 ms by default), and a request waiting on another thread pays that in latency.
        sys.setswitchinterval(_SWITCH_SECONDS)
        # Everything alive now (modules, config, compiled schemas) lives as long as the process: kept out of
        # the collector's reach, a full collection under load scans only what requests allocate.
        gc.freeze()
        if self.worker is not None:
            self._worker_thread = threading.Thread(target=self.worker.run, args=(self._stop,), name="worker")
            self._worker_thread.start()
        else:
            # The committer's connection leaves checkpoints to others; with no worker here (`--no-worker`, the
            # tests), this process copies its own WAL back, so the file stays bounded without a worker process.
            self.committer.checkpointer = self._resources.enter_context(Checkpointer(self.config.database))

    def stop(self) -> None:
        self.committer.stop()
        self._stop.set()
        if self.worker is not None:
            self.worker.wake.set()
        if self._worker_thread is not None:
            self._worker_thread.join()
        self._resources.close()
        if self._reader is not None:
            self._reader.close()


def _authorize(gateway: Gateway, request: Request) -> None:
    gateway.keys.check(request.headers.get("authorization", ""))


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


async def _body(request: Request, limit: int) -> bytes:
    return await read_body(request.receive, request.headers.get("content-length"), limit)


async def _commit(gateway: Gateway, job: queue.NewJob) -> bool:
    try:
        return await gateway.committer.submit(job)
    except StoreUnavailable:
        raise errors.Unavailable() from None


async def webhook(request: Request) -> Response:
    gateway = _gateway(request)
    source = request.path_params["source"]
    adapter = gateway.adapters.get(source)
    if adapter is None:
        raise errors.NotFound(f"No source named '{source}' is configured.")
    body = await _body(request, gateway.config.max_body_bytes)
    headers = {k: v for k, v in request.headers.items() if k not in _DROPPED_HEADERS}
    delivery = Delivery(source=source, headers=headers, body=body, received_at=utcnow())
    try:
        adapter.verify(delivery)
    except SignatureError as exc:
        gateway.rejected[source] += 1
        log.warning("webhook signature rejected", extra={"source": source, "reason": str(exc)})
        raise errors.BadSignature() from None
    intake = adapter.intake(delivery)
    if intake.action == "ignore":
        return JSONResponse({"success": True, "ignored": True, "reason": intake.reason})
    job = webhook_job(delivery, intake)
    if not await _commit(gateway, job):
        return JSONResponse({"success": True, "duplicate": True})
    if intake.action == "record":
        return JSONResponse({"success": True, "recorded": True, "jobId": job.job_id, "reason": intake.reason})
    return JSONResponse({"success": True, "queued": True, "jobId": job.job_id})


async def get_job(request: Request) -> Response:
    gateway = _gateway(request)
    _authorize(gateway, request)
    job = queue.get(gateway.reader, request.path_params["job_id"])
    if job is None:
        raise errors.NotFound("No job with this id.")
    return JSONResponse(job)


async def replay_job(request: Request) -> Response:
    gateway = _gateway(request)
    _authorize(gateway, request)
    job_id = request.path_params["job_id"]
    if queue.get(gateway.reader, job_id) is None:
        raise errors.NotFound("No job with this id.")
    with transaction(gateway.reader) as conn:
        replayed = queue.replay(conn, job_id, now_us())
    if not replayed:
        raise errors.Conflict("Only dead or failed jobs can be replayed.")
    if gateway.worker is not None:
        gateway.worker.wake.set()
    return JSONResponse({"success": True, "queued": True, "jobId": job_id}, status_code=202)


async def get_order(request: Request) -> Response:
    gateway = _gateway(request)
    _authorize(gateway, request)
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
        "createdAt": _iso(row["createdAt"]),
        "updatedAt": _iso(row["updatedAt"]),
    }


async def get_subscriber(request: Request) -> Response:
    gateway = _gateway(request)
    _authorize(gateway, request)
    row = _subscriber(gateway, request.path_params["email"])
    return JSONResponse(_subscriber_view(gateway, row))


async def export_subscriber(request: Request) -> Response:
    """Everything held about one person (a data subject request): subscriber, all events, ledger orders."""
    gateway = _gateway(request)
    _authorize(gateway, request)
    row = _subscriber(gateway, request.path_params["email"])
    found = privacy.events_for_subscriber(gateway.reader, row["id"])
    return JSONResponse(
        {
            "subscriber": _subscriber_view(gateway, row),
            "events": [
                {"id": event_id, "name": name, "properties": json.loads(props), "occurredAt": _iso(at)}
                for event_id, name, props, at in found
            ],
            "orders": privacy.orders_for_email(gateway.reader, row["email"]),
        }
    )


async def get_events(request: Request) -> Response:
    gateway = _gateway(request)
    _authorize(gateway, request)
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
                {"id": event_id, "name": name, "properties": json.loads(props), "occurredAt": _iso(at)}
                for event_id, name, props, at in found
            ]
        }
    )


async def list_sources(request: Request) -> Response:
    gateway = _gateway(request)
    _authorize(gateway, request)
    return JSONResponse(
        {
            "sources": [
                {"name": name, "type": adapter.provider, "rejectedSignatures": gateway.rejected[name]}
                for name, adapter in sorted(gateway.adapters.items())
            ]
        }
    )


async def list_jobs(request: Request) -> Response:
    gateway = _gateway(request)
    _authorize(gateway, request)
    status = request.query_params.get("status", "dead")
    if status not in {"queued", "processing", "done", "failed", "dead"}:
        raise errors.ValidationFailed(
            "status must be one of queued, processing, done, failed, dead.",
            [{"field": "status", "message": "unknown status"}],
        )
    try:
        limit = min(int(request.query_params.get("limit", "100")), 1000)
    except ValueError:
        raise errors.ValidationFailed(
            "limit must be an integer.", [{"field": "limit", "message": "not an integer"}]
        ) from None
    return JSONResponse({"jobs": queue.listing(gateway.reader, status, limit), "counts": queue.counts(gateway.reader)})


async def healthz(request: Request) -> Response:
    gateway = _gateway(request)
    try:
        gateway.reader.execute("SELECT 1 FROM jobs LIMIT 1").fetchall()
    except sqlite3.Error:
        raise errors.Unavailable("The database cannot be read.") from None
    return JSONResponse({"status": "ok"})


def _iso(micros: int) -> str:
    return format_instant_us(micros)


async def _gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.GatewayError)
    return JSONResponse(errors.error_body(exc), status_code=exc.status, headers=exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    mapped: errors.GatewayError
    if exc.status_code == 404:
        mapped = errors.NotFound()
    elif exc.status_code == 405:
        mapped = errors.MethodNotAllowed()
    else:
        mapped = errors.GatewayError(str(exc.detail))
        mapped.status = exc.status_code
    return await _gateway_error(request, mapped)


async def _unexpected(request: Request, exc: Exception) -> Response:
    return await _gateway_error(request, errors.answer_for(exc, request.url.path))


def create_app(
    config: Config, adapters: Mapping[str, Adapter], api_keys: list[str], run_worker: bool = True
) -> Starlette:
    gateway = Gateway(config, adapters, api_keys, run_worker)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        gateway.start()
        log.info("gateway started", extra={"sources": sorted(adapters), "worker": run_worker})
        try:
            yield
        finally:
            gateway.stop()
            log.info("gateway stopped")

    app = Starlette(
        routes=[
            Route("/api/v1/orders/{order_id:path}", get_order, methods=["GET"]),
            Route("/api/v1/jobs", list_jobs, methods=["GET"]),
            Route("/api/v1/jobs/{job_id}", get_job, methods=["GET"]),
            Route("/api/v1/sources", list_sources, methods=["GET"]),
            Route("/api/v1/jobs/{job_id}/replay", replay_job, methods=["POST"]),
            Route("/api/v1/subscribers/{email}/events", get_events, methods=["GET"]),
            Route("/api/v1/subscribers/{email}/export", export_subscriber, methods=["GET"]),
            Route("/api/v1/subscribers/{email}", get_subscriber, methods=["GET"]),
            Route("/webhooks/{source}", webhook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        exception_handlers={
            errors.GatewayError: _gateway_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
        # POST /api/v1/orders, the hot path, is answered in front of the app, by `PushOrders`.
        middleware=[
            Middleware(
                PushOrders,
                keys=gateway.keys,
                committer=gateway.committer,
                max_body_bytes=config.max_body_bytes,
            )
        ],
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    return app
