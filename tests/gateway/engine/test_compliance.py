"""Privacy commands through the real app: Shopify's customers/redact, shop/redact, customers/data_request,
app/uninstalled, and the subscriber export."""

import json
from typing import Any

from tests.adapters._shopify_deliveries import SOURCE, deliver, headers, raw, shop_harness
from tests.conftest import Harness, order

JANE = "jane.buyer@example.com"
KLAUS = "klaus@example.de"
ORDER_A = "9007199254740993"
ORDER_B = "9007199254741993"
ORDER_K = "9007199254742001"


def queued(response: Any) -> str:
    assert response.status_code == 200, response.text
    job_id: str = response.json()["jobId"]
    return job_id


def shop_with_history(make_harness: Any) -> tuple[Harness, dict[str, str]]:
    """Jane: two shop orders and one canonical order; Klaus: one shop order."""
    harness = shop_harness(make_harness)
    jobs = {
        "a": queued(deliver(harness, "orders/updated", raw("orders_updated_refund.json"))),
        "refund": queued(deliver(harness, "refunds/create", raw("refunds_create.json"))),
        "b": queued(deliver(harness, "orders/fulfilled", raw("orders_fulfilled.json"))),
        "k": queued(deliver(harness, "orders/updated", raw("orders_updated_multicurrency.json"))),
    }
    assert harness.post_order(order("api-1", customer={"email": JANE, "firstName": "Jane"})).status_code == 202
    harness.drain()
    assert harness.attributes(JANE)["ordersCount"] == 3
    return harness, jobs


def bodies(harness: Harness) -> dict[str, bytes]:
    with harness.db() as conn:
        return {row[0]: row[1] for row in conn.execute("SELECT job_id, body FROM jobs WHERE kind = 'webhook'")}


def ledger_person(harness: Harness, order_id: str) -> tuple[str | None, str]:
    with harness.db() as conn:
        email, customer = conn.execute(
            "SELECT email, customer FROM orders WHERE source = ? AND order_id = ?", (SOURCE, order_id)
        ).fetchone()
    return email, customer


REDACTED = b'{"redacted": true}'


def test_customers_redact_erases_the_customer_of_this_shop_only(make_harness: Any) -> None:
    harness, jobs = shop_with_history(make_harness)
    job = queued(deliver(harness, "customers/redact", raw("customers_redact.json")))
    harness.drain()
    assert harness.job(job)["warnings"] == [
        "customer erased from source my-shop: 2 orders unlinked, 4 events and 3 deliveries erased;"
        " 1 subscriber kept for the data other sources hold"
    ]
    # The shop's orders stay in the books, with nothing that ties them to Jane.
    assert ledger_person(harness, ORDER_A) == (None, "{}")
    assert ledger_person(harness, ORDER_B) == (None, "{}")
    stored = harness.get(f"/api/v1/orders/{ORDER_A}", source=SOURCE).json()
    assert (stored["totalCents"], stored["refundedCents"], stored["email"]) == (8850, 2000, None)
    # Jane stays a subscriber for her canonical order only; Shopify's customer id is gone.
    subscriber = harness.subscriber(JANE)
    assert subscriber["externalId"] is None
    assert subscriber["attributes"] == {"ltv": 88.5, "totalSpent": 88.5, "ordersCount": 1, "aov": 88.5}
    assert [(e["name"], e["properties"]["source"]) for e in harness.events(JANE)] == [("ecommerce.order_placed", "api")]
    stored_bodies = bodies(harness)
    assert [stored_bodies[jobs[key]] for key in ("a", "refund", "b")] == [REDACTED] * 3
    assert stored_bodies[jobs["k"]] == raw("orders_updated_multicurrency.json")
    assert stored_bodies[job] == raw("customers_redact.json")  # the request itself is the record of the erasure
    assert harness.attributes(KLAUS)["ordersCount"] == 1


def test_customers_redact_deletes_a_subscriber_nothing_else_holds(make_harness: Any) -> None:
    harness, jobs = shop_with_history(make_harness)
    body = json.dumps(
        {
            "shop_id": 9007199254900001,
            "shop_domain": "gateway-demo.myshopify.com",
            "customer": {"id": 9007199254741400, "email": "Klaus@Example.de", "phone": None},
            "orders_to_redact": [],
        }
    ).encode()
    job = queued(deliver(harness, "customers/redact", body))
    harness.drain()
    assert harness.job(job)["warnings"] == [
        "customer erased from source my-shop: 1 orders unlinked, 2 events and 1 deliveries erased"
    ]
    assert harness.get(f"/api/v1/subscribers/{KLAUS}").status_code == 404
    assert bodies(harness)[jobs["k"]] == REDACTED
    assert harness.attributes(JANE)["ordersCount"] == 3


