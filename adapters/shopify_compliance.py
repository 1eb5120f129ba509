"""Shopify's mandatory compliance topics (customer data request and redaction, shop redaction, app uninstall):
the shape each body must have, and the engine command each becomes (see docs/shopify.md)."""

import json
from collections.abc import Mapping
from typing import Any

from adapters.base import Command
from adapters.shopify_fields import mapping, shopify_id
from normalizer.emails import normalise_email

COMPLIANCE_TOPICS = frozenset({"customers/data_request", "customers/redact", "shop/redact", "app/uninstalled"})

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


def shape_mismatch(topic: str, body: bytes, shop: str) -> str | None:
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


def compliance_command(topic: str, payload: Mapping[str, Any]) -> Command:
    shop = payload.get("shop_domain")
    if topic == "shop/redact":
        return Command("erase_source", {"shopDomain": shop})
    if topic == "app/uninstalled":
        return Command("app_uninstalled", {"shopDomain": shop or payload.get("myshopify_domain")})
    person = mapping(payload.get("customer"))
    email = person.get("email")
    args = {
        "email": normalise_email(email) if isinstance(email, str) and email.strip() else None,
        "customerId": shopify_id(person["id"], "customer.id") if person.get("id") is not None else None,
    }
    if topic == "customers/redact":
        orders = payload.get("orders_to_redact") or []
        return Command("erase_customer", {**args, "orderIds": [shopify_id(o, "orders_to_redact") for o in orders]})
    request = mapping(payload.get("data_request"))
    return Command("data_request", {**args, "requestId": request.get("id")})
