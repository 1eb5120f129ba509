"""Deliveries of erased events: a customer erased by a privacy request takes the deliveries of their events along,
so that the next event recorded gets a delivery of its own and nobody else's event goes out in place of an erased
one."""

import json
from typing import Any

from tests.adapters._shopify_deliveries import SECRET, SOURCE, deliver, raw
from tests.conftest import Harness, order
from tests.gateway.outbound._receiver import Receiver, receiving
from tests.gateway.outbound._support import LOOPBACK, destination, rows, send

KLAUS_REDACT = json.dumps(
    {
        "shop_id": 9007199254900001,
        "shop_domain": "gateway-demo.myshopify.com",
        "customer": {"id": 9007199254741400, "email": "Klaus@Example.de", "phone": None},
        "orders_to_redact": [],
    }
).encode()


def _shop(make_harness: Any, receiver: Receiver) -> Harness:
    """Ann's canonical order, then Klaus's shop order (the latest events): Klaus is then erased."""
    harness: Harness = make_harness(
        sources={SOURCE: {"type": "shopify", "secrets": [SECRET]}},
        destinations={"crm": destination(receiver.url)},
        delivery={"allow_private_networks": LOOPBACK},
    )
    assert harness.post_order(order("ann-1", customer={"email": "ann@example.com"})).status_code == 202
    assert deliver(harness, "orders/updated", raw("orders_updated_multicurrency.json")).status_code == 200
    harness.drain()
    return harness


def _erase_klaus_then_order_for_bea(harness: Harness) -> None:
    assert deliver(harness, "customers/redact", KLAUS_REDACT).status_code == 200
    harness.drain()
    assert harness.post_order(order("bea-1", customer={"email": "bea@example.com"})).status_code == 202


def _emails(receiver: Receiver) -> list[str]:
    return [json.loads(got.body)["data"]["subscriber"]["email"] for got in receiver.received]


def test_an_event_after_an_erasure_gets_its_own_delivery(make_harness: Any) -> None:
    with receiving() as receiver:
        harness = _shop(make_harness, receiver)
        send(harness)
        sent_before = {got.headers["webhook-id"] for got in receiver.received}
        assert len(sent_before) == 3
        _erase_klaus_then_order_for_bea(harness)
        send(harness)
    assert _emails(receiver)[3:] == ["bea@example.com"]
    assert receiver.received[3].headers["webhook-id"] not in sent_before
    listed = harness.get("/api/v1/deliveries").json()["deliveries"]
    assert [d["status"] for d in listed] == ["succeeded", "succeeded"]  # Ann's and Bea's; Klaus's went with him


def test_an_erased_events_waiting_delivery_never_carries_another_event(make_harness: Any) -> None:
    with receiving() as receiver:
        harness = _shop(make_harness, receiver)
        waiting = {d["deliveryId"] for d in harness.get("/api/v1/deliveries").json()["deliveries"]}
        _erase_klaus_then_order_for_bea(harness)
        send(harness)
    assert sorted(_emails(receiver)) == ["ann@example.com", "bea@example.com"]
    bea = next(got for got in receiver.received if b"bea@example.com" in got.body)
    assert bea.headers["webhook-id"] not in waiting  # not the id of one of Klaus's deliveries
    assert rows(harness, "SELECT status, count(*) FROM deliveries GROUP BY status") == [("succeeded", 2)]
