"""Deliveries are Standard Webhooks: verified here with the reference library (`standardwebhooks`) and, for
ed25519, with the public key the CLI prints."""

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from standardwebhooks import Webhook, WebhookVerificationError

from gateway.signing import SecretError, Signer, parse_secret
from tests.conftest import order
from tests.gateway._server import cli
from tests.gateway.outbound._receiver import receiving
from tests.gateway.outbound._support import HMAC_SECRET, build, destination, send

ROTATED = "whsec_" + base64.b64encode(b"another secret of 32 bytes......").decode()
ED25519 = "whsk_" + base64.b64encode(bytes(range(32))).decode()


def test_a_delivery_verifies_with_the_reference_library(make_harness: Any) -> None:
    with receiving() as receiver:
        harness = build(make_harness, {"crm": destination(receiver.url)})
        assert harness.post_order(order()).status_code == 202
        assert send(harness) == 1
        [got] = receiver.wait_for(1)
    payload = Webhook(HMAC_SECRET).verify(got.body, got.headers)
    assert got.path == "/hooks"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["webhook-id"].startswith("msg_")
    assert payload["type"] == "ecommerce.order_placed"
    assert payload["timestamp"].endswith("Z")
    data = payload["data"]
    assert isinstance(data["eventId"], int)
    assert data["subscriber"]["email"] == "buyer@example.com"
    assert data["subscriber"]["firstName"] == "Jane"
    assert data["subscriber"]["attributes"]["acquisitionChannel"] == "tiktok"
    assert data["subscriber"]["attributes"]["ltv"] == 88.5
    assert data["properties"]["orderId"] == "order-1001"
    assert data["properties"]["totalCents"] == 8850
    # One thing changed: the signature no longer holds.
    tampered = got.body.replace(b"8850", b"8851")
    with pytest.raises(WebhookVerificationError):
        Webhook(HMAC_SECRET).verify(tampered, got.headers)


def test_rotation_signs_once_per_secret_and_ed25519_signs_v1a(make_harness: Any, tmp_path: Path) -> None:
    with receiving() as receiver:
        secrets = [HMAC_SECRET, ROTATED, ED25519]
        harness = build(make_harness, {"crm": destination(receiver.url, secrets=secrets)})
        harness.post_order(order())
        send(harness)
        [got] = receiver.wait_for(1)
    signatures = got.headers["webhook-signature"].split(" ")
    assert [s.split(",")[0] for s in signatures] == ["v1", "v1", "v1a"]
    Webhook(HMAC_SECRET).verify(got.body, got.headers)
    Webhook(ROTATED).verify(got.body, got.headers)
    # The consumer verifies v1a with the whpk_ key that `destinations public-key` prints.
    printed = cli("destinations", "public-key", "crm", "--config", str(tmp_path / "config.yaml"))
    assert printed.returncode == 0, printed.stderr
    public = printed.stdout.strip()
    assert public.startswith("whpk_")
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public.removeprefix("whpk_")))
    content = f"{got.headers['webhook-id']}.{got.headers['webhook-timestamp']}.".encode() + got.body
    key.verify(base64.b64decode(signatures[2].split(",")[1]), content)
    assert ED25519 not in printed.stdout


def test_signed_content_is_id_timestamp_body() -> None:
    signer = Signer([HMAC_SECRET])
    body = json.dumps({"type": "x"}).encode()
    headers = {k.decode(): v.decode() for k, v in signer.headers("msg_1", 1_700_000_000, body)}
    at = datetime.fromtimestamp(1_700_000_000, UTC)
    assert Webhook(HMAC_SECRET).sign("msg_1", at, body.decode()) == headers["webhook-signature"]


@pytest.mark.parametrize(
    "secret",
    ["plain-value-1234", "whsec_not base64!", "whsec_" + base64.b64encode(b"short").decode(), "whsk_" + "A" * 10],
)
def test_a_secret_that_cannot_sign_is_refused(secret: str) -> None:
    with pytest.raises(SecretError) as refused:
        parse_secret(secret)
    assert secret not in str(refused.value)
