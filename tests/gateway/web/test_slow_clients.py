"""Slow and stalled clients cannot exhaust the process. Real sockets against a `serve` subprocess on loopback:
clients that send their headers and most of a large body and then stop are cut at the body deadline (408) or
turned away once the bytes buffered for all bodies reach the budget (503), while ordinary orders are answered
as usual; once they are gone, the memory they took is given back."""

import json
import selectors
import socket
import time
from collections import Counter
from pathlib import Path

import httpx

from tests.adapters import _shopify_deliveries as shopify
from tests.conftest import order, write_config
from tests.gateway._server import HOST, STARTUP_LIMIT_SECONDS, Server

STALLED = 150
DECLARED = 4 * 1024 * 1024  # each stalled client declares 4 MiB and sends all of it but the last byte
CHUNK = b"x" * 65536
MB = 1000 * 1000


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _stall(port: int) -> list[socket.socket]:
    """STALLED connections, each with its headers and DECLARED - 1 bytes of body sent, or closed by the server
    on the way (refused); returns them once every one has sent all it will."""
    head = (
        f"POST /webhooks/{shopify.SOURCE} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
        f"X-Shopify-Topic: orders/create\r\nContent-Length: {DECLARED}\r\n\r\n"
    ).encode()
    selector = selectors.DefaultSelector()
    left: dict[socket.socket, int] = {}
    for _ in range(STALLED):
        sock = socket.create_connection((HOST, port))
        sock.sendall(head)
        sock.setblocking(False)
        left[sock] = DECLARED - 1
        selector.register(sock, selectors.EVENT_WRITE)
    sockets = list(left)
    deadline = time.monotonic() + STARTUP_LIMIT_SECONDS
    while selector.get_map():
        assert time.monotonic() < deadline, "the server neither read nor refused the stalled bodies"
        for key, _ in selector.select(timeout=1):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                left[sock] -= sock.send(CHUNK[: left[sock]])
            except OSError:  # refused: the server answered and closed the connection
                left[sock] = 0
            if left[sock] == 0:
                selector.unregister(sock)
    return sockets


def _answers(sockets: list[socket.socket]) -> Counter[str]:
    """Wait until the server has closed every stalled connection; what each was answered."""
    answers: Counter[str] = Counter()
    for sock in sockets:
        sock.setblocking(True)
        sock.settimeout(STARTUP_LIMIT_SECONDS)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
        sock.close()
        if not received.startswith(b"HTTP/1.1 "):
            answers["reset"] += 1  # refused while still sending: the answer was lost with the reset
            continue
        head, _, body = received.partition(b"\r\n\r\n")
        answers[f"{head.split(b' ', 2)[1].decode()} {json.loads(body)['error']['code']}"] += 1
    return answers


def test_stalled_bodies_do_not_stall_orders_and_their_memory_is_given_back(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, body_read_timeout="2s", sources={shopify.SOURCE: {"type": "shopify", "secrets": [shopify.SECRET]}}
    )
    with Server(config) as server, server.client() as client:
        before = _rss(server.pid)
        sockets = _stall(server.port)
        peak = _rss(server.pid)

        # While the stalled bodies are held, orders and health checks are answered as usual.
        for index in range(5):
            started = time.monotonic()
            response = client.post("/api/v1/orders", content=json.dumps(order(f"order-{index}")))
            assert response.status_code == 202, response.text
            assert time.monotonic() - started < 1.0
        assert httpx.get(f"{server.url}/healthz", timeout=STARTUP_LIMIT_SECONDS).status_code == 200

        answers = _answers(sockets)
        # Cut at the deadline (408) or refused past the buffered-bytes budget (503), in the API's error shape;
        # none was read to its end.
        assert set(answers) <= {"408 request_timeout", "503 unavailable", "reset"}, answers
        assert answers["408 request_timeout"] > 0 and sum(answers.values()) == STALLED

        deadline = time.monotonic() + STARTUP_LIMIT_SECONDS
        # Given back to the system, not merely freed inside the process: within 40 MB of where it started.
        while (rss := _rss(server.pid)) >= min(150 * MB, before + 40 * MB):
            assert time.monotonic() < deadline, f"RSS stayed at {rss / MB:.0f} MB (peak {peak / MB:.0f} MB)"
            time.sleep(0.1)
        assert client.get("/api/v1/jobs", params={"status": "queued"}).status_code == 200
