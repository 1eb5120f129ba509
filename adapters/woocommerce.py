"""WooCommerce: signed order webhooks (and the unsigned ping) in, canonical orders out.

The REST v3 order is both the webhook payload and what the REST API returns, so `translate_order` serves the
webhook worker and the reconciliation backfill alike.
"""

import html
import json
import re
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from adapters._signatures import Verifier, woocommerce_hmac
from adapters.base import (
    Delivery,
    Intake,
    OrderLookup,
    SourceOptions,
    Translation,
    TranslationError,
    body_hash,
    follow_up,
)
from adapters.woocommerce_catalog import PRODUCT_TOPICS, translate_product
from normalizer import CanonicalOrder, Customer, Item
from normalizer.model import Status
from normalizer.money import MoneyError, exponent, to_minor
from normalizer.problems import describe, problems

TOPICS = frozenset({"order.created", "order.updated", "order.deleted", "order.restored"}) | PRODUCT_TOPICS
ERASED_EMAIL = "deleted@site.invalid"  # what WordPress's personal data eraser leaves in billing.email

_PING = re.compile(rb"webhook_id=([0-9]{1,20})")
_STATUSES: dict[str, tuple[Status, ...]] = {
    "processing": ("placed",),
    "on-hold": ("placed",),
    "completed": ("placed", "fulfilled"),
    "cancelled": ("cancelled",),
    "refunded": ("refunded",),
}
_NOT_YET_ORDERS = frozenset({"pending", "failed", "checkout-draft"})
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# wp_specialchars_decode(…, ENT_QUOTES), which WooCommerce applies to the secret before signing.
_WP_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&#039;", "'"), ("&#x27;", "'"), ("&amp;", "&"))


class WooApi(BaseModel):
    """The store's REST API for `commerce-gateway backfill` (keys: WooCommerce > Settings > Advanced > REST API)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    consumer_key: str = Field(min_length=1)
    consumer_secret: str = Field(min_length=1)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("must be the store's base URL, e.g. https://shop.example.com")
        # Basic auth sends the consumer secret in clear: only over TLS, or to this machine for testing.
        if parts.scheme == "http" and parts.hostname not in _LOCAL_HOSTS:
            raise ValueError("must use https (the consumer secret is sent with every request)")
        return value.strip().rstrip("/")


class WooCommerceOptions(SourceOptions):
    secrets: list[str] = Field(min_length=1)
    api: WooApi | None = None

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, value: list[str]) -> list[str]:
        if any(not secret for secret in value):
            raise ValueError("a webhook secret must not be empty")
        return value


def _wp_specialchars_decode(text: str) -> str:
    for entity, char in _WP_ENTITIES:
        text = text.replace(entity, char)
    return text


def ping_id(body: bytes) -> str | None:
    """The webhook id when `body` is exactly WooCommerce's ping (`webhook_id=N`), else None."""
    match = _PING.fullmatch(body)
    return match.group(1).decode() if match else None


def _id_only(body: bytes) -> bool:
    try:
        payload = json.loads(body)
    except ValueError:
        return False
    return isinstance(payload, dict) and set(payload) == {"id"}


def dedup_key(topic: str, body: bytes) -> str:
    # X-WC-Webhook-Delivery-ID is new on every attempt, so only the content identifies a repeat.
    return f"{topic}:{body_hash(body)}"


