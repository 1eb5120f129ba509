"""Signature schemes of custom sources, through the real app: each is signed for real and one thing changes per
test (the secret, the header, the time, the body). Sources hold two secrets: a new one and the one it replaces."""

import base64
import hashlib
import hmac
import logging
from pathlib import Path
from typing import Any

import pytest

from tests.adapters._custom_deliveries import WHSEC, WHSEC_OLD, hmac_hex, now, standard_headers, stripe_header
from tests.conftest import Harness
from tests.test_architecture import imported_packages

BODY = b'{"id": "A-1", "total": 1250, "currency": "USD", "email": "ann@example.com", "status": "paid"}'
MAPPING = {"orderId": "id", "totalCents": "total", "currency": "currency", "customer": {"email": "email"}}
SCHEMES: dict[str, dict[str, Any]] = {
    "hmac": {"scheme": "hmac", "header": "X-Signature"},
    "hmac-ts": {
        "scheme": "hmac",
        "header": "X-Webhook-Signature",
        "algorithm": "sha512",
        "encoding": "base64",
        "prefix": "sha512=",
        "timestamp_header": "X-Webhook-Timestamp",
    },
    "stripe": {"scheme": "stripe"},
    "standard": {"scheme": "standard-webhooks"},
    # Paddle Billing: `Paddle-Signature: ts=…;h1=…;h1=…`, hex HMAC-SHA256 of "ts:body".
    "parts": {
        "scheme": "parts",
        "header": "Paddle-Signature",
        "separator": ";",
        "timestamp_part": "ts",
        "signature_part": "h1",
        "signed_payload": "{timestamp}:{body}",
    },
    # Cashfree: the timestamp in milliseconds, base64 HMAC-SHA256 of timestamp + body.
    "hmac-ms": {
        "scheme": "hmac",
        "header": "x-webhook-signature",
        "encoding": "base64",
        "timestamp_header": "x-webhook-timestamp",
        "timestamp_unit": "ms",
        "signed_payload": "{timestamp}{body}",
    },
}
NEW, OLD, INTRUDER = "new-secret-0123", "old-secret-4567", "intruder-89ab"
SECRETS = {"standard": (WHSEC, WHSEC_OLD, "whsec_" + base64.b64encode(b"intruder" * 4).decode())}


def _secrets(scheme: str) -> tuple[str, str, str]:
    return SECRETS.get(scheme, (NEW, OLD, INTRUDER))


def _sign(scheme: str, body: bytes, secrets: list[str], timestamp: int | None = None) -> dict[str, str]:
    t = now() if timestamp is None else timestamp
    if scheme == "hmac":
        return {"X-Signature": ",".join(hmac_hex(s, body) for s in secrets)}
    if scheme == "hmac-ts":
        signatures = [
            "sha512="
            + base64.b64encode(hmac.new(s.encode(), f"{t}.".encode() + body, hashlib.sha512).digest()).decode()
            for s in secrets
        ]
        return {"X-Webhook-Timestamp": str(t), "X-Webhook-Signature": " ".join(signatures)}
    if scheme == "stripe":
        return {"Stripe-Signature": stripe_header(body, *secrets, timestamp=t)}
    if scheme == "parts":
        return {
            "Paddle-Signature": ";".join([f"ts={t}", *(f"h1={hmac_hex(s, f'{t}:'.encode() + body)}" for s in secrets)])
        }
    if scheme == "hmac-ms":
        ms = f"{t * 1000 + 417}"
        signatures = [
            base64.b64encode(hmac.new(s.encode(), ms.encode() + body, hashlib.sha256).digest()) for s in secrets
        ]
        return {"x-webhook-timestamp": ms, "x-webhook-signature": b" ".join(signatures).decode()}
    return standard_headers(body, *secrets, msg_id=f"msg_{hashlib.sha256(body).hexdigest()[:12]}", timestamp=t)


def _harness(make_harness: Any, scheme: str) -> Harness:
    new, old, _ = _secrets(scheme)
    source = {"type": "custom", "secrets": [new, old], "signature": SCHEMES[scheme], "mapping": MAPPING}
    harness: Harness = make_harness(sources={"src": source})
    return harness


def _post(harness: Harness, headers: dict[str, str], body: bytes = BODY) -> Any:
    return harness.client.post("/webhooks/src", content=body, headers=headers)


ANSWERS = {
    "signature": "The webhook signature does not match any secret of this source.",
    "header": "The webhook's signature header is missing or malformed.",
    "timestamp": "The webhook's signed timestamp is too old or in the future: check the sender's clock.",
}


def _refused(harness: Harness, headers: dict[str, str], body: bytes = BODY, check: str = "signature") -> None:
    """401, with the answer naming the check that failed, and nothing stored."""
    response = _post(harness, headers, body)
    assert response.status_code == 401, response.text
    assert response.json() == {
        "success": False,
        "error": {"code": "unauthorized", "message": ANSWERS[check], "details": []},
    }
    with harness.db() as conn:
        assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (0,)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_valid_signature_is_queued_and_translated(make_harness: Any, scheme: str) -> None:
    harness = _harness(make_harness, scheme)
    new, _, _ = _secrets(scheme)
    response = _post(harness, _sign(scheme, BODY, [new]))
    assert response.status_code == 200, response.text
    assert response.json()["queued"] is True
    harness.drain()
    assert harness.job(response.json()["jobId"])["status"] == "done"
    assert harness.attributes("ann@example.com")["totalSpent"] == 12.5


