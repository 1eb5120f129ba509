"""Shopify's catalog and checkout webhooks for the lifecycle engine: `products/create` and `products/update`
(the REST Product resource) as catalog updates, `checkouts/create` and `checkouts/update` (the abandoned
checkout resource) as checkouts. Both leave the adapter as engine commands (see docs/lifecycle.md)."""

from collections.abc import Mapping
from typing import Any

from adapters.base import Command, Translation
from adapters.shopify_fields import mapping
from normalizer import Customer, Item
from normalizer.catalog import Product, Variant
from normalizer.checkout import NativeCheckout
from normalizer.emails import normalise_email
from normalizer.money import MoneyError, normalise_currency, to_minor
from normalizer.timefmt import parse_instant

PRODUCT_TOPICS = frozenset({"products/create", "products/update"})
CHECKOUT_TOPICS = frozenset({"checkouts/create", "checkouts/update"})


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _variant(variant: Mapping[str, Any]) -> Variant:
    # Sold when out of stock (`continue`), or not tracked at all: it can be bought, so it is in stock.
    untracked = "inventory_management" in variant and not variant["inventory_management"]
    fields: dict[str, Any] = {
        "variantId": variant["id"],
        "title": _text(variant.get("title")),
        "inventoryQuantity": variant.get("inventory_quantity"),
        "inStock": True if variant.get("inventory_policy") == "continue" or untracked else None,
    }
    return Variant.model_validate({key: value for key, value in fields.items() if value is not None})


def translate_product(payload: Mapping[str, Any], shop_domain: str | None) -> Translation:
    """A Product: its title, storefront URL (from the handle, on the shop's domain), first image and every
    variant's stock; the variant list replaces the stored one (Shopify sends them all)."""
    image = payload.get("image") or next(iter(payload.get("images") or []), None) or {}
    handle = _text(payload.get("handle"))
    fields: dict[str, Any] = {
        "productId": payload["id"],
        "title": _text(payload.get("title")),
        "url": f"https://{shop_domain}/products/{handle}" if shop_domain and handle else None,
        "imageUrl": _text(image.get("src")) if isinstance(image, Mapping) else None,
        "variants": [_variant(variant) for variant in payload.get("variants") or []],
    }
    product = Product.model_validate({key: value for key, value in fields.items() if value is not None})
    return Translation(commands=[Command("catalog_update", {"products": [product], "replaceVariants": True})])


def _customer(payload: Mapping[str, Any]) -> Customer | None:
    person = mapping(payload.get("customer"))
    address = mapping(payload.get("billing_address"))
    email = _text(payload.get("email")) or _text(person.get("email"))
    if email is None:
        return None
    try:
        normalise_email(email)
    except ValueError:
        return None
    fields = {
        "email": email,
        "externalId": person.get("id"),
        "firstName": _text(person.get("first_name")) or _text(address.get("first_name")),
        "lastName": _text(person.get("last_name")) or _text(address.get("last_name")),
    }
    return Customer.model_validate({key: value for key, value in fields.items() if value is not None})


def _line(line: Mapping[str, Any], currency: str | None) -> Item | None:
    quantity = line.get("quantity")
    if line.get("product_id") is None or not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
        return None  # a custom line or a gift card: nothing a reminder could name
    price = line.get("price")
    fields: dict[str, Any] = {
        "productId": line["product_id"],
        "variantId": line.get("variant_id"),
        "sku": _text(line.get("sku")),
        "title": _text(line.get("title")) or "(untitled)",
        "variantTitle": _text(line.get("variant_title")),
        "quantity": quantity,
        "priceCents": to_minor(str(price), currency) if price is not None and currency else None,
    }
    return Item.model_validate({key: value for key, value in fields.items() if value is not None})


def translate_checkout(payload: Mapping[str, Any]) -> Translation:
    """An abandoned-checkout resource keyed by its `token` (which orders carry as `checkout_token`)."""
    token = _text(payload.get("token"))
    if token is None:
        raise ValueError("token: a checkout without a token")
    customer = _customer(payload)
    if customer is None:
        warning = f"checkout {token} has no usable email yet: nothing started"
        return Translation(commands=[Command("checkout", {"checkout": None, "warning": warning})])
    currency = normalise_currency(payload["currency"]) if _text(payload.get("currency")) else None
    try:
        items = [item for line in payload.get("line_items") or [] if (item := _line(line, currency))]
        total = to_minor(str(payload["total_price"]), currency) if payload.get("total_price") and currency else None
    except MoneyError as exc:
        raise ValueError(f"checkout {token}: {exc}") from None
    updated = payload.get("updated_at")
    fields: dict[str, Any] = {
        "checkoutId": token,
        "totalCents": total,
        "currency": currency,
        "checkoutUrl": _text(payload.get("abandoned_checkout_url")),
        "customer": customer,
        "items": items,
        "completed": bool(payload.get("completed_at")),
        "updatedAt": parse_instant(updated) if isinstance(updated, str) and updated.strip() else None,
    }
    checkout = NativeCheckout.model_validate({key: value for key, value in fields.items() if value is not None})
    return Translation(commands=[Command("checkout", {"checkout": checkout})])
