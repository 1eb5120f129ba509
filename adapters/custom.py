"""`type: custom`: any platform, from configuration alone (docs/custom-platforms.md). A signature scheme
(`_signatures`), where the delivery key and the event type are, and a JMESPath mapping into canonical orders
(`_mapping`).

Where the issue left a choice:
- a delivery whose status maps to nothing is acknowledged as ignored at intake, naming the value, so the
  platform stops retrying; with an `orders` expression (several orders per delivery) intake cannot tell, so
  the worker skips such orders and the job records a warning for each;
- an expression that gives null (or an empty list for items) leaves the canonical field out, so the ledger
  keeps what it knows (a refund event without items keeps the order's items);
- a delivery key expression that gives nothing falls back to the hash of the body.
"""

import json
import logging
from typing import Any, ClassVar

from jmespath.exceptions import JMESPathError
from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from adapters._config_block import Block
from adapters._expressions import Expression, compile_expression
from adapters._mapping import Mapping, MappingOptions, value_key
from adapters._signatures import Scheme, StandardWebhooksScheme, UnsignedScheme, Verifier, check_secrets
from adapters.base import (
    Delivery,
    Intake,
    OrderLookup,
    SourceOptions,
    Translation,
    TranslationError,
    body_hash,
)

log = logging.getLogger("adapters.custom")
_MAX_REASON_VALUE = 100


class Locator(Block):
    """Where a value is: a request header, or a JMESPath expression over the body (exactly one of them)."""

    header: str | None = Field(default=None, min_length=1)
    expression: Expression | None = None

    @model_validator(mode="after")
    def _one(self) -> "Locator":
        if (self.header is None) == (self.expression is None):
            raise PydanticCustomError("locator", "give exactly one of header or expression")
        return self


class TopicOptions(Locator):
    handled: list[str] = Field(min_length=1)


class CustomOptions(SourceOptions):
    signature: Scheme
    delivery_key: Locator | None = None
    topic: TopicOptions | None = None
    mapping: MappingOptions

    @model_validator(mode="before")
    @classmethod
    def _required_blocks(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in ("signature", "mapping"):
                if key not in data:
                    raise PydanticCustomError("missing_key", "key '{key}' is required for type custom", {"key": key})
        return data


def _text(value: Any) -> str:
    text = value_key(value)
    return text if len(text) <= _MAX_REASON_VALUE else text[:_MAX_REASON_VALUE] + "…"


class CustomAdapter:
    provider: ClassVar[str] = "custom"
    Options: ClassVar[type[SourceOptions]] = CustomOptions

    def __init__(self, name: str, options: Any) -> None:
        assert isinstance(options, CustomOptions)
        check_secrets(options.signature, options.secrets)
        self.name = name
        self.options = options
        self.verifier = Verifier(options.signature, options.secrets)
        self.mapping = Mapping(options.mapping)
        key = options.delivery_key
        if key is None and isinstance(options.signature, StandardWebhooksScheme):
            key = Locator(header="webhook-id")
        self.key_header = key.header if key else None
        self.key_expression = compile_expression(key.expression) if key and key.expression else None
        topic = options.topic
        self.topic_expression = compile_expression(topic.expression) if topic and topic.expression else None
        if isinstance(options.signature, UnsignedScheme):
            log.warning(
                "source accepts unsigned webhooks: anyone who knows its URL can post orders",
                extra={"source": name, "setting": "signature.scheme: none"},
            )

    def verify(self, delivery: Delivery) -> None:
        self.verifier.verify(delivery)

    def intake(self, delivery: Delivery) -> Intake:
        document = _parse(delivery.body)
        topic = self._topic(delivery, document)
        handled = self.options.topic.handled if self.options.topic else None
        if handled is not None and topic not in handled:
            shown = "no event type" if topic is None else f"event type '{_text(topic)}'"
            return Intake("ignore", topic=topic, reason=f"{shown} is not handled by this source")
        if document is not None and self.mapping.orders is None:
            try:
                raw, status = self.mapping.status_of(document)
            except TranslationError:
                status = "placed"  # the worker reports the broken expression, with the body kept
            if status is None:
                return Intake("ignore", topic=topic, reason=f"status '{_text(raw)}' is not mapped (mapping.status)")
        return Intake("queue", topic=topic, dedup_key=self._dedup_key(delivery, document))

    def translate(self, delivery: Delivery, lookup: OrderLookup) -> Translation:
        document = _parse(delivery.body)
        if document is None:
            raise TranslationError("the body is not JSON")
        result = Translation()
        topic = self._topic(delivery, document)
        if self.options.topic is not None and topic not in self.options.topic.handled:
            result.warnings.append(f"event type '{_text(topic)}' is no longer handled by this source: nothing done")
            return result
        orders = self.mapping.orders_of(document)
        if not orders:
            result.warnings.append("the orders expression gave no order: nothing done")
        for index, order in enumerate(orders):
            raw, status = self.mapping.status_of(order)
            if status is None:
                result.warnings.append(f"order {index} skipped: status '{_text(raw)}' is not mapped (mapping.status)")
                continue
            try:
                result.orders.append(self.mapping.build(order, status))
            except TranslationError as exc:
                raise TranslationError(f"order {index}: {exc}" if self.mapping.orders else str(exc)) from None
        return result

    def _topic(self, delivery: Delivery, document: Any) -> str | None:
        topic = self.options.topic
        if topic is None:
            return None
        if topic.header is not None:
            return delivery.header(topic.header)
        assert self.topic_expression is not None
        if document is None:
            return None
        try:
            found = self.topic_expression.search(document)
        except JMESPathError:  # a type error on an odd body: the event type is unknown
            return None
        return None if found is None else value_key(found)

    def _dedup_key(self, delivery: Delivery, document: Any) -> str:
        found: Any = None
        if self.key_header is not None:
            found = delivery.header(self.key_header)
        elif self.key_expression is not None and document is not None:
            try:
                found = self.key_expression.search(document)
            except JMESPathError:  # falls back to the body hash, like a key that is absent
                found = None
        if found is None or found == "":
            return body_hash(delivery.body)
        return value_key(found)


def _parse(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None
