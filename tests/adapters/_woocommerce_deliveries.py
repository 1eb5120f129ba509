"""Genuinely signed WooCommerce deliveries for tests: the headers WooCommerce sends, the HMAC computed here."""

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any

from tests.conftest import FIXTURES

SECRET = "wc-secret-&-more-0123456789"
SOURCE = "woo"
WOO_FIXTURES = FIXTURES / "woocommerce"


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((WOO_FIXTURES / f"{name}.json").read_text())
    return loaded


def sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def woo_headers(body: bytes, topic: str = "order.updated", secret: str | None = SECRET) -> dict[str, str]:
    resource, _, event = topic.partition(".")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "WooCommerce/9.4.2 Hookshot (WordPress/6.7.1)",
        "X-WC-Webhook-Source": "https://shop.example.com/",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-ID": "17",
        "X-WC-Webhook-Delivery-ID": secrets.token_hex(16),  # new on every attempt, as WooCommerce does
    }
    if secret is not None:
        headers["X-WC-Webhook-Signature"] = sign(body, secret)
    return headers


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, indent=2).encode()


def deliver(harness: Any, payload: dict[str, Any] | bytes, topic: str = "order.updated", **kwargs: Any) -> Any:
    body = payload if isinstance(payload, bytes) else encode(payload)
    return harness.client.post(f"/webhooks/{SOURCE}", content=body, headers=woo_headers(body, topic, **kwargs))


def woo_source(**extra: Any) -> dict[str, Any]:
    return {SOURCE: {"type": "woocommerce", "secrets": [SECRET], **extra}}
