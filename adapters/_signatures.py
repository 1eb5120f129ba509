"""Signature schemes: their config blocks (checked at start) and their verification of the raw body, constant-time
against every secret of a source. Custom sources choose a scheme in config; Shopify and WooCommerce use the
`hmac` scheme too (`shopify_hmac`, `woocommerce_hmac`), so every signature goes through one verifier."""

import base64
import binascii
import hmac
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError
from standardwebhooks import Webhook, WebhookVerificationError

from adapters._config_block import Block
from adapters.base import Check, Delivery, SignatureError

Algorithm = Literal["sha256", "sha1", "sha512"]
Encoding = Literal["hex", "base64"]
TimestampUnit = Literal["s", "ms"]
# A Unix time in milliseconds has 13 digits until the year 2286; anything longer is not a timestamp.
_MAX_TIMESTAMP_DIGITS = 15


def _check_template(template: str, has_timestamp: bool, timestamp_key: str) -> None:
    if template.count("{body}") != 1:
        raise PydanticCustomError("template", "signed_payload must contain {body} exactly once")
    rest = template.replace("{body}", "").replace("{timestamp}", "")
    if "{" in rest or "}" in rest:
        raise PydanticCustomError("template", "signed_payload knows only the placeholders {timestamp} and {body}")
    if "{timestamp}" in template and not has_timestamp:
        raise PydanticCustomError("template", "signed_payload uses {timestamp}: set {key} too", {"key": timestamp_key})


class HmacScheme(Block):
    """One HMAC of the body (or of a template around it) in one header: the most common homemade scheme."""

    scheme: Literal["hmac"]
    header: str | list[str] = Field(min_length=1)  # several names: the first present one is read
    algorithm: Algorithm = "sha256"
    encoding: Encoding = "hex"
    prefix: str = ""
    timestamp_header: str | None = Field(default=None, min_length=1)
    timestamp_unit: TimestampUnit = "s"
    signed_payload: str | None = None
    tolerance_seconds: int = Field(default=300, ge=1)

    @model_validator(mode="after")
    def _template(self) -> "HmacScheme":
        if isinstance(self.header, list) and not all(self.header):
            raise PydanticCustomError("header", "header names must not be empty")
        if self.signed_payload is not None:
            _check_template(self.signed_payload, self.timestamp_header is not None, "timestamp_header")
        return self

    @property
    def headers(self) -> tuple[str, ...]:
        return (self.header,) if isinstance(self.header, str) else tuple(self.header)

    @property
    def template(self) -> str:
        if self.signed_payload is not None:
            return self.signed_payload
        return "{timestamp}.{body}" if self.timestamp_header else "{body}"


class PartsScheme(Block):
    """One header of `name=value` parts: a timestamp part and one or more signature parts (rotation), e.g.
    Paddle's `ts=…;h1=…` or Stripe's `t=…,v1=…,v1=…`. The signed payload puts the timestamp around the body."""

    scheme: Literal["parts"]
    header: str = Field(min_length=1)
    separator: str = Field(default=",", min_length=1)
    timestamp_part: str = Field(default="t", min_length=1)
    signature_part: str = Field(default="v1", min_length=1)
    signed_payload: str = "{timestamp}.{body}"
    algorithm: Algorithm = "sha256"
    encoding: Encoding = "hex"
    timestamp_unit: TimestampUnit = "s"
    tolerance_seconds: int = Field(default=300, ge=1)

    @model_validator(mode="after")
    def _template(self) -> "PartsScheme":
        _check_template(self.signed_payload, True, "timestamp_part")
        if self.timestamp_part == self.signature_part:
            raise PydanticCustomError("parts", "timestamp_part and signature_part must differ")
        return self

    @property
    def template(self) -> str:
        return self.signed_payload


class StripeScheme(PartsScheme):
    """The `parts` scheme preset to Stripe's `Stripe-Signature: t=…,v1=…[,v1=…]` (hex HMAC-SHA256 of "t.body")."""

    scheme: Literal["stripe"]  # type: ignore[assignment]
    header: str = Field(default="Stripe-Signature", min_length=1)