class WooCommerceAdapter:
    provider: ClassVar[str] = "woocommerce"
    Options: ClassVar[type[SourceOptions]] = WooCommerceOptions

    def __init__(self, name: str, options: Any) -> None:
        if not isinstance(options, WooCommerceOptions) or not options.secrets:
            raise ValueError("secrets: at least one webhook secret is required")
        self.name = name
        self.options = options
        keys: list[str] = []
        for secret in options.secrets:
            for variant in (secret, _wp_specialchars_decode(secret)):
                if variant not in keys:
                    keys.append(variant)
        self._verifier = Verifier(woocommerce_hmac(), keys)

    def verify(self, delivery: Delivery) -> None:
        # The ping sent when a webhook is saved is the one unsigned request WooCommerce makes.
        if delivery.header("x-wc-webhook-signature") is None and ping_id(delivery.body) is not None:
            return
        self._verifier.verify(delivery)

    def intake(self, delivery: Delivery) -> Intake:
        webhook_id = ping_id(delivery.body)
        if webhook_id is not None:
            # Acknowledged and nothing kept: the ping is unsigned, so anyone could send any number of them.
            return Intake(action="ignore", topic="ping", reason=f"WooCommerce ping for webhook {webhook_id}")
        topic = delivery.header("x-wc-webhook-topic")
        if topic is None:
            return Intake(action="ignore", reason="no X-WC-Webhook-Topic header")
        topic = topic.strip().lower()
        if topic not in TOPICS:
            return Intake(action="ignore", topic=topic, reason=f"topic {topic} is not handled")
        if topic == "order.deleted" and not _id_only(delivery.body):
            # WooCommerce signs the body only: an order body resent as order.deleted would cancel that order.
            return Intake(
                action="ignore", topic=topic, reason="order.deleted body is not the id-only body of that topic"
            )
        return Intake(action="queue", topic=topic, dedup_key=dedup_key(topic, delivery.body))

    def translate(self, delivery: Delivery, lookup: OrderLookup) -> Translation:
        topic = (delivery.header("x-wc-webhook-topic") or "").strip().lower()
        try:
            # Decimal: line item `price` is a JSON number and money never passes through a float.
            payload = json.loads(delivery.body, parse_float=Decimal)
        except (ValueError, UnicodeDecodeError):
            raise TranslationError("the body is not JSON") from None
        if isinstance(payload, dict) and "id" not in payload and isinstance(payload.get("order"), dict):
            raise TranslationError("legacy API payload: set the webhook's API version to WP REST API Integration v3")
        if not isinstance(payload, dict) or "id" not in payload:
            raise TranslationError("the body is not a WooCommerce order (no id)")
        if topic == "order.deleted":
            return cancel_known(str(payload["id"]), lookup, "deleted")
        if topic in PRODUCT_TOPICS:
            return translate_product(payload)
        return translate_order(payload, lookup)


def cancel_known(order_id: str, lookup: OrderLookup, why: str, updated_at: str | None = None) -> Translation:
    """Deleting or trashing cancels an order the ledger holds; an unknown one has nothing to cancel."""
    stored = lookup.order(order_id)
    if stored is None:
        return Translation(warnings=[f"order {order_id} was {why} before the gateway saw it: nothing to cancel"])
    return Translation(orders=[follow_up(stored, "cancelled", updated_at)])


def translate_order(payload: dict[str, Any], lookup: OrderLookup) -> Translation:
    """A REST v3 order (webhook payload or REST API response) as the canonical orders its status implies."""
    order_id = str(payload["id"])
    status = str(payload.get("status", "")).removeprefix("wc-")
    if status == "trash":
        return cancel_known(order_id, lookup, "trashed", payload.get("date_modified_gmt") or None)
    if status in _NOT_YET_ORDERS:
        return Translation(warnings=[f"order {order_id} is {status}: not an order yet, nothing recorded"])
    statuses = _STATUSES.get(status)
    if statuses is None:
        return Translation(warnings=[f"order {order_id} has status {status!r}, which the gateway does not map"])
    try:
        return _translate(payload, order_id, statuses, lookup)
    except MoneyError as exc:
        raise TranslationError(f"order {order_id}: {exc}") from None
    except ValidationError:
        raise  # the worker describes it without the input values (personal data)
    except (KeyError, TypeError, AttributeError, ValueError, ArithmeticError) as exc:
        raise TranslationError(f"order {order_id}: unexpected shape ({describe(exc)})") from None


