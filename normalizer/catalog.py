"""The catalog's canonical product: what `POST /api/v1/products` accepts and what native catalog webhooks are
translated into. A field left out keeps the stored value; an explicit null clears it (`model_fields_set`)."""

from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, StrictInt

from normalizer.model import Cents, Currency, Id, RequiredId, _Strict

Text = Annotated[str, Field(max_length=1000)]
Url = Annotated[str, Field(max_length=2048)]


class Replenishment(_Strict):
    days: Annotated[StrictInt, Field(ge=1, le=36_500)]
    leadDays: Annotated[StrictInt, Field(ge=0, le=36_500)] = 0
    matchBy: Literal["product", "variant"] = "product"


class Variant(_Strict):
    variantId: RequiredId
    title: Text | None = None
    priceCents: Cents | None = None
    inStock: StrictBool | None = None
    # Negative when a platform oversells (Shopify's inventory_policy `continue`).
    inventoryQuantity: Annotated[StrictInt, Field(ge=-(2**62), le=2**62)] | None = None

    @property
    def in_stock(self) -> bool:
        return self.inStock is True or (self.inventoryQuantity or 0) > 0


class Product(_Strict):
    productId: RequiredId
    title: Text | None = None
    url: Url | None = None
    imageUrl: Url | None = None
    priceCents: Cents | None = None
    currency: Currency | None = None
    inStock: StrictBool | None = None
    variants: Annotated[list[Variant], Field(max_length=1000)] | None = None
    replenishment: Replenishment | None = None

    def given(self) -> dict[str, Any]:
        """The fields the sender gave (explicit nulls included), as JSON values; a rule is stored whole."""
        given = self.model_dump(mode="json", exclude_unset=True)
        if self.replenishment is not None:
            given["replenishment"] = self.replenishment.model_dump()
        return given


class ProductBatch(_Strict):
    products: Annotated[list[Product], Field(min_length=1, max_length=100)]


def in_stock_keys(product: dict[str, Any]) -> set[str]:
    """The keys of a stored product (its productId, its variants' ids) that are in stock. A variant is in stock
    when `inStock` is true or `inventoryQuantity` > 0; a product with variants when any of them is, one without
    by its own `inStock`. Anything unknown counts as out of stock."""
    variants = product.get("variants") or []
    keys = {
        str(variant["variantId"])
        for variant in variants
        if variant.get("inStock") is True or (variant.get("inventoryQuantity") or 0) > 0
    }
    if keys or (not variants and product.get("inStock") is True):
        keys.add(str(product["productId"]))
    return keys


__all__ = ["Id", "Product", "ProductBatch", "Replenishment", "Variant", "in_stock_keys"]