class StandardWebhooksScheme(Block):
    """webhook-id / webhook-timestamp / webhook-signature, `whsec_` secrets, ±5 minutes (the library's window)."""

    scheme: Literal["standard-webhooks"]


class UnsignedScheme(Block):
    scheme: Literal["none"]
    allow_unsigned: bool = False

    @model_validator(mode="after")
    def _explicit(self) -> "UnsignedScheme":
        if not self.allow_unsigned:
            raise PydanticCustomError(
                "unsigned",
                "scheme none accepts anyone who knows the URL: set allow_unsigned: true to mean it",
            )
        return self


Scheme = Annotated[
    HmacScheme | PartsScheme | StripeScheme | StandardWebhooksScheme | UnsignedScheme,
    Field(discriminator="scheme"),
]


def shopify_hmac() -> HmacScheme:
    """Shopify's `X-Shopify-Hmac-Sha256` (or the newer unprefixed `shopify-hmac-sha256`): base64 HMAC-SHA256."""
    return HmacScheme(scheme="hmac", header=["X-Shopify-Hmac-Sha256", "shopify-hmac-sha256"], encoding="base64")


def woocommerce_hmac() -> HmacScheme:
    """WooCommerce's `X-WC-Webhook-Signature`: base64 HMAC-SHA256 of the body."""
    return HmacScheme(scheme="hmac", header="X-WC-Webhook-Signature", encoding="base64")


def _standard_webhooks_key(secret: str) -> bytes | None:
    text = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    return key or None


def check_secrets(scheme: Any, secrets: Sequence[str]) -> None:
    """Raise ValueError (naming the key, never the value) when the secrets cannot serve `scheme`."""
    if isinstance(scheme, UnsignedScheme):
        return
    if not secrets:
        raise ValueError(f"secrets: at least one secret is required for signature scheme {scheme.scheme!r}")
    for index, secret in enumerate(secrets):
        if not secret:
            raise ValueError(f"secrets[{index}]: must not be empty")
        if isinstance(scheme, StandardWebhooksScheme) and _standard_webhooks_key(secret) is None:
            raise ValueError(f"secrets[{index}]: not a Standard Webhooks secret (whsec_ followed by base64)")


def _decoded(parts: Sequence[str], prefix: str, encoding: str) -> list[bytes]:
    found = []
    for part in parts:
        if prefix:
            if not part.startswith(prefix):
                continue
            part = part[len(prefix) :]
        try:
            found.append(bytes.fromhex(part) if encoding == "hex" else base64.b64decode(part, validate=True))
        except (binascii.Error, ValueError):
            continue
    return found


def hmac_matches(secrets: Sequence[bytes], message: bytes, candidates: Sequence[bytes], digest: str = "sha256") -> bool:
    """Constant-time: does any secret's HMAC of `message` equal any candidate signature (raw digest bytes)?"""
    found = False
    for secret in secrets:
        expected = hmac.new(secret, message, digest).digest()
        for candidate in candidates:
            found |= hmac.compare_digest(expected, candidate)
    return found


def check_timestamp(value: str, now: float, tolerance: int, unit: TimestampUnit = "s") -> None:
    """Refuse a signed timestamp that is not a Unix time in `unit`, or further than `tolerance` s from `now`."""
    text = value.strip()
    name = "seconds" if unit == "s" else "milliseconds"
    if not text.isascii() or not text.isdigit() or len(text) > _MAX_TIMESTAMP_DIGITS:
        raise SignatureError(f"timestamp is not a Unix time in {name}", check="timestamp")
    seconds = int(text) / 1000 if unit == "ms" else int(text)
    if seconds < now - tolerance:
        raise SignatureError(f"timestamp is more than {tolerance} s old (replay refused)", check="timestamp")
    if seconds > now + tolerance:
        raise SignatureError(f"timestamp is more than {tolerance} s in the future", check="timestamp")


