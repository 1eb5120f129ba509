"""Past `max_connections`, a request is answered at once, 503 in the API's error shape with Retry-After, and /healthz
as usual. A process with few file descriptors is not taken down by half-sent requests: `serve` bounds its
connections below its open-file limit, so a connection past the bound is answered at once and closed instead of the
process running out of descriptors (when accept() fails and every request with it); stalled bodies are cut at their
deadline and the gateway serves as before. Real sockets against a `serve` subprocess on loopback, started with an
open-file limit of 128 (soft and hard, as `ulimit -n 128` sets it)."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.adapters import _shopify_deliveries as shopify
from tests.conftest import API_KEY, order, write_config
from tests.gateway._server import HOST, STARTUP_LIMIT_SECONDS, Server, free_port

FILES = 128
HALF_SENT = 150
_LIMITED = (
    "import resource, runpy, sys\n"
    "resource.setrlimit(resource.RLIMIT_NOFILE, ({files}, {files}))\n"
    "sys.argv = ['commerce-gateway', *sys.argv[1:]]\n"
    "runpy.run_module('gateway', run_name='__main__')\n"
)


def _at(port: int) -> list[str]:
    return ["--host", HOST, "--port", str(port)]


def _answered(url: str) -> int | None:
    """The status of GET url, or None when the server gave no HTTP answer (refused, reset, timed out)."""
    try:
        return httpx.get(url, timeout=STARTUP_LIMIT_SECONDS).status_code
    except httpx.TransportError:
        return None


def test_half_sent_requests_do_not_exhaust_a_small_file_limit(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, body_read_timeout="2s", sources={shopify.SOURCE: {"type": "shopify", "secrets": [shopify.SECRET]}}
    )
    port = free_port()
    url = f"http://{HOST}:{port}"
    with (tmp_path / "serve.stderr").open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-c", _LIMITED.format(files=FILES), "serve", "--config", str(config), *_at(port)],
            stdout=subprocess.DEVNULL,
            stderr=err,
            cwd=tmp_path,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        deadline = time.monotonic() + STARTUP_LIMIT_SECONDS
        while _answered(f"{url}/healthz") != 200:
            assert process.poll() is None, (tmp_path / "serve.stderr").read_text()
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.05)

        head = (
            f"POST /webhooks/{shopify.SOURCE} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
            f"Content-Length: 100000\r\n\r\n"
        ).encode() + b"{" * 1000
        stalled = []
        for _ in range(HALF_SENT):
            sock = socket.create_connection((HOST, port), timeout=STARTUP_LIMIT_SECONDS)
            sock.sendall(head)
            stalled.append(sock)

        # More connections than descriptors: the health check still gets an answer (503 while the bound is
        # reached), instead of waiting on a server that cannot accept.
        assert _answered(f"{url}/healthz") in (200, 503)

        # Every half-sent request is answered and closed: past the bound at once, the others at the deadline.
        for sock in stalled:
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
            sock.close()
            assert received.split(b" ", 2)[1] in (b"408", b"503"), received[:200]
            assert b'"code":"' in received, received[:200]  # the API's error shape, not uvicorn's plain text

        assert _answered(f"{url}/healthz") == 200
        headers = {"Authorization": f"Bearer {API_KEY}"}
        response = httpx.post(f"{url}/api/v1/orders", content=json.dumps(order()), headers=headers, timeout=30)
        assert response.status_code == 202, response.text
        log = (tmp_path / "serve.stderr").read_text()
        assert "max_connections lowered to fit the open-file limit" in log
    finally:
        process.kill()
        process.wait(timeout=STARTUP_LIMIT_SECONDS)


def test_past_max_connections_the_answer_is_the_api_error_shape(tmp_path: Path) -> None:
    """Eight clients hold their connection (headers sent, body stalled): the next request is answered 503
    `unavailable` with Retry-After at once, /healthz still 200; once they leave, orders are accepted again."""
    config = write_config(tmp_path, max_connections=8, body_read_timeout="60s")
    with Server(config) as server:
        head = (
            f"POST /api/v1/orders HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {API_KEY}\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
        ).encode()
        held = []
        for _ in range(8):
            sock = socket.create_connection((HOST, server.port), timeout=STARTUP_LIMIT_SECONDS)
            sock.sendall(head)
            held.append(sock)
        with server.client() as client:
            busy = client.post("/api/v1/orders", content=json.dumps(order()))
            assert busy.status_code == 503, busy.text
            assert busy.headers["content-type"] == "application/json"
            assert busy.headers["retry-after"] == "1"
            assert busy.headers["connection"] == "close"
            error = busy.json()["error"]
            assert error["code"] == "unavailable" and "max_connections" in error["message"]
            assert client.get("/api/v1/jobs").json()["error"]["code"] == "unavailable"
            assert client.get("/healthz").status_code == 200
        for sock in held:
            sock.close()
        deadline = time.monotonic() + STARTUP_LIMIT_SECONDS
        with server.client() as client:
            while (accepted := client.post("/api/v1/orders", content=json.dumps(order()))).status_code == 503:
                assert time.monotonic() < deadline, "the closed connections were never let go"
        assert accepted.status_code == 202, accepted.text
