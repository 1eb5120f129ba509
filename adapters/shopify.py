"""Shopify order webhooks: signature, delivery key, topics, and the REST Order / Refund payloads as canonical
orders; the mandatory compliance topics become engine commands (see docs/shopify.md)."""

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, ClassVar

from pydantic import Field, ValidationError, field_validator

from adapters._signatures import Verifier, shopify_hmac
from adapters.base import (
    Command,
    Delivery,
    Intake,
    NotReady,
    OrderLookup,
    SourceOptions,
    Translation,
    TranslationError,
    body_hash,
    follow_up,
)
from adapters.shopify_catalog import CHECKOUT_TOPICS, PRODUCT_TOPICS, translate_checkout, translate_product
from normalizer import CanonicalOrder, Customer, Item
from normalizer.emails import normalise_email
from normalizer.money import MoneyError, exponent, normalise_currency, to_minor
from normalizer.problems import InputProblem, describe
from normalizer.timefmt import parse_instant

ORDER_TOPICS = frozenset(
    {
        "orders/create",
        "orders/paid",
        "orders/updated",
        "orders/edited",
        "orders/cancelled",
        "orders/fulfilled",
        "orders/partially_fulfilled",
    }
)
COMPLIANCE_TOPICS = frozenset({"customers/data_request", "customers/redact", "shop/redact", "app/uninstalled"})
TOPICS = ORDER_TOPICS | COMPLIANCE_TOPICS | PRODUCT_TOPICS | CHECKOUT_TOPICS | {"orders/delete", "refunds/create"}

# What each compliance topic's body holds (Shopify's documented fields; empty: any), the fields it must hold, and
# the field naming the shop, which must be the delivery's X-Shopify-Shop-Domain. app/uninstalled carries the
# Shop resource, whose fields vary by API version.
_COMPLIANCE_SHAPES: dict[str, tuple[frozenset[str], frozenset[str], str]] = {
    "customers/data_request": (
        frozenset({"shop_id", "shop_domain", "customer", "orders_requested", "data_request"}),
        frozenset({"shop_domain", "customer"}),
        "shop_domain",
    ),
    "customers/redact": (
        frozenset({"shop_id", "shop_domain", "customer", "orders_to_redact"}),
        frozenset({"shop_domain", "customer"}),
        "shop_domain",
    ),
    "shop/redact": (frozenset({"shop_id", "shop_domain"}), frozenset({"shop_domain"}), "shop_domain"),
    "app/uninstalled": (frozenset(), frozenset({"myshopify_domain"}), "myshopify_domain"),
}
# A refund or deletion states no latest-state facts (total, items, customer): the oldest possible version makes
# the ledger merge its monotone facts (refunds, cancelled) without overwriting anything newer.
_NO_FACTS = datetime(1970, 1, 1, tzinfo=UTC)
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
        mismatch = _shape_mismatch(topic, delivery.body, shop)
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


def _shape_mismatch(topic: str, body: bytes, shop: str) -> str | None:
    """Why a delete or compliance delivery's body is not of its topic's shape, or None. Shopify signs the body
    only, so a captured order body resent under `shop/redact` or `orders/delete` verifies: the shape (and, for
    compliance topics, the shop the body names) is what tells such a replay from the real thing."""
    if topic != "orders/delete" and topic not in _COMPLIANCE_SHAPES:
        return None
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        return f"{topic} body is not a JSON object"
    if topic == "orders/delete":
        return None if set(payload) == {"id"} else f"{topic} body is not the id-only body of that topic"
    allowed, required, domain_field = _COMPLIANCE_SHAPES[topic]
    if not required <= set(payload) or (allowed and not set(payload) <= allowed):
        return f"{topic} body does not have the fields of that topic"
    named = payload.get(domain_field)
    if not isinstance(named, str) or named.strip().lower() != shop:
        return f"{topic} body names another shop than X-Shopify-Shop-Domain"
    return None


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


def _id(value: Any, field: str) -> str:
    # Shopify ids exceed 2**53: json keeps them as exact ints, and they never pass through a float here.
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip():
        raise InputProblem(f"{field} must be an integer id")
    return str(value).strip()


def _money(value: Any, currency: str, field: str) -> int:
    if not isinstance(value, str | int | Decimal) or isinstance(value, bool):
        raise InputProblem(f"{field} must be a decimal string")
    try:
        return to_minor(value, currency)
    except MoneyError as exc:
        raise InputProblem(f"{field}: {exc}") from None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _shop_money(bag: Any) -> Mapping[str, Any] | None:
    return bag.get("shop_money") if isinstance(bag, Mapping) else None


def _presentment(bag: Any) -> Mapping[str, Any] | None:
    return bag.get("presentment_money") if isinstance(bag, Mapping) else None


def _rate(pairs: list[tuple[Any, Any]]) -> Decimal | None:
    """Shop units per presentment unit, from (shop amount, presentment amount) pairs of the same money."""
    shop = presentment = Decimal(0)
    for shop_amount, presentment_amount in pairs:
        shop += Decimal(shop_amount)
        presentment += Decimal(presentment_amount)
    return shop / presentment if presentment > 0 and shop > 0 else None


