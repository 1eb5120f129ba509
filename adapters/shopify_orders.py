"""Shopify's order topics: the REST Order payload as canonical orders (one per status it implies),
refunds/create joined to its stored order, and orders/delete as a cancellation (see docs/shopify.md)."""

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from adapters.base import NotReady, OrderLookup, Translation, follow_up
from adapters.shopify_fields import mapping, money, presentment_money, shop_money, shopify_id
from normalizer import CanonicalOrder, Customer, Item
from normalizer.emails import normalise_email
from normalizer.money import exponent, normalise_currency
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

# A refund or deletion states no latest-state facts (total, items, customer): the oldest possible version makes
# the ledger merge its monotone facts (refunds, cancelled) without overwriting anything newer.
_NO_FACTS = datetime(1970, 1, 1, tzinfo=UTC)


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
        in_shop = shop_money(transaction.get("amount_set"))
        paid_in = transaction.get("currency")
        if in_shop is not None:
            total += money(in_shop["amount"], currency, "transactions.amount_set")
        elif not paid_in or normalise_currency(paid_in) == currency:
            total += money(transaction["amount"], currency, "transactions.amount")
        elif rate is not None:
            # Multi-currency orders refund in the presentment currency: converted at the order's own rate.
            scaled = (Decimal(transaction["amount"]) * rate).scaleb(exponent(currency))
            total += int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
        else:
            return None
    return total


def _customer(payload: Mapping[str, Any], warnings: list[str]) -> Customer | None:
    person = mapping(payload.get("customer"))
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
        "externalId": shopify_id(person["id"], "customer.id") if person.get("id") is not None else None,
        "firstName": person.get("first_name") or None,
        "lastName": person.get("last_name") or None,
    }
    return Customer(email=email, **{key: value for key, value in given.items() if value is not None})


def _paid_unit_cents(line: Mapping[str, Any], quantity: int, currency: str) -> int:
    """The unit price paid (docs/api.md, priceCents): Shopify's `price` is before discounts, and the line's
    `discount_allocations` hold its own discounts and its share of order discounts, in shop money."""
    discount = 0
    for allocation in line.get("discount_allocations") or []:
        in_shop = shop_money(allocation.get("amount_set"))
        amount = in_shop["amount"] if in_shop is not None else allocation["amount"]
        discount += money(amount, currency, "line_items.discount_allocations.amount")
    paid = money(line["price"], currency, "line_items.price") * quantity - discount
    unit = (Decimal(max(paid, 0)) / quantity).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    return int(unit)


def _items(payload: Mapping[str, Any], currency: str) -> list[Item]:
    items = []
    for line in payload.get("line_items") or []:
        quantity = line.get("quantity")
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
            continue
        product = line.get("product_id")
        # Custom items and tips have no product: their line item id keeps them apart.
        if product is not None:
            product_id = shopify_id(product, "product_id")
        else:
            product_id = f"custom:{shopify_id(line['id'], 'id')}"
        fields: dict[str, Any] = {
            "productId": product_id,
            "variantId": shopify_id(line["variant_id"], "variant_id") if line.get("variant_id") is not None else None,
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
    order_id = shopify_id(payload["id"], "id")
    currency = normalise_currency(payload["currency"])
    refunds = _order_refunds(payload, order_id, currency, warnings)
    refunded = sum(refunds.values())
    current = payload.get("current_total_price")
    if current is not None:
        # current_total_price is net of edits, returns and refunds; the ledger subtracts refunds itself, so the
        # order's total is what it is now plus the money refunded.
        total = money(current, currency, "current_total_price") + refunded
    else:
        total = money(payload["total_price"], currency, "total_price")
    facts = _order_facts(payload, order_id, currency, total, warnings)
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


def _order_refunds(payload: Mapping[str, Any], order_id: str, currency: str, warnings: list[str]) -> dict[str, int]:
    """The order's refunds that moved money, by refund id, in shop minor units."""
    order_rate = _rate(
        [
            (shop["amount"], presentment["amount"])
            for bag in (payload.get("total_price_set"),)
            if (shop := shop_money(bag))
            and (presentment := presentment_money(bag))
            and presentment.get("currency_code") != currency
        ]
    )
    refunds: dict[str, int] = {}
    for refund in payload.get("refunds") or []:
        cents = _refund_cents(refund, currency, order_rate)
        if cents is None:
            warnings.append(f"refund {refund.get('id')} of order {order_id} is in a currency with no rate: left out")
        elif cents > 0:
            refunds[shopify_id(refund["id"], "refunds.id")] = cents
    return refunds


def _order_facts(
    payload: Mapping[str, Any], order_id: str, currency: str, total: int, warnings: list[str]
) -> dict[str, Any]:
    """What every canonical order of the payload states, whatever its status."""
    properties: dict[str, Any] = {}
    # What the buyer was charged at checkout, in their own currency.
    presentment = presentment_money(payload.get("total_price_set"))
    if presentment is not None:
        code = normalise_currency(presentment["currency_code"])
        properties["presentmentCurrency"] = code
        properties["presentmentTotalCents"] = money(presentment["amount"], code, "presentment_money.amount")
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
    return {
        "orderId": order_id,
        "totalCents": total,
        "currency": currency,
        "customer": _customer(payload, warnings),
        "items": _items(payload, currency),
        "properties": properties,
        **{key: value for key, value in given.items() if value is not None},
    }


def translate_refund(payload: Mapping[str, Any], lookup: OrderLookup) -> Translation:
    """refunds/create: no customer, total or name; joined to the stored order, or retried until it arrives."""
    order_id = shopify_id(payload["order_id"], "order_id")
    refund_id = shopify_id(payload["id"], "id")
    stored = lookup.order(order_id)
    if stored is None:
        raise NotReady(f"refund {refund_id} belongs to order {order_id}, which has not arrived yet")
    rate = _rate(
        [
            (shop["amount"], presentment["amount"])
            for line in payload.get("refund_line_items") or []
            if (shop := shop_money(line.get("subtotal_set")))
            and (presentment := presentment_money(line.get("subtotal_set")))
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
    order_id = shopify_id(payload["id"], "id")
    stored = lookup.order(order_id)
    if stored is None:
        return Translation(warnings=[f"order {order_id} was deleted before the gateway received it: nothing to do"])
    order = follow_up(stored, "cancelled", _NO_FACTS, properties={"deleted": True})
    return Translation(orders=[order])
