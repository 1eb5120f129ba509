"""The three worked examples of docs/custom-platforms.md, as shipped (commented) in config.yaml, end to end:
genuinely signed deliveries of payloads written from the platforms' documentation."""

import json
import re
from typing import Any

import pytest
import yaml
from pydantic import TypeAdapter

from adapters._signatures import Scheme, check_secrets
from adapters.custom import CustomAdapter, CustomOptions
from tests.adapters._custom_deliveries import ROOT, example_source, fixture, hmac_hex, now, stripe_header
from tests.conftest import Harness

STRIPE_SECRET = "whsec_stripe_endpoint_secret_for_tests"
PADDLE_SECRET = "pdl_ntfset_01j2k5secretfortests"
LEMON_SECRET = "lemon-signing-secret"
PI = "pi_3QfA2bLkdIwHu7ix1aBcDeFg"


def _stripe(harness: Harness, name: str) -> Any:
    body = fixture(name)
    headers = {"Stripe-Signature": stripe_header(body, STRIPE_SECRET), "Content-Type": "application/json"}
    return harness.client.post("/webhooks/stripe-checkout", content=body, headers=headers)


def _lemon(harness: Harness, name: str) -> Any:
    body = fixture(name)
    event = json.loads(body)["meta"]["event_name"]
    headers = {"X-Signature": hmac_hex(LEMON_SECRET, body), "X-Event-Name": event, "Content-Type": "application/json"}
    return harness.client.post("/webhooks/lemon-squeezy", content=body, headers=headers)


def test_stripe_checkout_session_then_partial_refund(make_harness: Any) -> None:
    harness = make_harness(sources={"stripe-checkout": example_source("stripe-checkout", [STRIPE_SECRET])})
    accepted = _stripe(harness, "stripe-checkout-session-completed.json")
    assert accepted.status_code == 200, accepted.text
    job_id = accepted.json()["jobId"]
    # Stripe retries an event with a fresh signature; the event id makes it a duplicate.
    assert _stripe(harness, "stripe-checkout-session-completed.json").json() == {"success": True, "duplicate": True}
    harness.drain()
    job = harness.job(job_id)
    assert (job["status"], job["error"], job["warnings"], job["topic"]) == (
        "done",
        None,
        [],
        "checkout.session.completed",
    )
    assert harness.get(f"/api/v1/orders/{PI}", source="stripe-checkout").json() == {
        "source": "stripe-checkout",
        "orderId": PI,
        "orderNumber": "1001",
        "status": "placed",
        "totalCents": 8850,
        "refundedCents": 0,
        "currency": "USD",
        "cancelled": False,
        "fulfilled": False,
        "email": "jenny.rosen@example.com",
        "orderedAt": "2026-06-01T12:00:00.000Z",
        "items": [{"productId": "prod_NppuJWzzNnD5Ut", "title": "Protein Powder", "quantity": 2}],
    }
    subscriber = harness.subscriber("jenny.rosen@example.com")
    assert subscriber["externalId"] == "cus_QfA2bLkdIwHu7i"
    assert subscriber["attributes"] == {"ltv": 88.5, "totalSpent": 88.5, "ordersCount": 1, "aov": 88.5}

    refund = _stripe(harness, "stripe-charge-refunded.json")
    assert refund.status_code == 200, refund.text
    harness.drain()
    assert harness.job(refund.json()["jobId"])["status"] == "done"
    attributes = harness.attributes("jenny.rosen@example.com")
    assert (attributes["totalSpent"], attributes["ordersCount"], attributes["aov"]) == (68.5, 1, 68.5)
    events = harness.events("jenny.rosen@example.com")
    assert [e["name"] for e in events] == ["ecommerce.order_placed", "ecommerce.order_refunded"]
    placed, refunded = (e["properties"] for e in events)
    assert placed == {
        "provider": "custom",
        "source": "stripe-checkout",
        "orderId": PI,
        "orderNumber": "1001",
        "status": "placed",
        "totalCents": 8850,
        "currency": "USD",
        "orderedAt": "2026-06-01T12:00:00.000Z",
        "lineItems": [{"productId": "prod_NppuJWzzNnD5Ut", "title": "Protein Powder", "quantity": 2}],
    }
    # The charge carries no line items and no order number: the ledger's stand.
    assert refunded["refundAmountCents"] == 2000
    assert refunded["lineItems"] == placed["lineItems"]
    assert refunded["orderNumber"] == "1001"
    assert refunded["orderedAt"] == "2026-06-01T12:00:03.000Z"