def test_customers_redact_is_idempotent(make_harness: Any) -> None:
    harness, _ = shop_with_history(make_harness)
    queued(deliver(harness, "customers/redact", raw("customers_redact.json")))
    again = queued(deliver(harness, "customers/redact", raw("customers_redact.json")))
    harness.drain()
    assert harness.job(again)["warnings"] == [
        "customer erased from source my-shop: 2 orders unlinked, 0 events and 0 deliveries erased;"
        " 1 subscriber kept for the data other sources hold"
    ]
    assert harness.attributes(JANE)["ordersCount"] == 1


def test_shop_redact_erases_everything_of_the_source(make_harness: Any) -> None:
    harness, jobs = shop_with_history(make_harness)
    uninstalled = queued(deliver(harness, "app/uninstalled", raw("app_uninstalled.json")))
    job = queued(deliver(harness, "shop/redact", raw("shop_redact.json")))
    harness.drain()
    assert harness.job(uninstalled)["warnings"] == [
        "app uninstalled from source my-shop: recorded; shop/redact erases its data when it arrives"
    ]
    assert harness.job(job)["warnings"] == [
        "source my-shop erased: 3 orders, 6 events, 5 deliveries; 1 subscriber kept for the data other sources hold"
    ]
    for order_id in (ORDER_A, ORDER_B, ORDER_K):
        assert harness.get(f"/api/v1/orders/{order_id}", source=SOURCE).status_code == 404
    assert harness.get(f"/api/v1/subscribers/{KLAUS}").status_code == 404
    assert harness.attributes(JANE) == {"ltv": 88.5, "totalSpent": 88.5, "ordersCount": 1, "aov": 88.5}
    stored = bodies(harness)
    assert {stored[job_id] for job_id in (*jobs.values(), uninstalled)} == {REDACTED}
    assert stored[job] == raw("shop_redact.json")


def test_data_request_is_recorded_and_the_data_exported(make_harness: Any) -> None:
    harness, _ = shop_with_history(make_harness)
    job = queued(deliver(harness, "customers/data_request", raw("customers_data_request.json")))
    harness.drain()
    trace = harness.job(job)
    assert trace.pop("receivedAt") <= trace.pop("finishedAt")
    assert trace | {"jobId": None} == {
        "jobId": None,
        "nextAttemptAt": None,
        "produced": {"orders": [], "events": []},
        "status": "done",
        "attempts": 1,
        "failedAttempts": [],
        "error": None,
        "warnings": [
            "data request 9007199254910001 recorded: export the customer's data with"
            " GET /api/v1/subscribers/{email}/export"
        ],
        "kind": "webhook",
        "source": SOURCE,
        "topic": "customers/data_request",
    }
    response = harness.get(f"/api/v1/subscribers/{JANE.upper()}/export")
    assert response.status_code == 200
    export = response.json()
    assert export["subscriber"] == harness.subscriber(JANE)
    assert export["events"] == harness.events(JANE)
    assert [(e["name"], e["properties"]["orderId"]) for e in export["events"]] == [
        ("ecommerce.order_placed", ORDER_A),
        ("ecommerce.order_refunded", ORDER_A),
        ("ecommerce.order_placed", ORDER_B),
        ("ecommerce.order_fulfilled", ORDER_B),
        ("ecommerce.order_placed", "api-1"),
    ]
    assert [(o["source"], o["orderId"], o["status"], o["totalCents"]) for o in export["orders"]] == [
        (SOURCE, ORDER_A, "refunded", 8850),
        (SOURCE, ORDER_B, "fulfilled", 4500),
        ("api", "api-1", "placed", 8850),
    ]


def test_data_request_for_an_unknown_customer(make_harness: Any) -> None:
    harness = shop_harness(make_harness)
    job = queued(deliver(harness, "customers/data_request", raw("customers_data_request.json")))
    harness.drain()
    assert harness.job(job)["warnings"] == [
        "data request 9007199254910001 recorded: the gateway holds no subscriber for this customer"
    ]
    assert harness.get(f"/api/v1/subscribers/{JANE}/export").status_code == 404


def test_export_needs_the_api_key(make_harness: Any) -> None:
    harness, _ = shop_with_history(make_harness)
    response = harness.client.get(f"/api/v1/subscribers/{JANE}/export")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_compliance_topics_with_a_bad_signature_are_401(make_harness: Any) -> None:
    harness = shop_harness(make_harness)
    for topic, fixture in (
        ("customers/redact", "customers_redact.json"),
        ("shop/redact", "shop_redact.json"),
        ("customers/data_request", "customers_data_request.json"),
    ):
        body = raw(fixture)
        response = harness.client.post(f"/webhooks/{SOURCE}", content=body, headers=headers(topic, body, secret="x"))
        assert response.status_code == 401
    with harness.db() as conn:
        assert conn.execute("SELECT count(*) FROM jobs").fetchone()[0] == 0
