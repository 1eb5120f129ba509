"""How Shopify's REST resources write ids, money and nested objects, read the same way by every Shopify topic."""

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from normalizer.money import MoneyError, to_minor
from normalizer.problems import InputProblem


def shopify_id(value: Any, field: str) -> str:
    # Shopify ids exceed 2**53: json keeps them as exact ints, and they never pass through a float here.
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip():
        raise InputProblem(f"{field} must be an integer id")
    return str(value).strip()


def money(value: Any, currency: str, field: str) -> int:
    if not isinstance(value, str | int | Decimal) or isinstance(value, bool):
        raise InputProblem(f"{field} must be a decimal string")
    try:
        return to_minor(value, currency)
    except MoneyError as exc:
        raise InputProblem(f"{field}: {exc}") from None


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def shop_money(bag: Any) -> Mapping[str, Any] | None:
    """A money bag's amount in the shop's currency."""
    return bag.get("shop_money") if isinstance(bag, Mapping) else None


def presentment_money(bag: Any) -> Mapping[str, Any] | None:
    """A money bag's amount in the currency the buyer saw."""
    return bag.get("presentment_money") if isinstance(bag, Mapping) else None