def test_stripe_unpaid_session_and_other_events_are_acknowledged(make_harness: Any) -> None:
    harness = make_harness(sources={"stripe-checkout": example_source("stripe-checkout", [STRIPE_SECRET])})
    body = fixture("stripe-checkout-session-completed.json").replace(b'"paid"', b'"unpaid"')
    headers = {"Stripe-Signature": stripe_header(body, STRIPE_SECRET)}
    assert harness.client.post("/webhooks/stripe-checkout", content=body, headers=headers).json() == {
        "success": True,
        "ignored": True,
        "reason": "status 'unpaid' is not mapped (mapping.status)",
    }
    body = fixture("stripe-charge-refunded.json").replace(b'"charge.refunded"', b'"charge.captured"')
    headers = {"Stripe-Signature": stripe_header(body, STRIPE_SECRET)}
    assert harness.client.post("/webhooks/stripe-checkout", content=body, headers=headers).json() == {
        "success": True,
        "ignored": True,
        "reason": "event type 'charge.captured' is not handled by this source",
    }
    assert harness.drain() == 0


def test_lemon_squeezy_order_then_partial_refund(make_harness: Any) -> None:
    harness = make_harness(sources={"lemon-squeezy": example_source("lemon-squeezy", [LEMON_SECRET])})
    accepted = _lemon(harness, "lemon-squeezy-order-created.json")
    assert accepted.status_code == 200, accepted.text
    assert _lemon(harness, "lemon-squeezy-order-created.json").json() == {"success": True, "duplicate": True}
    harness.drain()
    assert harness.job(accepted.json()["jobId"])["status"] == "done"
    assert harness.get("/api/v1/orders/1874121", source="lemon-squeezy").json() == {
        "source": "lemon-squeezy",
        "orderId": "1874121",
        "orderNumber": "40511042",
        "status": "placed",
        "totalCents": 5978,
        "refundedCents": 0,
        "currency": "EUR",
        "cancelled": False,
        "fulfilled": False,
        "email": "luca.bianchi@example.com",
        "orderedAt": "2026-06-02T08:15:30.000Z",
        "items": [
            {
                "productId": "118822",
                "title": "Pixel Icons Pro",
                "quantity": 1,
                "variantId": "501177",
                "variantTitle": "Team licence",
                "priceCents": 4900,
            }
        ],
    }
    # EUR 59.78 at 1.08 USD = 64.56 USD (config fx_rates).
    assert harness.attributes("luca.bianchi@example.com") == {
        "ltv": 64.56,
        "totalSpent": 64.56,
        "ordersCount": 1,
        "aov": 64.56,
    }
    placed = harness.events("luca.bianchi@example.com")[0]["properties"]
    assert (placed["storeId"], placed["testMode"], placed["orderedAt"]) == (40511, False, "2026-06-02T08:15:30.000Z")

    refund = _lemon(harness, "lemon-squeezy-order-refunded.json")
    assert refund.status_code == 200, refund.text
    harness.drain()
    assert harness.job(refund.json()["jobId"])["status"] == "done"
    # EUR 40.00 kept at 1.08 = 43.20 USD.
    attributes = harness.attributes("luca.bianchi@example.com")
    assert (attributes["totalSpent"], attributes["ordersCount"]) == (43.2, 1)
    events = harness.events("luca.bianchi@example.com")
    assert [e["name"] for e in events] == ["ecommerce.order_placed", "ecommerce.order_refunded"]
    assert events[1]["properties"]["refundAmountCents"] == 1978


def test_lemon_squeezy_pending_order_is_acknowledged_and_ignored(make_harness: Any) -> None:
    harness = make_harness(sources={"lemon-squeezy": example_source("lemon-squeezy", [LEMON_SECRET])})
    assert _lemon(harness, "lemon-squeezy-order-pending.json").json() == {
        "success": True,
        "ignored": True,
        "reason": "status 'pending' is not mapped (mapping.status)",
    }
    assert harness.drain() == 0