def _refund_cents(refund: Mapping[str, Any], currency: str, rate: Decimal | None) -> int | None:
    """Money a refund moved, in shop minor units: its successful `refund` transactions (authorisations voided
    or pending refunds move nothing). None when a transaction is in another currency with no way to convert."""
    total = 0
    for transaction in refund.get("transactions") or []:
        if transaction.get("kind") != "refund" or transaction.get("status") != "success":
            continue
        shop_money = _shop_money(transaction.get("amount_set"))
        paid_in = transaction.get("currency")
        if shop_money is not None:
            total += _money(shop_money["amount"], currency, "transactions.amount_set")
        elif not paid_in or normalise_currency(paid_in) == currency:
            total += _money(transaction["amount"], currency, "transactions.amount")
        elif rate is not None:
            # Multi-currency orders refund in the presentment currency: converted at the order's own rate.
            scaled = (Decimal(transaction["amount"]) * rate).scaleb(exponent(currency))
            total += int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
        else:
            return None
    return total


def _customer(payload: Mapping[str, Any], warnings: list[str]) -> Customer | None:
    person = _mapping(payload.get("customer"))
    email = next(
        (
            e
            for e in (person.get("email"), payload.get("email"), payload.get("contact_email"))
            if isinstance(e, str) and e.strip()
        ),
        None,
    )
    if email is None:
        return None
    try:
        normalise_email(email)
    except ValueError:
        # The address itself is personal data: the warning names the order, not the address.
        warnings.append(f"order {payload.get('id')} has an email address that is not valid: no subscriber")
        return None
    given: dict[str, Any] = {
        "externalId": _id(person["id"], "customer.id") if person.get("id") is not None else None,
        "firstName": person.get("first_name") or None,
        "lastName": person.get("last_name") or None,
    }
    return Customer(email=email, **{key: value for key, value in given.items() if value is not None})


def _paid_unit_cents(line: Mapping[str, Any], quantity: int, currency: str) -> int:
    """The unit price paid (docs/api.md, priceCents): Shopify's `price` is before discounts, and the line's
    `discount_allocations` hold its own discounts and its share of order discounts, in shop money."""
    discount = 0
    for allocation in line.get("discount_allocations") or []:
        shop_money = _shop_money(allocation.get("amount_set"))
        amount = shop_money["amount"] if shop_money is not None else allocation["amount"]
        discount += _money(amount, currency, "line_items.discount_allocations.amount")
    paid = _money(line["price"], currency, "line_items.price") * quantity - discount
    unit = (Decimal(max(paid, 0)) / quantity).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    return int(unit)


def _items(payload: Mapping[str, Any], currency: str) -> list[Item]:
    items = []
    for line in payload.get("line_items") or []:
        quantity = line.get("quantity")
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
            continue
        product = line.get("product_id")
        fields: dict[str, Any] = {
            # Custom items and tips have no product: their line item id keeps them apart.
            "productId": _id(product, "product_id") if product is not None else f"custom:{_id(line['id'], 'id')}",
            "variantId": _id(line["variant_id"], "variant_id") if line.get("variant_id") is not None else None,
            "sku": line.get("sku") or None,
            "title": line.get("title") or line.get("name") or "(untitled)",
            "variantTitle": line.get("variant_title") or None,
            "quantity": quantity,
            "priceCents": _paid_unit_cents(line, quantity, currency) if line.get("price") is not None else None,
        }
        # Absent, not None: an item states only what the platform gave.
        items.append(Item(**{key: value for key, value in fields.items() if value is not None}))
    return items


