"""Signature schemes of custom sources, through the real app: each is signed for real and one thing changes per
test (the secret, the header, the time, the body). Sources hold two secrets: a new one and the one it replaces."""

import base64
import hashlib
import hmac
import logging
from typing import Any

import pytest

from tests.adapters.custom_support import WHSEC, WHSEC_OLD, hmac_hex, now, standard_headers, stripe_header
from tests.conftest import Harness

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
    return standard_headers(body, *secrets, msg_id=f"msg_{hashlib.sha256(body).hexdigest()[:12]}", timestamp=t)


def _harness(make_harness: Any, scheme: str) -> Harness:
    new, old, _ = _secrets(scheme)
    source = {"type": "custom", "secrets": [new, old], "signature": SCHEMES[scheme], "mapping": MAPPING}
    harness: Harness = make_harness(sources={"src": source})
    return harness


def _post(harness: Harness, headers: dict[str, str], body: bytes = BODY) -> Any:
    return harness.client.post("/webhooks/src", content=body, headers=headers)


def _refused(harness: Harness, headers: dict[str, str], body: bytes = BODY) -> None:
    response = _post(harness, headers, body)
    assert response.status_code == 401, response.text
    assert response.json() == {
        "success": False,
        "error": {
            "code": "unauthorized",
            "message": "The webhook signature does not match any secret of this source.",
            "details": [],
        },
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
    signature_header = {"hmac": "X-Signature", "hmac-ts": "X-Webhook-Signature", "stripe": "Stripe-Signature"}
    del headers[signature_header.get(scheme, "webhook-signature")]
    _refused(harness, headers)


@pytest.mark.parametrize("scheme", ["hmac-ts", "standard"])
def test_missing_timestamp_header_is_refused(make_harness: Any, scheme: str) -> None:
    harness = _harness(make_harness, scheme)
    headers = _sign(scheme, BODY, [_secrets(scheme)[0]])
    del headers["X-Webhook-Timestamp" if scheme == "hmac-ts" else "webhook-timestamp"]
    _refused(harness, headers)


@pytest.mark.parametrize("scheme", ["hmac-ts", "stripe", "standard"])
@pytest.mark.parametrize("offset", [-600, 600])
def test_timestamp_beyond_five_minutes_is_refused(make_harness: Any, scheme: str, offset: int) -> None:
    harness = _harness(make_harness, scheme)
    _refused(harness, _sign(scheme, BODY, [_secrets(scheme)[0]], timestamp=now() + offset))


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
    _refused(harness, headers)


@pytest.mark.parametrize("header", ["v1=abc", "t=abc,v1=00", "t=1,v0=00", "garbage"])
def test_malformed_stripe_signature_is_refused_not_an_error(make_harness: Any, header: str) -> None:
    harness = _harness(make_harness, "stripe")
    _refused(harness, {"Stripe-Signature": header})


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
