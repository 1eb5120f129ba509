"""The sender's HTTP/1.1 connections against receivers that misbehave: connections closed under it, answers
too long to keep, bad HTTP. Loopback only."""

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.conftest import order
from tests.gateway.outbound._receiver import Reply, receiving
from tests.gateway.outbound._support import build, destination, rows, send


def _attempts(harness: Any) -> list[tuple[Any, ...]]:
    return rows(harness, "SELECT status_code, error, length(response_body) FROM delivery_attempts ORDER BY id")


def test_connections_closed_by_the_receiver_lose_no_delivery(make_harness: Any) -> None:
    replies = [Reply(200, close=True), Reply(200, {"Connection": "close"}), Reply(200, close=True)]
    with receiving(replies, default=Reply(204, close=True)) as receiver:
        harness = build(make_harness, {"crm": destination(receiver.url, max_in_flight=1)})
        for i in range(6):
            harness.post_order(order(f"order-{i}"))
        assert send(harness) == 6
        got = receiver.wait_for(6)
    assert len({r.headers["webhook-id"] for r in got}) == 6
    assert rows(harness, "SELECT DISTINCT status FROM deliveries") == [("succeeded",)]


def test_a_long_answer_keeps_its_first_kilobyte(make_harness: Any) -> None:
    with receiving([Reply(200, body=b"x" * 100_000)], default=Reply(500, body=b"y" * 5_000)) as receiver:
        harness = build(make_harness, {"crm": destination(receiver.url, max_in_flight=1)})
        harness.post_order(order("a"))
        harness.post_order(order("b"))
        assert send(harness) == 2
    assert sorted(_attempts(harness)) == [(200, None, 1024), (500, "HTTP 500", 1024)]


@contextmanager
def _speaking(answer: bytes) -> Iterator[str]:
    """A loopback server that reads one request per connection, writes `answer` and closes."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return  # closed: the test is over
            with conn:
                conn.recv(65536)
                conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/hooks"
    finally:
        server.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone does not)
        server.close()
        thread.join()


def test_bad_http_and_a_cut_answer_are_failed_attempts(make_harness: Any) -> None:
    with (
        _speaking(b"NOT HTTP AT ALL\r\n\r\n") as garbled,
        _speaking(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort") as cut,
    ):
        harness = build(make_harness, {"garbled": destination(garbled), "cut": destination(cut)})
        harness.post_order(order())
        assert send(harness) == 2
    errors = dict(
        rows(
            harness,
            "SELECT d.destination, a.error FROM deliveries AS d JOIN delivery_attempts AS a ON a.delivery_id = d.id",
        )
    )
    assert errors["garbled"].startswith("connection failed: the destination spoke bad HTTP")
    assert errors["cut"] == "connection failed: the connection closed before the answer ended"
    assert rows(harness, "SELECT DISTINCT status FROM deliveries") == [("failed",)]
