"""Declarative payload mapping of `type: custom` sources: the `mapping:` block (every JMESPath expression compiled
and checked at start, `adapters._expressions`) and its evaluation into canonical orders, with errors that name the
canonical field and the expression that produced it."""

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from jmespath.exceptions import JMESPathError, JMESPathTypeError
from jmespath.parser import ParsedResult
from pydantic import Field, ValidationError, field_validator

from adapters._config_block import Block
from adapters._expressions import Expression, compile_expression
from adapters.base import TranslationError
from normalizer import CanonicalOrder
from normalizer.model import Status
from normalizer.money import MoneyError, normalise_currency, to_minor
from normalizer.problems import InputProblem, describe, problems


def value_key(value: Any) -> str:
    """A platform value as the text it is matched by in config (status values, topics): JSON for non-strings."""
    return value if isinstance(value, str) else json.dumps(value)


class _Fields(Block):
    kind: ClassVar[str] = "canonical field"


class StatusMap(Block):
    expression: Expression
    values: dict[str, Status] = Field(min_length=1)

    @field_validator("values", mode="before")
    @classmethod
    def _keys_as_text(cls, value: Any) -> Any:
        # YAML reads `1:` or `true:` as non-strings; platforms send them as JSON numbers or booleans.
        return {value_key(k): v for k, v in value.items()} if isinstance(value, dict) else value


class CustomerMap(_Fields):
    email: Expression
    externalId: Expression | None = None
    firstName: Expression | None = None
    lastName: Expression | None = None
    attributes: Expression | None = None


class ItemsMap(_Fields):
    each: Expression
    productId: Expression
    title: Expression
    quantity: Expression
    variantId: Expression | None = None
    sku: Expression | None = None
    variantTitle: Expression | None = None
    priceCents: Expression | None = None


class TotalsMap(_Fields):
    ordersCount: Expression
    totalSpentCents: Expression


class MappingOptions(_Fields):
    orders: Expression | None = None
    money: Literal["minor", "decimal"] = "minor"
    orderId: Expression
    orderNumber: Expression | None = None
    status: StatusMap | None = None
    totalCents: Expression
    currency: Expression
    orderedAt: Expression | None = None
    updatedAt: Expression | None = None
    customer: CustomerMap
    items: ItemsMap | None = None
    refundAmountCents: Expression | None = None
    customerTotals: TotalsMap | None = None
    properties: Expression | None = None


_MONEY = frozenset({"totalCents", "refundAmountCents", "items.priceCents", "customerTotals.totalSpentCents"})
_TIMES = frozenset({"orderedAt", "updatedAt"})
_BLOCKS = ("customer", "items", "customerTotals")


@dataclass(frozen=True, slots=True)
class _Rule:
    field: str  # canonical path: "totalCents", "customer.email", "items.quantity"
    text: str
    parsed: ParsedResult


def _rules(block: Block, prefix: str) -> list[_Rule]:
    rules = []
    for name in type(block).model_fields:
        text = getattr(block, name)
        if isinstance(text, str) and name not in ("money", "each", "orders"):
            rules.append(_Rule(f"{prefix}{name}", text, compile_expression(text)))
    return rules


def _search(rule: _Rule, document: Any) -> Any:
    try:
        return rule.parsed.search(document)
    except JMESPathTypeError as exc:
        # Its own text quotes the value, which may be personal data; job errors are stored and logged.
        expected = ", ".join(exc.expected_types)
        raise TranslationError(
            f"{rule.field} (expression '{rule.text}'): {exc.function_name}() expects {expected}, got {exc.actual_type}"
        ) from None
    except JMESPathError as exc:
        raise TranslationError(f"{rule.field} (expression '{rule.text}'): {exc}") from None


