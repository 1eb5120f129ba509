"""Shopify webhooks: signature, delivery key, which topics are handled and how each is translated (orders in
`shopify_orders`, compliance in `shopify_compliance`, products and checkouts in `shopify_catalog`; see
docs/shopify.md)."""

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from pydantic import Field, ValidationError, field_validator

from adapters._signatures import Verifier, shopify_hmac
from adapters.base import Delivery, Intake, OrderLookup, SourceOptions, Translation, TranslationError, body_hash
from adapters.shopify_catalog import CHECKOUT_TOPICS, PRODUCT_TOPICS, translate_checkout, translate_product
from adapters.shopify_compliance import COMPLIANCE_TOPICS, compliance_command, shape_mismatch
from adapters.shopify_orders import ORDER_TOPICS, translate_delete, translate_order, translate_refund
from normalizer.problems import describe

TOPICS = ORDER_TOPICS | COMPLIANCE_TOPICS | PRODUCT_TOPICS | CHECKOUT_TOPICS | {"orders/delete", "refunds/create"}
_TEST_FLAG = re.compile(rb'"test"\s*:\s*true')


class ShopifyOptions(SourceOptions):
    secrets: list[str] = Field(min_length=1)
    process_test_webhooks: bool = False
    # One source per shop: an app's client secret signs every shop the app is installed on, and shop/redact
    # erases the whole source, so a set domain turns deliveries from any other shop away.
    shop_domain: str | None = None

    @field_validator("secrets")
    @classmethod
    def _non_empty(cls, value: list[str]) -> list[str]:
        if any(not secret.strip() for secret in value):
            raise ValueError("each secret must be a non-empty string")
        return value

    @field_validator("shop_domain")
    @classmethod
    def _domain(cls, value: str | None) -> str | None:
        return value.strip().lower() or None if value else None


class ShopifyAdapter:
    provider: ClassVar[str] = "shopify"
    Options: ClassVar[type[SourceOptions]] = ShopifyOptions

    def __init__(self, name: str, options: Any) -> None:
        if not isinstance(options, ShopifyOptions):
            raise ValueError("options must be Shopify source options")
        if not options.secrets:
            raise ValueError("secrets: at least one secret is required")
        self.name = name
        self.options = options
        self._verifier = Verifier(shopify_hmac(), options.secrets)

    def verify(self, delivery: Delivery) -> None:
        self._verifier.verify(delivery)

    def intake(self, delivery: Delivery) -> Intake:
        topic = (delivery.header("x-shopify-topic", "shopify-topic") or "").strip().lower()
        webhook_id = delivery.header("x-shopify-webhook-id", "shopify-webhook-id")
        # Without a delivery id, a byte-identical body is the best repeat detector there is.
        dedup_key = webhook_id.strip() if webhook_id and webhook_id.strip() else f"body:{body_hash(delivery.body)}"
        if topic not in TOPICS:
            return Intake("ignore", topic or None, reason=f"topic {topic or '(none)'} is not handled")
        expected = self.options.shop_domain
        shop = (delivery.header("x-shopify-shop-domain", "shopify-shop-domain") or "").strip().lower()
        if expected and shop != expected:
            return Intake("ignore", topic, reason=f"delivery from shop {shop or '(none)'}; this source is {expected}")
        mismatch = shape_mismatch(topic, delivery.body, shop)
        if mismatch is not None:
            return Intake("ignore", topic, reason=mismatch)
        if not self.options.process_test_webhooks and _is_test(delivery):
            return Intake("record", topic, dedup_key, "test notification: recorded, not processed")
        return Intake("queue", topic, dedup_key)

    def translate(self, delivery: Delivery, lookup: OrderLookup) -> Translation:
        topic = (delivery.header("x-shopify-topic", "shopify-topic") or "").strip().lower()
        payload = _object(delivery.body)
        try:
            if topic in ORDER_TOPICS:
                if topic == "orders/edited" and "order_edit" in payload:
                    # orders/edited describes the edit only; Shopify sends orders/updated with the new totals.
                    return Translation(
                        warnings=["orders/edited carries no totals: the orders/updated sent with it brings them"]
                    )
                return translate_order(payload, lookup)
            if topic == "refunds/create":
                return translate_refund(payload, lookup)
            if topic == "orders/delete":
                return translate_delete(payload, lookup)
            if topic in COMPLIANCE_TOPICS:
                return Translation(commands=[compliance_command(topic, payload)])
            if topic in PRODUCT_TOPICS:
                shop = (delivery.header("x-shopify-shop-domain", "shopify-shop-domain") or "").strip().lower()
                return translate_product(payload, shop or None)
            if topic in CHECKOUT_TOPICS:
                return translate_checkout(payload)
        except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
            if isinstance(exc, ValidationError):
                raise
            raise TranslationError(f"{topic} payload has an unexpected shape: {describe(exc)}") from None
        raise TranslationError(f"topic {topic or '(none)'} is not handled")


def _is_test(delivery: Delivery) -> bool:
    if (delivery.header("x-shopify-test", "shopify-test") or "").strip().lower() == "true":
        return True
    # Every order carries "test"; parse only when a true flag is somewhere, and trust only the top-level one.
    if not _TEST_FLAG.search(delivery.body):
        return False
    try:
        payload = json.loads(delivery.body)
    except ValueError:
        return False
    return isinstance(payload, dict) and payload.get("test") is True


def _object(body: bytes) -> dict[str, Any]:
    try:
        # Decimal for every JSON number with a fraction (refund_line_items.subtotal is one): no float, ever.
        payload = json.loads(body, parse_float=Decimal)
    except ValueError:
        raise TranslationError("the body is not JSON") from None
    if not isinstance(payload, dict):
        raise TranslationError("the body is not a JSON object")
    return payload
