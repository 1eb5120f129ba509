"""WooCommerce's product webhooks for the lifecycle engine: `product.created` and `product.updated` (the REST v3
product) as catalog updates. A variation fires product webhooks of its own (`type: variation`, `parent_id`):
it updates that one variant of its parent, whose other variants are kept (see docs/lifecycle.md)."""

import html
from typing import Any

from adapters.base import Command, Translation, TranslationError
from normalizer.catalog import Product, Variant

PRODUCT_TOPICS = frozenset({"product.created", "product.updated"})


def _in_stock(payload: dict[str, Any]) -> bool | None:
    """`instock` is in stock; `outofstock` and `onbackorder` (orderable, but not on the shelf) are not."""
    status = payload.get("stock_status")
    return None if status is None else status == "instock"


def _quantity(payload: dict[str, Any]) -> int | None:
    quantity = payload.get("stock_quantity")
    if not payload.get("manage_stock") or isinstance(quantity, bool) or not isinstance(quantity, int):
        return None
    return quantity


def _name(payload: dict[str, Any]) -> str | None:
    name = payload.get("name")
    return html.unescape(name).strip() or None if isinstance(name, str) else None


def translate_product(payload: dict[str, Any]) -> Translation:
    try:
        if payload.get("type") == "variation" and payload.get("parent_id"):
            variant = Variant.model_validate(
                _present(
                    variantId=payload["id"],
                    title=_name(payload),
                    inStock=_in_stock(payload),
                    inventoryQuantity=_quantity(payload),
                )
            )
            product = Product.model_validate({"productId": payload["parent_id"], "variants": [variant]})
            return Translation(commands=[Command("catalog_update", {"products": [product]})])
        images = payload.get("images") or []
        image = images[0].get("src") if images and isinstance(images[0], dict) else None
        product = Product.model_validate(
            _present(
                productId=payload["id"],
                title=_name(payload),
                url=payload.get("permalink") or None,
                imageUrl=image or None,
                inStock=_in_stock(payload),
            )
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise TranslationError(f"product {payload.get('id')}: unexpected shape ({type(exc).__name__})") from None
    return Translation(commands=[Command("catalog_update", {"products": [product]})])


def _present(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}
