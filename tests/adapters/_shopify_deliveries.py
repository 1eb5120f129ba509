"""Shared by the Shopify tests: fixture bytes, real signatures, delivery headers."""

import base64
import hashlib
import hmac
import uuid
from pathlib import Path
from typing import Any

from tests.conftest import FIXTURES, Harness

SECRET = "shpss_test_app_secret_0123456789"
OLD_SECRET = "shpss_old_app_secret_9876543210"
SHOP = "gateway-demo.myshopify.com"
SOURCE = "my-shop"
FOLDER: Path = FIXTURES / "shopify"
ORDER_A = "9007199254740993"  # 2**53 + 1: through a float it would become ...992
ORDER_B = "9007199254741993"
POWDER = {
    "productId": "9007199254760001",
    "title": "Protein Powder",
    "quantity": 2,
    "variantId": "9007199254770001",
    "sku": "PROTEIN-1KG-VAN",
    "variantTitle": "Vanilla",
    "priceCents": 4425,
}


def raw(name: str) -> bytes:
    return (FOLDER / name).read_bytes()


def sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def headers(
    topic: str, body: bytes, webhook_id: str | None = None, secret: str = SECRET, prefix: str = "X-Shopify-"
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        f"{prefix}Topic": topic,
        f"{prefix}Hmac-Sha256": sign(body, secret),
        f"{prefix}Shop-Domain": SHOP,
        f"{prefix}API-Version": "2026-07",
        f"{prefix}Webhook-Id": webhook_id or str(uuid.uuid4()),
        f"{prefix}Event-Id": str(uuid.uuid4()),
        f"{prefix}Triggered-At": "2026-06-01T12:00:03.000Z",
    }


def shop_harness(make_harness: Any, **options: Any) -> Harness:
    source = {"type": "shopify", "secrets": [SECRET], **options}
    harness: Harness = make_harness(sources={SOURCE: source})
    return harness


def deliver(harness: Harness, topic: str, body: bytes, webhook_id: str | None = None, **kwargs: Any) -> Any:
    return harness.client.post(f"/webhooks/{SOURCE}", content=body, headers=headers(topic, body, webhook_id, **kwargs))
