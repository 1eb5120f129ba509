"""The operator page's rules through the real app: every page needs a session from an API-key login, the
cookie is HttpOnly and SameSite=Strict, every form POST needs the session's CSRF token, and the pages show the
queue, the sources, a job's trace and a subscriber (the browser walk is in test_admin_browser.py)."""

import re
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from adapters import REGISTRY
from gateway.web.admin_session import AdminSessions
from tests.conftest import API_KEY, Harness, order, write_config
from tests.gateway._fake_platform import SECRET, FakePlatform, canonical, deliver
from tests.gateway._server import HOST, STARTUP_LIMIT_SECONDS, Server


@pytest.fixture
def shop(make_harness: Any, monkeypatch: pytest.MonkeyPatch) -> Harness:
    monkeypatch.setitem(REGISTRY, "testplatform", FakePlatform)
    harness: Harness = make_harness(sources={"shop": {"type": "testplatform", "secrets": [SECRET]}})
    return harness


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def log_in(harness: Harness, key: str = API_KEY) -> Any:
    form = harness.client.get("/admin/login")
    return harness.client.post("/admin/login", data={"csrf": csrf_of(form.text), "key": key}, follow_redirects=False)


def test_pages_need_a_session(shop: Harness) -> None:
    for path in ("/admin", "/admin/jobs", "/admin/jobs/x", "/admin/subscribers"):
        response = shop.client.get(path, follow_redirects=False)
        assert (response.status_code, response.headers["location"]) == (303, "/admin/login"), path
    # An API key in a header is not a session.
    with_key = shop.client.get("/admin", headers={"Authorization": f"Bearer {API_KEY}"}, follow_redirects=False)
    assert with_key.status_code == 303


def test_login_sets_an_httponly_strict_cookie_and_a_wrong_key_does_not(shop: Harness) -> None:
    refused = log_in(shop, key="not-a-key-of-this-gateway")
    assert refused.status_code == 401 and "not one of this gateway" in refused.text
    assert "cg_admin" not in shop.client.cookies
    accepted = log_in(shop)
    assert (accepted.status_code, accepted.headers["location"]) == (303, "/admin")
    cookie = next(h for h in accepted.headers.get_list("set-cookie") if h.startswith("cg_admin="))
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower() and "path=/admin" in cookie.lower()
    page = shop.client.get("/admin")
    assert page.status_code == 200 and "<h1>Overview</h1>" in page.text
    assert (
        page.headers["cache-control"] == "no-store"
        and "frame-ancestors 'none'" in page.headers["content-security-policy"]
    )


def test_login_without_its_csrf_token_is_refused(shop: Harness) -> None:
    shop.client.get("/admin/login")
    response = shop.client.post("/admin/login", data={"csrf": "forged", "key": API_KEY}, follow_redirects=False)
    assert response.status_code == 200 and "cg_admin" not in shop.client.cookies


def test_every_form_post_needs_the_session_csrf_token(shop: Harness) -> None:
    dead = deliver(shop, canonical("w-1", mode="broken")).json()["jobId"]
    shop.drain()
    log_in(shop)
    page = shop.client.get(f"/admin/jobs/{dead}")
    token = csrf_of(page.text)
    forged = shop.client.post(f"/admin/jobs/{dead}/replay", data={"csrf": "x" * 64}, follow_redirects=False)
    assert forged.status_code == 403
    assert shop.job(dead)["status"] == "dead"
    replayed = shop.client.post(f"/admin/jobs/{dead}/replay", data={"csrf": token}, follow_redirects=False)
    assert replayed.status_code == 303 and shop.job(dead)["status"] == "queued"
    assert shop.client.post("/admin/logout", data={"csrf": "x"}, follow_redirects=False).status_code == 403
    out = shop.client.post("/admin/logout", data={"csrf": token}, follow_redirects=False)
    assert out.headers["location"] == "/admin/login"
    assert shop.client.get("/admin", follow_redirects=False).status_code == 303