@pytest.mark.parametrize("scheme", SCHEMES)
def test_signature_from_an_unknown_secret_is_refused(make_harness: Any, scheme: str) -> None:
    harness = _harness(make_harness, scheme)
    _refused(harness, _sign(scheme, BODY, [_secrets(scheme)[2]]))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_changed_body_is_refused(make_harness: Any, scheme: str) -> None:
    harness = _harness(make_harness, scheme)
    headers = _sign(scheme, BODY, [_secrets(scheme)[0]])
    _refused(harness, headers, BODY.replace(b"1250", b"125"))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_missing_signature_header_is_refused(make_harness: Any, scheme: str) -> None:
    harness = _harness(make_harness, scheme)
    headers = _sign(scheme, BODY, [_secrets(scheme)[0]])
    signature_header = {
        "hmac": "X-Signature",
        "hmac-ts": "X-Webhook-Signature",
        "stripe": "Stripe-Signature",
        "parts": "Paddle-Signature",
        "hmac-ms": "x-webhook-signature",
    }
    del headers[signature_header.get(scheme, "webhook-signature")]
    _refused(harness, headers, check="header")


@pytest.mark.parametrize("scheme", ["hmac-ts", "hmac-ms", "standard"])
def test_missing_timestamp_header_is_refused(make_harness: Any, scheme: str) -> None:
    harness = _harness(make_harness, scheme)
    headers = _sign(scheme, BODY, [_secrets(scheme)[0]])
    names = {"hmac-ts": "X-Webhook-Timestamp", "hmac-ms": "x-webhook-timestamp", "standard": "webhook-timestamp"}
    del headers[names[scheme]]
    _refused(harness, headers, check="header")


@pytest.mark.parametrize("scheme", ["hmac-ts", "hmac-ms", "stripe", "parts", "standard"])
@pytest.mark.parametrize("offset", [-600, 600])
def test_timestamp_beyond_five_minutes_is_refused(
    make_harness: Any, scheme: str, offset: int, caplog: pytest.LogCaptureFixture
) -> None:
    harness = _harness(make_harness, scheme)
    with caplog.at_level(logging.INFO, logger="gateway.web"):
        _refused(harness, _sign(scheme, BODY, [_secrets(scheme)[0]], timestamp=now() + offset), check="timestamp")
    # The log says which way: a stale timestamp (a replay, a slow queue) or one from the future (a clock ahead).
    [record] = [r for r in caplog.records if r.getMessage() == "delivery rejected"]
    assert getattr(record, "check", None) == "timestamp"
    reason = str(getattr(record, "reason", ""))
    assert ("old" in reason) == (offset < 0) and ("future" in reason or "new" in reason) == (offset > 0), reason


@pytest.mark.parametrize("scheme", SCHEMES)
def test_rotation_accepts_the_old_secret_and_several_signatures(make_harness: Any, scheme: str) -> None:
    harness = _harness(make_harness, scheme)
    _, old, intruder = _secrets(scheme)
    assert _post(harness, _sign(scheme, BODY, [old])).status_code == 200
    other = BODY.replace(b"A-1", b"A-2")
    # During a rotation the platform signs with both; one unknown signature next to a good one is fine.
    assert _post(harness, _sign(scheme, other, [intruder, old]), other).status_code == 200
    assert harness.drain() == 2


def test_hmac_template_and_tolerance_are_configurable(make_harness: Any) -> None:
    signature = {
        "scheme": "hmac",
        "header": "X-Sig",
        "algorithm": "sha1",
        "timestamp_header": "X-Time",
        "signed_payload": "v0:{timestamp}:{body}",
        "tolerance_seconds": 900,
    }
    harness = make_harness(
        sources={"src": {"type": "custom", "secrets": [NEW], "signature": signature, "mapping": MAPPING}}
    )
    t = now() - 600
    good = {"X-Time": str(t), "X-Sig": hmac_hex(NEW, f"v0:{t}:".encode() + BODY, "sha1")}
    assert _post(harness, good).status_code == 200
    wrong_template = {"X-Time": str(t), "X-Sig": hmac_hex(NEW, f"{t}.".encode() + BODY, "sha1")}
    assert _post(harness, wrong_template).status_code == 401
    late = now() - 1000
    response = _post(harness, {"X-Time": str(late), "X-Sig": hmac_hex(NEW, f"v0:{late}:".encode() + BODY, "sha1")})
    assert response.status_code == 401