class Mapping:
    """A compiled `mapping:` block: `orders_of` splits a delivery, `status_of` classifies, `build` translates."""

    def __init__(self, options: MappingOptions) -> None:
        self.options = options
        self.orders = _Rule("orders", options.orders, compile_expression(options.orders)) if options.orders else None
        self.status = (
            _Rule("status", options.status.expression, compile_expression(options.status.expression))
            if options.status
            else None
        )
        self.fields = _rules(options, "")
        self.blocks = {
            name: _rules(block, f"{name}.") for name in _BLOCKS if (block := getattr(options, name)) is not None
        }
        items = options.items
        self.each = _Rule("items", items.each, compile_expression(items.each)) if items else None
        self.sources = {
            rule.field: f"'{rule.text}'" for rules in (self.fields, *self.blocks.values()) for rule in rules
        }
        if items is not None:
            for rule in self.blocks["items"]:
                self.sources[rule.field] = f"'{rule.text}' on each of '{items.each}'"

    def orders_of(self, document: Any) -> list[Any]:
        if self.orders is None:
            return [document]
        found = _search(self.orders, document)
        if found is None:
            return []
        if not isinstance(found, list) or not all(isinstance(order, dict) for order in found):
            raise TranslationError(f"orders (expression '{self.orders.text}'): must give a list of objects")
        return found

    def status_of(self, order: Any) -> tuple[str, Status | None]:
        """The platform's status value (as text) and the canonical status it maps to (None: not mapped)."""
        if self.status is None or self.options.status is None:
            return "", "placed"
        raw = value_key(_search(self.status, order))
        return raw, self.options.status.values.get(raw)

    def build(self, order: Any, status: Status | None) -> CanonicalOrder:
        fields: dict[str, Any] = {}
        if self.status is not None:
            fields["status"] = status
        for rule in self.fields:
            value = _search(rule, order)
            if _given(value):
                fields[rule.field] = value
        currency = self._currency(fields)
        for name, rules in self.blocks.items():
            if name == "items":
                items = self._items(order, rules)
                if items:
                    fields["items"] = items
            else:
                block = {r.field.partition(".")[2]: v for r in rules if _given(v := _search(r, order))}
                if name == "customer":
                    # No email: the order still counts in the ledger, the engine records a warning.
                    fields["customer"] = block if "email" in block else None
                elif block:
                    fields[name] = block
        for path in _MONEY:
            self._convert(fields, path, lambda v: self._minor(v, currency))
        for path in _TIMES:
            self._convert(fields, path, _instant)
        try:
            return CanonicalOrder.model_validate(fields)
        except ValidationError as exc:
            raise TranslationError(self._describe(exc)) from None

    def _currency(self, fields: dict[str, Any]) -> str | None:
        value = fields.get("currency")
        if value is None:
            return None
        if not isinstance(value, str):
            raise TranslationError(f"currency (expression {self.sources['currency']}): must be a currency code string")
        try:
            fields["currency"] = normalise_currency(value)
        except MoneyError as exc:
            raise TranslationError(f"currency (expression {self.sources['currency']}): {exc}") from None
        return str(fields["currency"])

    def _items(self, order: Any, rules: list[_Rule]) -> list[dict[str, Any]]:
        assert self.each is not None
        found = _search(self.each, order)
        if isinstance(found, dict):
            found = [found]  # a platform that sends only one item (e.g. Lemon Squeezy's first_order_item)
        if not found:
            return []
        if not isinstance(found, list):
            raise TranslationError(f"items (expression '{self.each.text}'): must give a list of objects")
        return [{r.field.partition(".")[2]: v for r in rules if _given(v := _search(r, item))} for item in found]

    def _convert(self, fields: dict[str, Any], path: str, convert: Callable[[Any], Any]) -> None:
        head, _, tail = path.partition(".")
        targets = fields.get("items", []) if head == "items" else [fields.get(head)] if tail else [fields]
        key = tail or head
        for index, target in enumerate(targets):
            if isinstance(target, dict) and key in target:
                try:
                    target[key] = convert(target[key])
                except ValueError as exc:  # MoneyError too
                    where = f"items[{index}].{key}" if head == "items" else path
                    raise TranslationError(f"{where} (expression {self.sources[path]}): {describe(exc)}") from None

    def _minor(self, value: Any, currency: str | None) -> Any:
        if self.options.money == "minor" or isinstance(value, bool):
            return value  # the canonical model checks integers itself
        if currency is None:
            raise MoneyError("decimal money needs a currency, and the currency expression gave nothing")
        if isinstance(value, float):
            # JSON numbers arrive as floats; their shortest repr is the number the platform wrote.
            value = repr(value)
        if not isinstance(value, str | int):
            raise MoneyError("must be a decimal string or number")
        return to_minor(value, currency)

    def _describe(self, error: ValidationError) -> str:
        described = []
        for problem in problems(error):
            loc = problem.loc
            path = ".".join(str(part) for part in loc if not isinstance(part, int))
            where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")
            source = self.sources.get(path)
            if source is None and path == "customer":
                source = self.sources.get("customer.email")
            message = problem.message
            if problem.kind == "missing":
                message = "is required, and the expression gave nothing"
            described.append(f"{where} (expression {source}): {message}" if source else f"{where}: {message}")
        return "; ".join(described)


def _given(value: Any) -> bool:
    """Null and the empty string leave a field out: platforms send "" for an absent SKU or name."""
    return value is not None and value != ""


def _instant(value: Any) -> Any:
    """Unix seconds (Stripe's `created`) as an instant; ISO 8601 strings are left to the canonical model."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (ValueError, OverflowError, OSError):
            raise InputProblem("out of range for Unix seconds") from None
    return value