def test_the_pages_show_queue_sources_trace_and_subscriber(shop: Harness) -> None:
    done = shop.post_order(order("order-7", customer={"email": "Page.Person@Example.com"})).json()["jobId"]
    dead = deliver(shop, canonical("w-1", mode="broken")).json()["jobId"]
    deliver(shop, canonical(), topic="customers/update")
    shop.drain()
    log_in(shop)
    overview = shop.client.get("/admin").text
    assert re.search(r'id="count-dead">1<', overview)
    assert "topic &#39;customers/update&#39; is not handled (1)" in overview
    dead_jobs = shop.client.get("/admin/jobs?status=dead").text
    assert dead in dead_jobs and "TranslationError: unexpected shape: no line_items" in dead_jobs
    trace = shop.client.get(f"/admin/jobs/{done}").text
    assert "ecommerce.order_placed" in trace and "api / order-7" in trace and 'id="job-status">done<' in trace
    person = shop.client.get("/admin/subscribers", params={"email": "page.person@example.com"}).text
    assert "order-7" in person and "ecommerce.order_placed" in person and "totalSpent" in person
    assert "No subscriber" in shop.client.get("/admin/subscribers", params={"email": "nobody@example.com"}).text
    assert shop.client.get("/admin/static/admin.css").headers["content-type"].startswith("text/css")


def test_logging_out_ends_the_session_for_every_copy_of_its_cookie(shop: Harness) -> None:
    log_in(shop)
    copied = shop.client.cookies["cg_admin"]  # what a shared machine's browser or a proxy log kept
    token = csrf_of(shop.client.get("/admin").text)
    assert shop.client.post("/admin/logout", data={"csrf": token}, follow_redirects=False).status_code == 303
    shop.client.cookies.set("cg_admin", copied, path="/admin")
    replayed = shop.client.get("/admin", follow_redirects=False)
    assert (replayed.status_code, replayed.headers["location"]) == (303, "/admin/login")
    # A new login is a new session.
    assert log_in(shop).status_code == 303
    assert shop.client.get("/admin", follow_redirects=False).status_code == 200


@pytest.mark.parametrize("cursor", ["\u00b2", "\u0661\u0662", "-1", "9" * 40])
def test_a_hostile_jobs_cursor_shows_the_first_page(shop: Harness, cursor: str) -> None:
    # `str.isdigit` holds for superscripts and other scripts' digits, which `int` refuses or reads as digits.
    shop.post_order(order("order-1"))
    shop.drain()
    log_in(shop)
    page = shop.client.get("/admin/jobs", params={"cursor": cursor})
    assert page.status_code == 200 and "order" in page.text


def test_a_forged_session_cookie_is_the_login_page_not_an_error(shop: Harness) -> None:
    for forged in ("99999999999.nonce.signature", "..", "x"):
        response = shop.client.get("/admin", headers={"Cookie": f"cg_admin={forged}"}, follow_redirects=False)
        assert (response.status_code, response.headers["location"]) == (303, "/admin/login"), forged
    # A Cookie header is Latin-1: byte 0xB2 arrives as "²", a digit to `str.isdigit` that `int` refuses.
    assert AdminSessions().nonce("\u00b2.nonce.signature", time.time()) is None
    # Nor more digits than `int` converts (4,300): a hand-made Cookie header can carry them.
    assert AdminSessions().nonce("1" * 5000 + ".nonce.signature", time.time()) is None


def _answer(sock: socket.socket) -> bytes:
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(4096)
        if not chunk:
            break
        received += chunk
    return received


def test_the_login_form_reads_its_body_under_the_limits_of_every_route(tmp_path: Path) -> None:
    # /admin/login takes a body from anyone: one too large is refused from its Content-Length, before a byte of it
    # is buffered, and one that stops arriving is cut at `body_read_timeout`, as on the API.
    with Server(write_config(tmp_path, body_read_timeout="1s")) as server:
        head = f"POST /admin/login HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        with socket.create_connection((HOST, server.port), timeout=STARTUP_LIMIT_SECONDS) as sock:
            sock.sendall(f"{head}Content-Length: {1 << 30}\r\n\r\n".encode())
            assert _answer(sock).startswith(b"HTTP/1.1 413 ")
        with socket.create_connection((HOST, server.port), timeout=STARTUP_LIMIT_SECONDS) as sock:
            sock.sendall(f"{head}Content-Length: 100\r\n\r\ncsrf=x&key=".encode())
            assert _answer(sock).startswith(b"HTTP/1.1 408 ")
