"""The job API: read one job, list jobs by status, replay a dead or failed one."""

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.web import errors
from gateway.web.context import authorize, gateway_of
from normalizer.timefmt import now_us
from store import queue
from store.db import transaction


async def get_job(request: Request) -> Response:
    gateway = gateway_of(request)
    authorize(gateway, request)
    job = queue.get(gateway.reader, request.path_params["job_id"])
    if job is None:
        raise errors.NotFound("No job with this id.")
    return JSONResponse(job)


async def replay_job(request: Request) -> Response:
    gateway = gateway_of(request)
    authorize(gateway, request)
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


async def list_jobs(request: Request) -> Response:
    gateway = gateway_of(request)
    authorize(gateway, request)
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


ROUTES = [
    Route("/api/v1/jobs", list_jobs, methods=["GET"]),
    Route("/api/v1/jobs/{job_id}", get_job, methods=["GET"]),
    Route("/api/v1/jobs/{job_id}/replay", replay_job, methods=["POST"]),
]
