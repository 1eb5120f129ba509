"""Platform adapters, one module each, in one registry: adding a platform is one module and one line here."""

from adapters.base import (
    Adapter,
    Command,
    Delivery,
    Intake,
    NotReady,
    OrderLookup,
    SignatureError,
    SourceOptions,
    Translation,
    TranslationError,
)
from adapters.custom import CustomAdapter
from adapters.shopify import ShopifyAdapter
from adapters.woocommerce import WooCommerceAdapter

REGISTRY: dict[str, type[Adapter]] = {
    "custom": CustomAdapter,
    "shopify": ShopifyAdapter,
    "woocommerce": WooCommerceAdapter,
}

__all__ = [
    "REGISTRY",
    "Adapter",
    "Command",
    "Delivery",
    "Intake",
    "NotReady",
    "OrderLookup",
    "SignatureError",
    "SourceOptions",
    "Translation",
    "TranslationError",
]