@pytest.mark.parametrize(
    "header",
    ["v1", "v1,", "v1,not base64!", "v2," + base64.b64encode(b"x" * 32).decode(), ""],
)
def test_malformed_standard_webhooks_signature_is_refused_not_an_error(make_harness: Any, header: str) -> None:
    harness = _harness(make_harness, "standard")
    headers = _sign("standard", BODY, [WHSEC])
    headers["webhook-signature"] = header
    _refused(harness, headers, check="header" if header == "" else "signature")


@pytest.mark.parametrize(
    ("header", "check"),
    [("v1=abc", "header"), ("t=abc,v1=00", "timestamp"), ("t=1,v0=00", "header"), ("garbage", "header")],
)
def test_malformed_stripe_signature_is_refused_not_an_error(make_harness: Any, header: str, check: str) -> None:
    harness = _harness(make_harness, "stripe")
    _refused(harness, {"Stripe-Signature": header}, check=check)


def test_standard_webhooks_message_id_is_the_delivery_key(make_harness: Any) -> None:
    harness = _harness(make_harness, "standard")
    first = _post(harness, standard_headers(BODY, WHSEC, msg_id="msg_1"))
    assert first.json()["queued"] is True
    # A retry is the same message id, signed again at another time.
    retry = _post(harness, standard_headers(BODY, WHSEC, msg_id="msg_1", timestamp=now() - 30))
    assert retry.json() == {"success": True, "duplicate": True}
    assert _post(harness, standard_headers(BODY, WHSEC, msg_id="msg_2")).json()["queued"] is True


def test_unsigned_source_needs_allow_unsigned_and_warns_at_every_start(
    make_harness: Any, caplog: pytest.LogCaptureFixture
) -> None:
    source = {"type": "custom", "signature": {"scheme": "none", "allow_unsigned": True}, "mapping": MAPPING}
    with caplog.at_level(logging.WARNING, logger="adapters.custom"):
        harness = make_harness(sources={"open": source})
    warnings = [r for r in caplog.records if r.name == "adapters.custom"]
    assert [(r.getMessage(), getattr(r, "source", None)) for r in warnings] == [
        ("source accepts unsigned webhooks: anyone who knows its URL can post orders", "open")
    ]
    response = harness.client.post("/webhooks/open", content=BODY)
    assert response.json()["queued"] is True


def test_stripe_is_the_parts_scheme_preset_to_stripe(make_harness: Any) -> None:
    # The preset spelled out: the same header verifies under either block.
    spelled = {"scheme": "parts", "header": "Stripe-Signature", "separator": ",", "timestamp_part": "t"}
    spelled |= {"signature_part": "v1", "signed_payload": "{timestamp}.{body}", "algorithm": "sha256"}
    harness = make_harness(
        sources={
            "preset": {"type": "custom", "secrets": [NEW], "signature": {"scheme": "stripe"}, "mapping": MAPPING},
            "spelled": {"type": "custom", "secrets": [NEW], "signature": spelled, "mapping": MAPPING},
        }
    )
    for source in ("preset", "spelled"):
        body = BODY.replace(b"A-1", source.encode())
        headers = {"Stripe-Signature": stripe_header(body, NEW)}
        assert harness.client.post(f"/webhooks/{source}", content=body, headers=headers).status_code == 200


@pytest.mark.parametrize(
    ("timestamp", "check"),
    [
        pytest.param(lambda t: str(t), "timestamp", id="seconds-where-milliseconds-are-expected"),
        pytest.param(lambda t: "9" * 400, "timestamp", id="huge"),
        pytest.param(lambda t: f"{t}000.5", "timestamp", id="fraction"),
        pytest.param(lambda t: f"-{t}000", "timestamp", id="negative"),
    ],
)
def test_a_millisecond_timestamp_that_is_not_one_is_refused(make_harness: Any, timestamp: Any, check: str) -> None:
    harness = _harness(make_harness, "hmac-ms")
    ms = timestamp(now())
    signature = base64.b64encode(hmac.new(NEW.encode(), ms.encode() + BODY, hashlib.sha256).digest()).decode()
    _refused(harness, {"x-webhook-timestamp": ms, "x-webhook-signature": signature}, check=check)


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("h1=00;ts={t}", id="signature-first"),
        pytest.param("ts={t}", id="no-signature"),
        pytest.param("ts={t},h1={sig}", id="wrong-separator"),
    ],
)
def test_parts_header_shapes(make_harness: Any, header: str) -> None:
    harness = _harness(make_harness, "parts")
    t = now()
    value = header.format(t=t, sig=hmac_hex(NEW, f"{t}:".encode() + BODY))
    if header.startswith("h1=00"):
        _refused(harness, {"Paddle-Signature": value})  # parts in any order; the one signature is wrong
    else:
        _refused(harness, {"Paddle-Signature": value}, check="header")


def test_only_the_signatures_module_computes_signatures() -> None:
    """Shopify, WooCommerce and custom sources verify through adapters/_signatures: one implementation."""
    adapters = Path(__file__).parents[2] / "adapters"
    computing = sorted(p.name for p in adapters.glob("*.py") if {"hmac", "base64"} & imported_packages(p))
    assert computing == ["_signatures.py"]