class Verifier:
    """Verifies deliveries of one source against one scheme and all of the source's secrets."""

    def __init__(self, scheme: Any, secrets: Sequence[str]) -> None:
        self.scheme = scheme
        self.keys = [secret.encode() for secret in secrets]
        self.webhooks = (
            [Webhook(_standard_webhooks_key(s) or b"") for s in secrets]
            if isinstance(scheme, StandardWebhooksScheme)
            else []
        )
        self._around = ("", "")
        if isinstance(scheme, HmacScheme | PartsScheme):
            before, after = scheme.template.split("{body}")
            self._around = (before, after)

    def verify(self, delivery: Delivery) -> None:
        scheme = self.scheme
        if isinstance(scheme, HmacScheme):
            self._hmac(scheme, delivery)
        elif isinstance(scheme, PartsScheme):
            self._parts(scheme, delivery)
        elif isinstance(scheme, StandardWebhooksScheme):
            self._standard(delivery)

    def _match(self, delivery: Delivery, timestamp: str, candidates: list[bytes], algorithm: str, what: str) -> None:
        before, after = self._around
        if timestamp:
            before, after = before.replace("{timestamp}", timestamp), after.replace("{timestamp}", timestamp)
        message = before.encode() + delivery.body + after.encode() if before or after else delivery.body
        if not hmac_matches(self.keys, message, candidates, algorithm):
            raise SignatureError(f"no {what} matches a secret of this source", check="signature")

    def _hmac(self, scheme: HmacScheme, delivery: Delivery) -> None:
        value = delivery.header(*scheme.headers)
        if not value:
            raise SignatureError(f"missing {scheme.headers[0]} header", check="header")
        timestamp = ""
        if scheme.timestamp_header is not None:
            timestamp = delivery.header(scheme.timestamp_header) or ""
            if not timestamp:
                raise SignatureError(f"missing {scheme.timestamp_header} header", check="header")
            now = delivery.received_at.timestamp()
            check_timestamp(timestamp, now, scheme.tolerance_seconds, scheme.timestamp_unit)
        # Several signatures may be given (rotation), separated by commas or spaces.
        candidates = _decoded(value.replace(",", " ").split(), scheme.prefix, scheme.encoding)
        self._match(delivery, timestamp.strip(), candidates, scheme.algorithm, "signature")

    def _parts(self, scheme: PartsScheme, delivery: Delivery) -> None:
        value = delivery.header(scheme.header)
        if not value:
            raise SignatureError(f"missing {scheme.header} header", check="header")
        timestamp = None
        signatures = []
        for element in value.split(scheme.separator):
            key, _, item = element.strip().partition("=")
            if key == scheme.timestamp_part and timestamp is None:
                timestamp = item.strip()
            elif key == scheme.signature_part:
                signatures.append(item.strip())
        if timestamp is None or not signatures:
            raise SignatureError(
                f"{scheme.header} has no {scheme.timestamp_part}= timestamp or no {scheme.signature_part}= signature",
                check="header",
            )
        check_timestamp(timestamp, delivery.received_at.timestamp(), scheme.tolerance_seconds, scheme.timestamp_unit)
        candidates = _decoded(signatures, "", scheme.encoding)
        self._match(delivery, timestamp, candidates, scheme.algorithm, f"{scheme.signature_part} signature")

    def _standard(self, delivery: Delivery) -> None:
        headers = {name: delivery.header(name) for name in ("webhook-id", "webhook-timestamp", "webhook-signature")}
        missing = [name for name, value in headers.items() if not value]
        if missing:
            raise SignatureError(f"missing {', '.join(missing)} header", check="header")
        present = {name: value for name, value in headers.items() if value}
        reasons = []
        # Every secret is tried, so the time taken does not tell which one (if any) matched.
        for webhook in self.webhooks:
            try:
                webhook.verify(delivery.body, present, json_parse=False)
                reasons.append("")
            except WebhookVerificationError as exc:
                reasons.append(str(exc))
            except ValueError:  # a malformed signature entry or a body that is not UTF-8
                reasons.append("malformed webhook-signature header or body")
        if "" not in reasons:
            reason = reasons[0] if reasons else "no secret configured"
            # The library checks the timestamp first, alike for every secret ("Message timestamp too old"), and
            # calls an unreadable one "Invalid Signature Headers".
            check: Check = "timestamp" if "timestamp" in reason else "header" if "Headers" in reason else "signature"
            raise SignatureError(reason, check=check)
