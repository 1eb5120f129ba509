"""The job API: read one job, list jobs by status, replay a dead or failed one."""

import sqlite3

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.web import errors
from gateway.web.context import authorize, gateway_of, query_integer
from normalizer.timefmt import now_us
from store import queue
from store.db import transaction


async def get_job(request: Request) -> Response:
    gateway = gateway_of(request)
    authorize(gateway, request)
    job_id = request.path_params["job_id"]
    job = await gateway.reads.run(lambda conn: queue.get(conn, job_id))
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
    limit = query_integer(request, "limit", 100, 1)

    def read(conn: sqlite3.Connection) -> Response:
        return JSONResponse({"jobs": queue.listing(conn, status, min(limit, 1000)), "counts": queue.counts(conn)})

    return await gateway.reads.run(read)


ROUTES = [
    Route("/api/v1/jobs", list_jobs, methods=["GET"]),
    Route("/api/v1/jobs/{job_id}", get_job, methods=["GET"]),
    Route("/api/v1/jobs/{job_id}/replay", replay_job, methods=["POST"]),
]
