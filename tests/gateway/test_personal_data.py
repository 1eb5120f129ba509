"""No personal data in logs or job errors: a problem names the field and the kind of problem, never the value,
whether it is found by the Push Order API, a platform adapter, the worker or an unhandled error."""

import json
import logging
from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway.logs import JsonFormatter, redact_path
from tests.adapters import _shopify_deliveries as shopify
from tests.adapters import _woocommerce_deliveries as woo
from tests.conftest import Harness, order

SECRET_VALUE = "jane.private@example.com"


def _log_text(caplog: pytest.LogCaptureFixture) -> str:
    formatter = JsonFormatter()
    ours = ("gateway", "adapters", "normalizer", "store", "uvicorn")  # not the test client's own request log
    return "\n".join(formatter.format(record) for record in caplog.records if record.name.startswith(ours))


def _dead_job(harness: Harness, response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    harness.drain()
    job = harness.job(response.json()["jobId"])
    assert job["status"] == "dead", job
    return job


def test_shopify_currency_holding_an_email_is_named_not_quoted(
    make_harness: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    harness = shopify.shop_harness(make_harness)
    payload = json.loads(shopify.raw("orders_create.json"))
    payload["currency"] = SECRET_VALUE.upper()
    job = _dead_job(harness, shopify.deliver(harness, "orders/create", json.dumps(payload).encode()))
    assert "not an ISO 4217 currency code" in job["error"]
    assert SECRET_VALUE not in job["error"].lower()
    assert SECRET_VALUE not in _log_text(caplog).lower()


def test_shopify_unparseable_values_are_described_by_kind(make_harness: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    harness = shopify.shop_harness(make_harness)
    payload = json.loads(shopify.raw("orders_create.json"))
    payload["processed_at"] = SECRET_VALUE
    payload["total_price"] = payload["current_total_price"] = SECRET_VALUE
    job = _dead_job(harness, shopify.deliver(harness, "orders/create", json.dumps(payload).encode()))
    assert "not a decimal number" in job["error"] or "not an ISO 8601 timestamp" in job["error"]
    assert SECRET_VALUE not in job["error"]
    assert SECRET_VALUE not in _log_text(caplog)


def test_woocommerce_errors_from_the_interpreter_leave_the_value_out(
    make_harness: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    harness: Harness = make_harness(sources={woo.SOURCE: {"type": "woocommerce", "secrets": [woo.SECRET]}})
    payload = woo.fixture("guest-processing")
    payload["line_items"][0]["quantity"] = SECRET_VALUE  # int() would quote it
    body = json.dumps(payload).encode()
    response = harness.client.post(f"/webhooks/{woo.SOURCE}", content=body, headers=woo.woo_headers(body))
    job = _dead_job(harness, response)
    assert "ValueError" in job["error"]
    assert SECRET_VALUE not in job["error"]
    assert SECRET_VALUE not in _log_text(caplog)


@pytest.mark.parametrize(
    ("fields", "field", "kind"),
    [
        ({"currency": SECRET_VALUE}, "currency", "not an ISO 4217 currency code"),
        ({"orderedAt": SECRET_VALUE}, "orderedAt", "not an ISO 8601 timestamp"),
        ({"customer": {"email": "jane.private<@example.com"}}, "customer.email", "not a valid email address"),
        ({"customer": {"email": "jane.private@exa mple.com"}}, "customer.email", "not a valid email address"),
    ],
)
def test_push_order_errors_name_the_field_and_the_kind(
    harness: Harness, fields: dict[str, Any], field: str, kind: str
) -> None:
    response = harness.post_order(order(**fields))
    assert response.status_code == 422, response.text
    details = response.json()["error"]["details"]
    assert [detail["field"] for detail in details] == [field]
    assert kind in details[0]["message"]
    assert "jane.private" not in response.text


def test_an_unhandled_error_logs_the_path_redacted_and_no_exception_message(
    harness: Harness, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from store import events

    harness.post_order(order(customer={"email": SECRET_VALUE}))
    harness.drain()

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError(f"cannot read the events of {SECRET_VALUE}")  # a bug that quotes what it failed on

    monkeypatch.setattr(events, "for_subscriber", broken)
    caplog.set_level(logging.INFO)
    client = TestClient(harness.client.app, raise_server_exceptions=False)  # the app is already started
    response = client.get(f"/api/v1/subscribers/{SECRET_VALUE}/events", headers=harness.headers)
    assert response.status_code == 500
    assert SECRET_VALUE not in response.text
    logged = _log_text(caplog)
    assert "unhandled error" in logged
    assert '"path": "/api/v1/subscribers/{email}/events"' in logged
    assert "ValueError" in logged  # the traceback is kept, its message is not
    assert SECRET_VALUE not in logged


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/api/v1/subscribers/a@b.com", "/api/v1/subscribers/{email}"),
        ("/api/v1/subscribers/a%40b.com/events", "/api/v1/subscribers/{email}/events"),
        ("/api/v1/orders/1001", "/api/v1/orders/1001"),
    ],
)
def test_redact_path(path: str, logged: str) -> None:
    assert redact_path(path) == logged
