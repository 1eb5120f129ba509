"""`POST /webhooks/{source}`: verify, classify and queue a platform's delivery."""

import re
from dataclasses import replace
from typing import Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from adapters import Delivery, SignatureError
from gateway.pipeline.ingest import webhook_job
from gateway.web import errors
from gateway.web.context import commit, gateway_of, read_request_body
from gateway.web.contract import Answer, Contract, api_route
from gateway.web.json_depth import MAX_JSON_DEPTH, too_deep
from normalizer.timefmt import utcnow

_DROPPED_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
# Signature headers are not stored with the job: once verified they prove nothing more, and a stored signature
# beside its body is a delivery anyone reading the database could send again.
_SIGNATURE = re.compile(r"signature|hmac", re.IGNORECASE)


def _stored(delivery: Delivery) -> Delivery:
    return replace(delivery, headers={k: v for k, v in delivery.headers.items() if not _SIGNATURE.search(k)})


async def webhook(request: Request) -> Response:
    gateway = gateway_of(request)
    source = request.path_params["source"]
    adapter = gateway.adapters.get(source)
    if adapter is None:
        raise errors.NotFound(f"No source named '{source}' is configured.")
    body = await read_request_body(request, gateway.config.max_body_bytes)
    headers = {k: v for k, v in request.headers.items() if k not in _DROPPED_HEADERS}
    delivery = Delivery(source=source, headers=headers, body=body, received_at=utcnow())
    try:
        adapter.verify(delivery)
    except SignatureError as exc:
        gateway.deliveries.refuse(source, "rejected", str(exc), check=exc.check)
        raise errors.BadSignature(exc.check) from None
    if too_deep(body):
        raise errors.InvalidJson(f"The request body nests JSON deeper than the limit of {MAX_JSON_DEPTH} levels.")
    intake = adapter.intake(delivery)
    if intake.action == "ignore":
        gateway.deliveries.refuse(source, "ignored", intake.reason or "ignored")
        return JSONResponse({"success": True, "ignored": True, "reason": intake.reason})
    job = webhook_job(_stored(delivery), intake)
    if not await commit(gateway, job):
        gateway.deliveries.add(source, "duplicate")
        return JSONResponse({"success": True, "duplicate": True})
    if intake.action == "record":
        gateway.deliveries.add(source, "recorded")
        return JSONResponse({"success": True, "recorded": True, "jobId": job.job_id, "reason": intake.reason})
    gateway.deliveries.add(source, "queued")
    return JSONResponse({"success": True, "queued": True, "jobId": job.job_id})


class WebhookAnswer(Answer):
    """One of: queued (with jobId), duplicate, ignored (with reason), recorded (with jobId and reason)."""

    success: Literal[True]
    queued: bool | None = None
    duplicate: bool | None = None
    ignored: bool | None = None
    recorded: bool | None = None
    jobId: str | None = None
    reason: str | None = None


ROUTES = [
    api_route(
        "/webhooks/{source}",
        webhook,
        "POST",
        Contract(
            "Take a platform's webhook delivery",
            "webhooks",
            {200: WebhookAnswer},
            (400, 401, 404, 408, 413),
            auth="webhook",
            path_params={"source": "A source name of config.yaml `sources`."},
            raw_body="The platform's delivery exactly as sent; verified against the source's secrets.",
            description="No API key: the delivery's signature authenticates it (docs/shopify.md, docs/woocommerce.md,"
            " docs/custom-platforms.md).",
        ),
    )
]
