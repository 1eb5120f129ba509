"""`commerce-gateway try-mapping SOURCE payload.json`: the canonical orders a saved payload becomes, or the errors,
with an exit code a script can test (0 orders, 1 errors, 2 usage, 3 acknowledged but not processed)."""

import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from gateway.commands import try_mapping
from gateway.config import build_adapters, load
from gateway.engine import build_engine
from tests.adapters._custom_deliveries import FIXTURES, example_source
from tests.conftest import write_config

MAPPING = {"orderId": "id", "totalCents": "total", "currency": "currency", "customer": {"email": "email"}}
UNSIGNED = {"scheme": "none", "allow_unsigned": True}


SHOP = {"type": "custom", "signature": UNSIGNED, "topic": {"header": "X-Topic", "handled": ["order.paid"]}}
SHOP["mapping"] = MAPPING


def _config(tmp_path: Path) -> Path:
    sources = {"lemon-squeezy": example_source("lemon-squeezy", ["lemon-signing-secret"]), "shop": SHOP}
    return write_config(tmp_path, sources=sources)


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "gateway", "--config", str(_config(tmp_path)), "try-mapping", *args]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)


def _try(tmp_path: Path, source: str, payload: Any, headers: tuple[str, ...] = ()) -> tuple[int, str, str]:
    file = tmp_path / "payload.json"
    file.write_bytes(payload if isinstance(payload, bytes) else json.dumps(payload).encode())
    out, err = io.StringIO(), io.StringIO()
    config = load(_config(tmp_path))
    code = try_mapping.run(build_engine(config), build_adapters(config), source, str(file), headers, out, err)
    return code, out.getvalue(), err.getvalue()


def test_prints_the_canonical_order_of_a_saved_payload(tmp_path: Path) -> None:
    done = _run(tmp_path, "lemon-squeezy", str(FIXTURES / "lemon-squeezy-order-created.json"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "topic": "order_created",
        "deliveryKey": hashlib.sha256((FIXTURES / "lemon-squeezy-order-created.json").read_bytes()).hexdigest(),
        "orders": [
            {
                "orderId": "1874121",
                "orderNumber": "40511042",
                "status": "placed",
                "totalCents": 5978,
                "currency": "EUR",
                "orderedAt": "2026-06-02T08:15:30Z",
                "updatedAt": "2026-06-02T08:15:31Z",
                "refundAmountCents": 0,
                "customer": {"email": "luca.bianchi@example.com", "externalId": "2210987"},
                "items": [
                    {
                        "productId": "118822",
                        "variantId": "501177",
                        "title": "Pixel Icons Pro",
                        "variantTitle": "Team licence",
                        "quantity": 1,
                        "priceCents": 4900,
                    }
                ],
                "properties": {"storeId": 40511, "testMode": False},
            }
        ],
        "warnings": [],
    }


def test_mapping_errors_exit_non_zero(tmp_path: Path) -> None:
    payload = tmp_path / "broken.json"
    attributes = {"status": "paid", "total": "59.78", "currency": "EUR", "user_email": "a@example.com"}
    payload.write_text(
        json.dumps({"meta": {"event_name": "order_created"}, "data": {"id": "1", "attributes": attributes}})
    )
    done = _run(tmp_path, "lemon-squeezy", str(payload))
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.splitlines()[-1] == (
        "try-mapping: error: totalCents (expression 'data.attributes.total'): Input should be a valid integer"
    )


def test_headers_give_the_topic(tmp_path: Path) -> None:
    order = {"id": 7, "total": 100, "currency": "USD", "email": "a@example.com"}
    code, out, err = _try(tmp_path, "shop", order, ("X-Topic: order.paid",))
    assert (code, err) == (0, "")
    result = json.loads(out)
    assert (result["topic"], [o["orderId"] for o in result["orders"]]) == ("order.paid", ["7"])


def test_an_ignored_delivery_says_why(tmp_path: Path) -> None:
    order = {"id": 7, "total": 100, "currency": "USD", "email": "a@example.com"}
    code, out, err = _try(tmp_path, "shop", order, ("X-Topic: order.viewed",))
    assert code == 3
    assert json.loads(out) == {
        "topic": "order.viewed",
        "ignored": True,
        "reason": "event type 'order.viewed' is not handled by this source",
    }
    assert err == "try-mapping: the gateway would acknowledge this delivery as ignored, not process it\n"


def test_unknown_source_and_bad_header_are_usage_errors(tmp_path: Path) -> None:
    assert _try(tmp_path, "nope", {})[0::2] == (
        2,
        "try-mapping: no source named 'nope' (sources: lemon-squeezy, shop)\n",
    )
    assert _try(tmp_path, "shop", {}, ("X-Topic order.paid",))[0::2] == (
        2,
        "try-mapping: header 'X-Topic order.paid' must be written 'Name: value'\n",
    )


def test_shows_the_warnings_the_job_records(tmp_path: Path, make_harness: Any) -> None:
    """The same path as the worker: an email expression that gives nothing, an order in a currency without a
    rate, and a reserved attribute warn in try-mapping exactly as in the job."""
    payload = {"id": "W-1", "total": 900, "currency": "GBP", "email": None, "status": "paid"}
    code, out, err = _try(tmp_path, "shop", payload, ("X-Topic: order.paid",))
    assert (code, err) == (0, "")
    shown = json.loads(out)
    assert shown["orders"][0]["customer"] is None
    assert shown["warnings"] == [
        "order W-1 is in GBP, which has no fx_rates entry for USD: kept in the ledger, left out of revenue totals",
        "order W-1 has no customer email: recorded in the ledger, no subscriber",
    ]
    # The real job, through the app and the worker, records the same.
    harness = make_harness(sources={"shop": SHOP})
    response = harness.client.post("/webhooks/shop", json=payload, headers={"X-Topic": "order.paid"})
    harness.drain()
    assert harness.job(response.json()["jobId"])["warnings"] == shown["warnings"]
