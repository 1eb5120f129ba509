"""The job API: read one job with its trace, list jobs newest first, replay a dead or failed one."""

import sqlite3
from typing import Any, Literal

from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.web import errors
from gateway.web.context import authorize, gateway_of, iso
from gateway.web.contract import Answer, Contract, Model, api_route, parse_query
from gateway.web.service import Gateway
from normalizer.timefmt import now_us
from store import job_reads, queue
from store.db import transaction

_MAX_LIMIT = 1000
JobStatus = Literal["queued", "processing", "done", "failed", "dead"]


class OrderKey(Answer):
    source: str
    orderId: str


class Produced(Answer):
    orders: list[OrderKey] = Field(description="The ledger orders the job touched.")
    events: list[str] = Field(description="The names of the events it recorded, in recording order.")


class Job(Answer):
    jobId: str
    status: JobStatus
    kind: str = Field(description="`order` (Push Order), `webhook` (a platform delivery) or another job kind.")
    source: str
    topic: str | None
    attempts: int
    error: str | None = Field(description="The last attempt's error, if it failed.")
    warnings: list[str]
    receivedAt: str = Field(description="When the gateway accepted it.")
    finishedAt: str | None = Field(description="When it ended done or dead.")
    nextAttemptAt: str | None = Field(description="When it runs (again), while queued or failed.")
    produced: Produced


class JobAttempt(Answer):
    attempt: int = Field(description="Which attempt of the job failed (a replay numbers them from 1 again).")
    at: str = Field(description="When it failed.")
    error: str = Field(description="What went wrong, named by its kind (never a payload value).")
    outcome: Literal["failed", "dead"] = Field(
        description="`failed`: it runs again at `nextAttemptAt`; `dead`: no more."
    )
    nextAttemptAt: str | None = Field(description="When the next attempt was due; null when the job went dead.")


class JobTrace(Job):
    failedAttempts: list[JobAttempt] = Field(
        description="Every failed attempt, oldest first. A successful attempt has no entry: `finishedAt` says it."
    )


class JobCounts(Answer):
    queued: int
    processing: int
    failed: int
    dead: int


class JobPage(Answer):
    jobs: list[Job]
    nextCursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
    counts: JobCounts


class JobsQuery(Model):
    status: JobStatus | None = Field(default=None, description="Only jobs in this status (default: every status).")
    source: str | None = Field(default=None, description="Only jobs of this source (`api` for Push Order).")
    limit: int = Field(default=100, ge=1, description="At most this many jobs (above 1000: 1000).")
    cursor: str | None = Field(default=None, pattern=r"^[0-9]{1,18}$", description="`nextCursor` of the last page.")


class Replayed(Answer):
    success: Literal[True]
    queued: Literal[True]
    jobId: str


def job_view(job: dict[str, Any]) -> dict[str, Any]:
    """A `job_reads` job with its times as API instants."""
    view = {
        **job,
        "receivedAt": iso(job["receivedAt"]),
        "finishedAt": _instant(job["finishedAt"]),
        "nextAttemptAt": _instant(job["nextAttemptAt"]),
    }
    if "failedAttempts" in job:
        view["failedAttempts"] = [
            {**each, "at": iso(each["at"]), "nextAttemptAt": _instant(each["nextAttemptAt"])}
            for each in job["failedAttempts"]
        ]
    return view


def _instant(micros: int | None) -> str | None:
    return iso(micros) if micros is not None else None


async def get_job(request: Request) -> Response:
    gateway = gateway_of(request)
    authorize(gateway, request)
    job_id = request.path_params["job_id"]
    job = await gateway.reads.run(lambda conn: job_reads.get(conn, job_id))
    if job is None:
        raise errors.NotFound("No job with this id.")
    return JSONResponse(JobTrace.model_validate(job_view(job)).model_dump())


async def replay_job(request: Request) -> Response:
    gateway = gateway_of(request)
    authorize(gateway, request)
    job_id = request.path_params["job_id"]
    # A write may wait up to the busy timeout for another process's writer: in a thread, not the event loop.
    exists, replayed = await run_in_threadpool(_replay, gateway, job_id)
    if not exists:
        raise errors.NotFound("No job with this id.")
    if not replayed:
        raise errors.Conflict("Only dead or failed jobs can be replayed.")
    if gateway.worker is not None:
        gateway.worker.wake.set()
    return JSONResponse({"success": True, "queued": True, "jobId": job_id}, status_code=202)


def _replay(gateway: Gateway, job_id: str) -> tuple[bool, list[str]]:
    """(whether the job exists, the ids re-queued), on the gateway's connection for writes."""
    with gateway.writing() as writer, transaction(writer) as conn:
        exists = conn.execute("SELECT 1 FROM jobs WHERE job_id = ?", (job_id,)).fetchone() is not None
        return exists, queue.replay(conn, job_id, now_us()) if exists else []


async def list_jobs(request: Request) -> Response:
    gateway = gateway_of(request)
    authorize(gateway, request)
    query = parse_query(JobsQuery, request)
    before = int(query.cursor) if query.cursor is not None else None

    def read(conn: sqlite3.Connection) -> dict[str, Any]:
        found, next_id = job_reads.page(conn, query.status, query.source, min(query.limit, _MAX_LIMIT), before)
        page = {
            "jobs": [job_view(job) for job in found],
            "nextCursor": str(next_id) if next_id is not None else None,
            "counts": job_reads.counts(conn),
        }
        return JobPage.model_validate(page).model_dump()

    return JSONResponse(await gateway.reads.run(read))


_JOB_ID = {"job_id": "A jobId as answered when the job was accepted."}
ROUTES = [
    api_route(
        "/api/v1/jobs",
        list_jobs,
        "GET",
        Contract(
            "List jobs, newest first",
            "jobs",
            {200: JobPage},
            (401, 422),
            query=JobsQuery,
            description="Every status unless `status` is given; page with `cursor` = the last page's `nextCursor`.",
        ),
    ),
    api_route(
        "/api/v1/jobs/{job_id}",
        get_job,
        "GET",
        Contract(
            "Read one job, its failed attempts and what it produced",
            "jobs",
            {200: JobTrace},
            (401, 404),
            path_params=_JOB_ID,
        ),
    ),
    api_route(
        "/api/v1/jobs/{job_id}/replay",
        replay_job,
        "POST",
        Contract(
            "Re-queue a dead or failed job",
            "jobs",
            {202: Replayed},
            (401, 404, 409),
            path_params=_JOB_ID,
            description="Its attempts start again from zero.",
        ),
    ),
]
