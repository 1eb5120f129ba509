"""`POST /webhooks/{source}`: verify, classify and queue a platform's delivery."""

import re
from dataclasses import replace

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters import Delivery, SignatureError
from gateway.pipeline.ingest import webhook_job
from gateway.web import errors
from gateway.web.context import commit, gateway_of, read_request_body
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


ROUTES = [Route("/webhooks/{source}", webhook, methods=["POST"])]