def test_lemon_squeezy_wrong_secret_is_refused(make_harness: Any) -> None:
    harness = make_harness(sources={"lemon-squeezy": example_source("lemon-squeezy", [LEMON_SECRET])})
    body = fixture("lemon-squeezy-order-created.json")
    response = harness.client.post(
        "/webhooks/lemon-squeezy", content=body, headers={"X-Signature": hmac_hex("another-secret", body)}
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def _paddle(harness: Harness, body: bytes, timestamp: int | None = None) -> Any:
    t = now() if timestamp is None else timestamp
    headers = {"Paddle-Signature": f"ts={t};h1={hmac_hex(PADDLE_SECRET, f'{t}:'.encode() + body)}"}
    return harness.client.post("/webhooks/paddle", content=body, headers=headers)


def test_paddle_billing_transaction_completed(make_harness: Any) -> None:
    harness = make_harness(sources={"paddle": example_source("paddle", [PADDLE_SECRET])})
    body = fixture("paddle-transaction-completed.json")
    accepted = _paddle(harness, body)
    assert accepted.status_code == 200, accepted.text
    # Paddle retries a notification with a new signature and the same notification id.
    assert _paddle(harness, body, now() - 20).json() == {"success": True, "duplicate": True}
    harness.drain()
    assert harness.job(accepted.json()["jobId"])["warnings"] == []
    order = harness.get("/api/v1/orders/txn_01j2k5m2n3p4q5r6s7t8v9w0x1", source="paddle").json()
    assert (order["orderNumber"], order["totalCents"], order["currency"], order["email"]) == (
        "325-10566",
        7150,
        "USD",
        "mia.schmidt@example.com",
    )
    assert order["orderedAt"] == "2026-06-03T10:00:03.611Z"
    # The discounted line states no unit price: JMESPath cannot subtract its discount (docs/custom-platforms.md).
    assert order["items"] == [
        {
            "productId": "pro_01j2k4cccccccccccccccccccc",
            "title": "Trail Mix Subscription Box",
            "quantity": 2,
            "priceCents": 2500,
        },
        {"productId": "pro_01j2k4dddddddddddddddddddd", "title": "Insulated Bottle", "quantity": 1},
    ]
    subscriber = harness.subscriber("mia.schmidt@example.com")
    assert subscriber["externalId"] == "ctm_01j2k5f6g7h8j9k0m1n2p3q4r5"
    assert subscriber["attributes"] == {"ltv": 71.5, "totalSpent": 71.5, "ordersCount": 1, "aov": 71.5}
    [placed] = harness.events("mia.schmidt@example.com")
    assert (placed["properties"]["origin"], placed["properties"]["subscriptionId"]) == ("web", None)


def test_paddle_other_events_and_a_bad_signature(make_harness: Any) -> None:
    harness = make_harness(sources={"paddle": example_source("paddle", [PADDLE_SECRET])})
    body = fixture("paddle-transaction-completed.json").replace(b'"transaction.completed"', b'"transaction.paid"')
    assert _paddle(harness, body).json() == {
        "success": True,
        "ignored": True,
        "reason": "event type 'transaction.paid' is not handled by this source",
    }
    t = now()
    forged = {"Paddle-Signature": f"ts={t};h1={hmac_hex('not-the-secret', f'{t}:'.encode() + body)}"}
    assert harness.client.post("/webhooks/paddle", content=body, headers=forged).status_code == 401
    assert harness.drain() == 0


@pytest.mark.parametrize("name", ["stripe-checkout", "lemon-squeezy", "paddle"])
def test_docs_show_the_example_exactly_as_config_yaml_ships_it(name: str) -> None:
    doc = (ROOT / "docs" / "custom-platforms.md").read_text()
    blocks = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", doc, re.S)]
    shown = [block["sources"][name] for block in blocks if name in block.get("sources", {})]
    shipped = example_source(name, [])
    assert [{k: v for k, v in block.items() if k != "secrets"} for block in shown] == [
        {k: v for k, v in shipped.items() if k != "secrets"}
    ]


def test_every_source_in_the_docs_is_a_valid_config() -> None:
    doc = (ROOT / "docs" / "custom-platforms.md").read_text()
    blocks = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", doc, re.S)]
    names = []
    for block in blocks:
        if "signature" in block:  # a signature block on its own
            check_secrets(TypeAdapter(Scheme).validate_python(block["signature"]), ["doc-secret"])
            names.append(block["signature"]["header"])
            continue
        for name, source in block["sources"].items():
            options = CustomOptions.model_validate({**source, "secrets": ["doc-secret"]})
            CustomAdapter(name, options)
            names.append(name)
    assert names == [
        "my-platform",
        "x-webhook-signature",
        "X-Hub-Signature-256",
        "stripe-checkout",
        "lemon-squeezy",
        "paddle",
    ]
