"""Small test platforms registered as source types: they take the path every real adapter takes (signature,
intake, translation in the worker) with behaviour a test chooses through the body."""

import hashlib
import hmac
import json
from typing import Any, ClassVar

from adapters import Delivery, Intake, NotReady, OrderLookup, SignatureError, SourceOptions, Translation
from adapters._signatures import hmac_matches
from adapters.base import TranslationError
from normalizer import CanonicalOrder
from tests.conftest import Harness

SECRET = "test-platform-secret"


class FakePlatform:
    """Signs with hex HMAC-SHA256 in X-Test-Signature; the body is a canonical order plus a `mode`."""

    provider: ClassVar[str] = "testplatform"
    Options: ClassVar[type[SourceOptions]] = SourceOptions

    def __init__(self, name: str, options: SourceOptions) -> None:
        self.secrets = [s.encode() for s in options.secrets]

    def verify(self, delivery: Delivery) -> None:
        given = delivery.header("x-test-signature")
        if not given or not hmac_matches(self.secrets, delivery.body, [bytes.fromhex(given)]):
            raise SignatureError("no matching signature")

    def intake(self, delivery: Delivery) -> Intake:
        topic = delivery.header("x-test-topic") or ""
        if topic == "ping":
            return Intake("record", topic, f"ping:{delivery.body.decode()}", "ping recorded")
        if topic != "order":
            return Intake("ignore", topic, reason=f"topic {topic!r} is not handled")
        return Intake("queue", topic, hashlib.sha256(delivery.body).hexdigest())

    def translate(self, delivery: Delivery, lookup: OrderLookup) -> Translation:
        payload = json.loads(delivery.body)
        mode = payload.pop("mode", "ok")
        if mode == "wait" and lookup.order(payload["orderId"]) is None:
            raise NotReady(f"order {payload['orderId']} has not arrived")
        if mode == "broken":
            raise TranslationError("unexpected shape: no line_items")
        return Translation(orders=[CanonicalOrder.model_validate(payload)])


class ExplodingPlatform(FakePlatform):
    """A platform whose adapter has a bug: a delivery marked `explode` raises a plain exception in translate."""

    provider: ClassVar[str] = "exploding"

    def translate(self, delivery: Delivery, lookup: OrderLookup) -> Translation:
        payload = json.loads(delivery.body)
        if payload.pop("explode", False):
            raise RuntimeError("adapter bug")
        return Translation(orders=[CanonicalOrder.model_validate(payload)])


def deliver(harness: Harness, payload: dict[str, Any] | bytes, topic: str = "order", secret: str = SECRET) -> Any:
    """POST a delivery of the fake platform's to the harness's `shop` source, signed with `secret`."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signature = hmac.new(secret.encode(), body, "sha256").hexdigest()
    return harness.client.post(
        "/webhooks/shop", content=body, headers={"X-Test-Signature": signature, "X-Test-Topic": topic}
    )


def canonical(order_id: str = "w-1", **fields: Any) -> dict[str, Any]:
    """A canonical order body for the fake platform."""
    return {
        "orderId": order_id,
        "totalCents": 2500,
        "currency": "USD",
        "orderedAt": "2026-06-01T12:00:00Z",
        "customer": {"email": "hook@example.com"},
        **fields,
    }