def _translate(
    payload: dict[str, Any], order_id: str, statuses: tuple[Status, ...], lookup: OrderLookup
) -> Translation:
    currency = str(payload["currency"])
    total = to_minor(str(payload["total"]), currency)
    warnings: list[str] = []
    customer = _customer(payload, order_id, warnings)
    refunds = {
        str(refund["id"]): abs(to_minor(str(refund["total"]), currency)) for refund in payload.get("refunds") or []
    }
    refunded = min(sum(refunds.values()), total)
    common: dict[str, Any] = {
        "customer": customer,
        **_present(
            orderId=order_id,
            orderNumber=str(payload["number"]) if payload.get("number") else None,
            totalCents=total,
            currency=currency,
            items=[_item(line, currency) for line in payload.get("line_items") or []],
            refunds=refunds,
            # The _gmt fields carry no offset: they are UTC, which is what a bare timestamp means here too.
            orderedAt=payload.get("date_created_gmt") or None,
            updatedAt=payload.get("date_modified_gmt") or None,
        ),
    }
    orders = [
        CanonicalOrder.model_validate({**common, "status": status, "refundAmountCents": total})
        if status == "refunded"
        else CanonicalOrder.model_validate({**common, "status": status})
        for status in statuses
    ]
    if "refunded" not in statuses and refunded > 0 and not _later_refunds_known(order_id, refunds, lookup):
        # A partial refund leaves the status alone; the refunded event carries the amount refunded so far.
        orders.append(CanonicalOrder.model_validate({**common, "status": "refunded", "refundAmountCents": refunded}))
    return Translation(orders=orders, warnings=warnings)


def _later_refunds_known(order_id: str, refunds: dict[str, int], lookup: OrderLookup) -> bool:
    """Does the ledger hold refunds this payload lacks? Then it was built before them (deliveries arrive in any
    order) and its smaller refunded amount must not fire a refund event after the larger one."""
    stored = lookup.order(order_id)
    return stored is not None and bool(set(stored.refunds) - set(refunds))


def _customer(payload: dict[str, Any], order_id: str, warnings: list[str]) -> Customer | None:
    billing = payload.get("billing") or {}
    email = str(billing.get("email") or "").strip()
    if not email:
        warnings.append(f"order {order_id} has no billing email: no subscriber")
        return None
    if email.lower() == ERASED_EMAIL:
        warnings.append(f"order {order_id}: the customer's personal data was erased: no subscriber")
        return None
    customer_id = payload.get("customer_id") or 0
    try:
        return Customer.model_validate(
            _present(
                email=email,
                externalId=str(customer_id) if customer_id else None,
                firstName=billing.get("first_name") or None,
                lastName=billing.get("last_name") or None,
            )
        )
    except ValidationError as exc:
        fields = ", ".join(sorted({str(problem.loc[0]) for problem in problems(exc)}))
        warnings.append(f"order {order_id} has billing details the gateway cannot use ({fields}): no subscriber")
        return None


def _item(line: dict[str, Any], currency: str) -> Item:
    variation = line.get("variation_id") or 0
    price = line.get("price")
    price_cents = None
    if price is not None and not isinstance(price, bool):
        # `price` is the unit price after discounts, which can have more decimals than the currency.
        scaled = Decimal(str(price)).scaleb(exponent(currency))
        price_cents = max(0, int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_EVEN)))
    return Item.model_validate(
        _present(
            productId=str(line["product_id"]),
            variantId=str(variation) if variation else None,
            sku=line.get("sku") or None,
            title=html.unescape(str(line["name"])),
            quantity=int(line["quantity"]),
            priceCents=price_cents,
        )
    )


def _present(**fields: Any) -> dict[str, Any]:
    # Absent rather than None: an absent field keeps what the ledger knows, and the model's identifier
    # fields do not take an explicit None.
    return {key: value for key, value in fields.items() if value is not None}