def translate_order(payload: Mapping[str, Any], lookup: OrderLookup) -> Translation:
    """An Order payload: one canonical order per status it implies, each carrying the order's latest facts."""
    warnings: list[str] = []
    order_id = _id(payload["id"], "id")
    currency = normalise_currency(payload["currency"])
    order_rate = _rate(
        [
            (shop["amount"], presentment["amount"])
            for bag in (payload.get("total_price_set"),)
            if (shop := _shop_money(bag))
            and (presentment := _presentment(bag))
            and presentment.get("currency_code") != currency
        ]
    )
    refunds: dict[str, int] = {}
    for refund in payload.get("refunds") or []:
        cents = _refund_cents(refund, currency, order_rate)
        if cents is None:
            warnings.append(f"refund {refund.get('id')} of order {order_id} is in a currency with no rate: left out")
        elif cents > 0:
            refunds[_id(refund["id"], "refunds.id")] = cents
    refunded = sum(refunds.values())
    current = payload.get("current_total_price")
    if current is not None:
        # current_total_price is net of edits, returns and refunds; the ledger subtracts refunds itself, so the
        # order's total is what it is now plus the money refunded.
        total = _money(current, currency, "current_total_price") + refunded
    else:
        total = _money(payload["total_price"], currency, "total_price")
    properties: dict[str, Any] = {}
    # What the buyer was charged at checkout, in their own currency.
    presentment = _presentment(payload.get("total_price_set"))
    if presentment is not None:
        code = normalise_currency(presentment["currency_code"])
        properties["presentmentCurrency"] = code
        properties["presentmentTotalCents"] = _money(presentment["amount"], code, "presentment_money.amount")
    elif payload.get("presentment_currency"):
        properties["presentmentCurrency"] = normalise_currency(payload["presentment_currency"])
    ordered_at = payload.get("processed_at") or payload.get("created_at")
    updated_at = payload.get("updated_at")
    given: dict[str, Any] = {
        "orderNumber": payload.get("name") or (str(payload["order_number"]) if payload.get("order_number") else None),
        "orderedAt": parse_instant(ordered_at) if ordered_at else None,
        "updatedAt": parse_instant(updated_at) if updated_at else None,
        # The checkout it completed: that checkout closes, and no abandonment reminder follows it.
        "checkoutId": payload.get("checkout_token") or None,
    }
    facts: dict[str, Any] = {
        "orderId": order_id,
        "totalCents": total,
        "currency": currency,
        "customer": _customer(payload, warnings),
        "items": _items(payload, currency),
        "properties": properties,
        **{key: value for key, value in given.items() if value is not None},
    }
    orders = [CanonicalOrder(status="placed", **facts)]
    if payload.get("fulfillment_status") == "fulfilled":
        orders.append(CanonicalOrder(status="fulfilled", **facts))
    if refunded > 0:
        # The event states the refunds so far: a payload older than a refund the ledger already holds (from
        # refunds/create or a newer update) then repeats that event instead of announcing a smaller refund.
        stored = lookup.order(order_id)
        so_far = sum({**(stored.refunds if stored else {}), **refunds}.values())
        if so_far > total:
            warnings.append(f"order {order_id} refunded more than its total: counted as fully refunded")
        orders.append(CanonicalOrder(status="refunded", refundAmountCents=min(so_far, total), refunds=refunds, **facts))
    if payload.get("cancelled_at"):
        orders.append(CanonicalOrder(status="cancelled", **facts))
    return Translation(orders=orders, warnings=warnings)


def translate_refund(payload: Mapping[str, Any], lookup: OrderLookup) -> Translation:
    """refunds/create: no customer, total or name; joined to the stored order, or retried until it arrives."""
    order_id = _id(payload["order_id"], "order_id")
    refund_id = _id(payload["id"], "id")
    stored = lookup.order(order_id)
    if stored is None:
        raise NotReady(f"refund {refund_id} belongs to order {order_id}, which has not arrived yet")
    rate = _rate(
        [
            (shop["amount"], presentment["amount"])
            for line in payload.get("refund_line_items") or []
            if (shop := _shop_money(line.get("subtotal_set")))
            and (presentment := _presentment(line.get("subtotal_set")))
        ]
    )
    cents = _refund_cents(payload, stored.currency, rate)
    if cents is None:
        return Translation(
            warnings=[f"refund {refund_id} is in a currency with no rate: the next order update will carry it"]
        )
    if cents == 0:
        return Translation(warnings=[f"refund {refund_id} moved no money (no successful refund transaction)"])
    refunds = {**stored.refunds, refund_id: cents}
    refunded = sum(refunds.values())
    warnings = []
    if refunded > stored.totalCents:
        warnings.append(f"order {order_id} refunded more than its total: counted as fully refunded")
    order = follow_up(
        stored, "refunded", _NO_FACTS, refundAmountCents=min(refunded, stored.totalCents), refunds=refunds
    )
    return Translation(orders=[order], warnings=warnings)


def translate_delete(payload: Mapping[str, Any], lookup: OrderLookup) -> Translation:
    """orders/delete carries only the id: a known order is cancelled (it leaves the customer's totals, its
    history stays); an unknown one is acknowledged with a warning (nothing to take back)."""
    order_id = _id(payload["id"], "id")
    stored = lookup.order(order_id)
    if stored is None:
        return Translation(warnings=[f"order {order_id} was deleted before the gateway received it: nothing to do"])
    order = follow_up(stored, "cancelled", _NO_FACTS, properties={"deleted": True})
    return Translation(orders=[order])


def compliance_command(topic: str, payload: Mapping[str, Any]) -> Command:
    shop = payload.get("shop_domain")
    if topic == "shop/redact":
        return Command("erase_source", {"shopDomain": shop})
    if topic == "app/uninstalled":
        return Command("app_uninstalled", {"shopDomain": shop or payload.get("myshopify_domain")})
    person = _mapping(payload.get("customer"))
    email = person.get("email")
    args = {
        "email": normalise_email(email) if isinstance(email, str) and email.strip() else None,
        "customerId": _id(person["id"], "customer.id") if person.get("id") is not None else None,
    }
    if topic == "customers/redact":
        orders = payload.get("orders_to_redact") or []
        return Command("erase_customer", {**args, "orderIds": [_id(o, "orders_to_redact") for o in orders]})
    request = _mapping(payload.get("data_request"))
    return Command("data_request", {**args, "requestId": request.get("id")})
