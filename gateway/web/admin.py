"""The operator page, `/admin`: server-rendered HTML (Jinja2, one stylesheet, no JavaScript). Login with an API
key into an HttpOnly, SameSite=Strict session cookie; every form POST carries the session's CSRF token. Pages:
overview, jobs (dead ones with replay), a job's trace, subscriber lookup (docs/operations.md, Operator page)."""

import secrets
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from gateway.outbound.replays import replay_destination
from gateway.outbound.views import public_url
from gateway.web import errors
from gateway.web.admin_session import COOKIE, LOGIN_COOKIE, same
from gateway.web.context import gateway_of, read_request_body
from gateway.web.digits import small_number
from gateway.web.reads import source_summaries, subscriber_view
from gateway.web.service import Gateway
from normalizer.emails import stored_form
from normalizer.timefmt import format_instant_us, now_us
from store import automations, job_reads, operator_reads, privacy, queue, segments, subscribers
from store.db import transaction
from store.statuses import JOB_STATUSES

_HERE = Path(__file__).parent
_FORM_LIMIT = 16 * 1024
_PAGE = 50
_REFRESH_SECONDS = 2
_FLASHES = {  # messages after a redirect, by code: a link cannot make the page say anything else
    "replayed": "Replayed: the job is queued again.",
    "not-replayable": "Only a dead or failed job can be replayed.",
    "replayed-all": "Every dead job is queued again.",
    "none-dead": "There was no dead job to replay.",
    "deliveries-replayed": "The destination's dead deliveries are due again.",
    "no-dead-deliveries": "The destination had no dead delivery to replay.",
}
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",  # page addresses carry emails and job ids
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'",
}


