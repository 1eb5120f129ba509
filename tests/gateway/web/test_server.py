"""`serve` as a real process on a loopback port, driven over HTTP: the README's own examples, verbatim, give
the figures the README states; errors keep the one shape of docs/api.md."""

import json
import re
from pathlib import Path
from typing import Any

from tests.conftest import API_KEY, write_config
from tests.gateway._server import Server, database, wait_done

README = Path(__file__).resolve().parents[3] / "README.md"


def readme_examples() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The two bodies the README posts with curl, and the attributes it says the subscriber then has."""
    text = README.read_text()
    bodies = [json.loads(body) for body in re.findall(r"-d '(\{.*?\})'", text, flags=re.DOTALL)]
    assert len(bodies) == 2, "the README shows the seed order and its refund"
    stated = re.search(r'"attributes":(\{[^{}]*\})', text)
    assert stated is not None, "the README shows the subscriber's attributes after the order"
    return bodies[0], bodies[1], json.loads(stated.group(1))


def test_readme_order_and_refund_over_http(tmp_path: Path) -> None:
    seed, refund, stated_attributes = readme_examples()
    with Server(write_config(tmp_path)) as server, server.client() as client:
        assert client.get("/healthz", headers={"Authorization": ""}).json() == {"status": "ok"}

        accepted = client.post("/api/v1/orders", json=seed)
        assert accepted.status_code == 202
        answer = accepted.json()
        assert answer == {
            "success": True,
            "queued": True,
            "jobId": answer["jobId"],
            "orderId": "order-1001",
            "status": "placed",
        }
        assert answer["jobId"].startswith("commerce-order-")
        job = wait_done(client, answer["jobId"])
        assert (job["status"], job["attempts"], job["error"], job["warnings"]) == ("done", 1, None, [])

        subscriber = client.get("/api/v1/subscribers/buyer@example.com").json()
        assert subscriber["attributes"] == stated_attributes
        assert subscriber["attributes"] == {
            "acquisitionChannel": "tiktok",
            "ltv": 88.5,
            "totalSpent": 88.5,
            "ordersCount": 1,
            "aov": 88.5,
        }
        assert (subscriber["email"], subscriber["firstName"], subscriber["lastName"]) == (
            "buyer@example.com",
            "Jane",
            None,
        )
        [placed] = client.get("/api/v1/subscribers/buyer@example.com/events").json()["events"]
        assert placed["name"] == "ecommerce.order_placed"
        assert placed["properties"] == {
            "provider": "api",
            "source": "api",
            "orderId": "order-1001",
            "orderNumber": None,
            "status": "placed",
            "totalCents": 8850,
            "currency": "USD",
            "orderedAt": "2026-06-01T12:00:00.000Z",
            "lineItems": seed["items"],
        }

        refunded = client.post("/api/v1/orders", json=refund)
        assert refunded.status_code == 202 and refunded.json()["status"] == "refunded"
        assert wait_done(client, refunded.json()["jobId"])["status"] == "done"
        # The same refund again, as a client retry would: accepted, processed, counted once.
        again = client.post("/api/v1/orders", json=refund).json()["jobId"]
        assert wait_done(client, again)["status"] == "done"

        assert client.get("/api/v1/subscribers/buyer@example.com").json()["attributes"] == {
            "acquisitionChannel": "tiktok",
            "ltv": 0,
            "totalSpent": 0,
            "ordersCount": 1,
            "aov": 0,
        }
        events = client.get("/api/v1/subscribers/buyer@example.com/events").json()["events"]
        assert [(e["name"], e["properties"].get("refundAmountCents")) for e in events] == [
            ("ecommerce.order_placed", None),
            ("ecommerce.order_refunded", 8850),
        ]
        order = client.get("/api/v1/orders/order-1001", params={"source": "api"}).json()
        assert (order["status"], order["totalCents"], order["refundedCents"], order["cancelled"]) == (
            "refunded",
            8850,
            8850,
            False,
        )
        assert order["items"] == seed["items"]


def test_errors_over_http(tmp_path: Path) -> None:
    seed, _, _ = readme_examples()
    config = write_config(tmp_path)
    with Server(config) as server, server.client() as client:
        invalid = {
            **seed,
            "customer": {"email": "not-an-email"},
            "items": [{**seed["items"][0], "quantity": 0}],
        }
        response = client.post("/api/v1/orders", json=invalid)
        assert response.status_code == 422
        error = response.json()
        assert error["success"] is False
        assert error["error"]["code"] == "validation_error"
        assert [d["field"] for d in error["error"]["details"]] == ["customer.email", "items.0.quantity"]

        for headers in ({"Authorization": "Bearer wrong-key-0123456789"}, {"Authorization": ""}):
            response = client.post("/api/v1/orders", json=seed, headers=headers)
            assert response.status_code == 401
            assert response.json()["error"]["code"] == "unauthorized"
            assert API_KEY not in response.text
        assert client.get("/api/v1/jobs/commerce-order-0", headers={"Authorization": "Bearer nope"}).status_code == 401

        response = client.post("/api/v1/orders", content=b'{"orderId": ', headers={"Content-Type": "application/json"})
        assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_json")

        response = client.get("/api/v1/jobs/commerce-order-0000000000000000")
        assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")
        response = client.get("/api/v1/subscribers/nobody@example.com")
        assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")

        # Nothing was queued by any of the rejected requests: the first accepted order is the only job.
        job_id = client.post("/api/v1/orders", json=seed).json()["jobId"]
        assert wait_done(client, job_id)["status"] == "done"
        assert client.get("/api/v1/subscribers/buyer@example.com").json()["attributes"]["ordersCount"] == 1
        with database(config) as conn:
            assert conn.execute("SELECT job_id FROM jobs").fetchall() == [(job_id,)]
