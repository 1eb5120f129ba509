"""The SSRF rule end to end, with loopback destinations only: refused without allow_private_networks (the
receiver gets nothing), delivered with it."""

from typing import Any

import pytest

from tests.conftest import order
from tests.gateway.outbound._receiver import receiving
from tests.gateway.outbound._support import build, destination, rows, send


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_loopback_destination_is_refused_by_default(make_harness: Any, host: str) -> None:
    with receiving() as receiver:
        url = receiver.url.replace("127.0.0.1", host)
        harness = build(make_harness, {"crm": destination(url)}, allow_private_networks=[], allow_http=True)
        harness.post_order(order())
        assert send(harness) == 1
        assert receiver.received == []
    [delivery] = harness.get("/api/v1/deliveries").json()["deliveries"]
    [attempt] = harness.get(f"/api/v1/deliveries/{delivery['deliveryId']}").json()["attempts"]
    assert attempt["statusCode"] is None
    assert attempt["error"].startswith("refused: ") and "is loopback, not in allow_private_networks" in attempt["error"]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_an_allowed_private_network_is_delivered_to(make_harness: Any, host: str) -> None:
    with receiving() as receiver:
        url = receiver.url.replace("127.0.0.1", host)
        harness = build(make_harness, {"crm": destination(url)}, allow_private_networks=["127.0.0.0/8", "::1/128"])
        harness.post_order(order())
        send(harness)
        [got] = receiver.wait_for(1)
    assert got.headers["host"] == f"{host}:{receiver.port}"
    assert rows(harness, "SELECT status FROM deliveries") == [("succeeded",)]


def test_plain_http_needs_the_network_allowed_even_with_allow_http_off(make_harness: Any) -> None:
    with receiving() as receiver:
        harness = build(make_harness, {"crm": destination(receiver.url)}, allow_private_networks=["10.0.0.0/8"])
        harness.post_order(order())
        send(harness)
        assert receiver.received == []
    assert rows(harness, "SELECT status FROM deliveries") == [("failed",)]