def _ago(micros: int, now: int) -> str:
    seconds = max(0, (now - micros) // 1_000_000)
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


_TEMPLATES = Environment(loader=FileSystemLoader(_HERE / "templates"), autoescape=select_autoescape(default=True))
_TEMPLATES.filters["instant"] = format_instant_us
_TEMPLATES.filters["ago"] = _ago

Page = Callable[[Request, Gateway, str], Awaitable[Response]]


def _render(name: str, code: int = 200, **context: Any) -> HTMLResponse:
    html = _TEMPLATES.get_template(f"admin/{name}").render(now=now_us(), **context)
    return HTMLResponse(html, status_code=code, headers=_HEADERS)


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


async def _form(request: Request) -> dict[str, str]:
    # Under the limits every body is read with (the login form takes a body from anyone): never buffered whole.
    raw = await read_request_body(request, _FORM_LIMIT)
    return {key: values[-1] for key, values in parse_qs(raw.decode("utf-8", "replace")).items()}


def _signed_in(handler: Page) -> Callable[[Request], Awaitable[Response]]:
    """Pages need a session (else the login form); a POST needs the session's CSRF token too."""

    async def page(request: Request) -> Response:
        gateway = gateway_of(request)
        nonce = gateway.admin_sessions.nonce(request.cookies.get(COOKIE), time.time())
        if nonce is None:
            return RedirectResponse("/admin/login", status_code=303, headers=_HEADERS)
        csrf = gateway.admin_sessions.csrf(nonce)
        if request.method == "POST" and not same((await _form(request)).get("csrf"), csrf):
            return _render("login.html", 403, title="Expired form", flash="The form expired: try again.", csrf=csrf)
        return await handler(request, gateway, csrf)

    return page


async def login_form(request: Request, failed: bool = False) -> Response:
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
    response = _render("login.html", 401 if failed else 200, title="Log in", login_csrf=token, failed=failed)
    response.set_cookie(LOGIN_COOKIE, token, path="/admin", httponly=True, samesite="strict", secure=_secure(request))
    return response


async def login(request: Request) -> Response:
    gateway = gateway_of(request)
    form = await _form(request)
    expected = request.cookies.get(LOGIN_COOKIE)
    if not expected or not same(form.get("csrf"), expected):
        return await login_form(request, failed=False)
    try:
        gateway.keys.check([f"Bearer {form.get('key', '')}"])
    except errors.Unauthorized:
        return await login_form(request, failed=True)
    response = RedirectResponse("/admin", status_code=303, headers=_HEADERS)
    response.set_cookie(
        COOKIE,
        gateway.admin_sessions.issue(time.time()),
        path="/admin",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    response.delete_cookie(LOGIN_COOKIE, path="/admin")
    return response


@_signed_in
async def logout(request: Request, gateway: Gateway, csrf: str) -> Response:
    gateway.admin_sessions.end(request.cookies.get(COOKIE), time.time())
    response = RedirectResponse("/admin/login", status_code=303, headers=_HEADERS)
    response.delete_cookie(COOKIE, path="/admin")
    return response


@_signed_in
async def overview(request: Request, gateway: Gateway, csrf: str) -> Response:
    def read(conn: sqlite3.Connection) -> dict[str, Any]:
        sizes = segments.defined(conn)
        destinations = operator_reads.destinations(conn)
        return {
            "counts": job_reads.counts(conn),
            "oldest": job_reads.oldest(conn),
            "latest_done": job_reads.latest_done(conn),
            # The URL as the API shows it: its credentials and query string may carry the receiver's token.
            "destinations": destinations and [{**d, "url": public_url(d["url"])} for d in destinations],
            "segments": [(name, sizes[name].members if name in sizes else 0) for name in sorted(sizes)],
        }

    data = await gateway.reads.run(read)
    return _render(
        "overview.html",
        title="Overview",
        page="overview",
        csrf=csrf,
        sources=source_summaries(gateway),
        flash=_FLASHES.get(request.query_params.get("flash", "")),
        **data,
    )


@_signed_in
async def jobs(request: Request, gateway: Gateway, csrf: str) -> Response:
    params = request.query_params
    status = params.get("status") or None
    source = params.get("source") or None
    cursor = params.get("cursor") or ""
    if status is not None and status not in JOB_STATUSES:
        status = None
    before = small_number(cursor)
    found, next_id = await gateway.reads.run(lambda conn: job_reads.page(conn, status, source, _PAGE, before))
    heading = "Dead jobs" if status == "dead" else f"{status.capitalize()} jobs" if status else "Jobs"
    return _render(
        "jobs.html",
        title=heading,
        heading=heading + (f" of {source}" if source else ""),
        page="dead" if status == "dead" else "jobs",
        csrf=csrf,
        jobs=found,
        status=status,
        source=source,
        next_cursor=str(next_id) if next_id is not None else None,
        flash=_FLASHES.get(params.get("flash", "")),
    )


@_signed_in
async def job(request: Request, gateway: Gateway, csrf: str) -> Response:
    job_id = request.path_params["job_id"]
    found = await gateway.reads.run(lambda conn: job_reads.get(conn, job_id))
    if found is None:
        return _render("jobs.html", 404, title="No such job", heading="No job with this id", csrf=csrf, jobs=[])
    waiting = found["status"] in ("queued", "processing")
    return _render(
        "job.html",
        title=f"Job {job_id}",
        page="jobs",
        csrf=csrf,
        job=found,
        refresh=_REFRESH_SECONDS if waiting else None,
        flash=_FLASHES.get(request.query_params.get("flash", "")),
    )


def _replay(gateway: Gateway, job_id: str | None) -> list[str]:
    """In a thread of the pool (the write may wait for the lock): re-queue one job, or every dead one."""
    with gateway.writing() as writer, transaction(writer) as conn:
        replayed = queue.replay(conn, job_id, now_us())
    if replayed and gateway.worker is not None:
        gateway.worker.wake.set()
    return replayed


@_signed_in
async def replay(request: Request, gateway: Gateway, csrf: str) -> Response:
    job_id = request.path_params["job_id"]
    replayed = await run_in_threadpool(_replay, gateway, job_id)
    flash = "replayed" if replayed else "not-replayable"
    return RedirectResponse(f"/admin/jobs/{job_id}?flash={flash}", status_code=303, headers=_HEADERS)


@_signed_in
async def replay_dead(request: Request, gateway: Gateway, csrf: str) -> Response:
    replayed = await run_in_threadpool(_replay, gateway, None)
    flash = "replayed-all" if replayed else "none-dead"
    return RedirectResponse(f"/admin/jobs?status=dead&flash={flash}", status_code=303, headers=_HEADERS)


def _replay_deliveries(gateway: Gateway, name: str) -> int:
    """In a thread of the pool (the write may wait for the lock): every dead delivery of one destination."""
    with gateway.writing() as conn:
        replayed = replay_destination(conn, name, "dead", 0, now_us())
    if replayed and gateway.sender is not None:
        gateway.sender.wake()
    return replayed


@_signed_in
async def replay_deliveries(request: Request, gateway: Gateway, csrf: str) -> Response:
    replayed = await run_in_threadpool(_replay_deliveries, gateway, request.path_params["name"])
    flash = "deliveries-replayed" if replayed else "no-dead-deliveries"
    return RedirectResponse(f"/admin?flash={flash}", status_code=303, headers=_HEADERS)


@_signed_in
async def subscriber(request: Request, gateway: Gateway, csrf: str) -> Response:
    email = (request.query_params.get("email") or "").strip()

    def read(conn: sqlite3.Connection) -> dict[str, Any]:
        row = subscribers.get(conn, stored_form(email)) if email else None
        if row is None:
            return {"subscriber": None}
        return {
            "subscriber": subscriber_view(gateway, conn, row),
            "orders": privacy.orders_for_email(conn, row["email"]),
            "events": [
                {**event, "occurredAt": format_instant_us(event["occurredAt"])}
                for event in operator_reads.latest_events(conn, row["id"], _PAGE)
            ],
            "automations": [automation.as_api() for automation in automations.for_subscriber(conn, row["id"], _PAGE)],
            "segments": segments.of_subscriber(conn, row["id"]),
        }

    data = await gateway.reads.run(read)
    return _render("subscriber.html", title="Subscriber lookup", page="subscribers", csrf=csrf, email=email, **data)


async def stylesheet(request: Request) -> Response:
    return FileResponse(
        _HERE / "static" / "admin.css", media_type="text/css", headers={"Cache-Control": "max-age=3600"}
    )


# HTML pages, not part of the API contract: left out of the OpenAPI document.
ROUTES = [
    Route("/admin", overview, methods=["GET"], include_in_schema=False),
    Route("/admin/login", login_form, methods=["GET"], include_in_schema=False),
    Route("/admin/login", login, methods=["POST"], include_in_schema=False),
    Route("/admin/logout", logout, methods=["POST"], include_in_schema=False),
    Route("/admin/jobs", jobs, methods=["GET"], include_in_schema=False),
    Route("/admin/jobs/replay-dead", replay_dead, methods=["POST"], include_in_schema=False),
    Route("/admin/jobs/{job_id}", job, methods=["GET"], include_in_schema=False),
    Route("/admin/jobs/{job_id}/replay", replay, methods=["POST"], include_in_schema=False),
    Route("/admin/subscribers", subscriber, methods=["GET"], include_in_schema=False),
    Route("/admin/destinations/{name}/replay", replay_deliveries, methods=["POST"], include_in_schema=False),
    Route("/admin/static/admin.css", stylesheet, methods=["GET"], include_in_schema=False),
]
