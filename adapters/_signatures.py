"""Signature schemes of `type: custom` sources: their config blocks (checked at start) and their verification
of the raw body, constant-time against every secret of the source."""

import base64
import binascii
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError
from standardwebhooks import Webhook, WebhookVerificationError

from adapters._config_block import Block
from adapters.base import Delivery, SignatureError, hmac_matches


class HmacScheme(Block):
    """One HMAC of the body (or of a template around it) in one header: the most common homemade scheme."""

    scheme: Literal["hmac"]
    header: str = Field(min_length=1)
    algorithm: Literal["sha256", "sha1", "sha512"] = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    prefix: str = ""
    timestamp_header: str | None = Field(default=None, min_length=1)
    signed_payload: str | None = None
    tolerance_seconds: int = Field(default=300, ge=1)

    @model_validator(mode="after")
    def _template(self) -> "HmacScheme":
        template = self.signed_payload
        if template is None:
            return self
        if template.count("{body}") != 1:
            raise PydanticCustomError("template", "signed_payload must contain {body} exactly once")
        rest = template.replace("{body}", "").replace("{timestamp}", "")
        if "{" in rest or "}" in rest:
            raise PydanticCustomError("template", "signed_payload knows only the placeholders {timestamp} and {body}")
        if "{timestamp}" in template and self.timestamp_header is None:
            raise PydanticCustomError("template", "signed_payload uses {timestamp}: set timestamp_header too")
        return self

    @property
    def template(self) -> str:
        if self.signed_payload is not None:
            return self.signed_payload
        return "{timestamp}.{body}" if self.timestamp_header else "{body}"


class StandardWebhooksScheme(Block):
    """webhook-id / webhook-timestamp / webhook-signature, `whsec_` secrets, ±5 minutes (the library's window)."""

    scheme: Literal["standard-webhooks"]


class StripeScheme(Block):
    """`Stripe-Signature: t=…,v1=…[,v1=…]`: hex HMAC-SHA256 of "t.body" with the endpoint's signing secret."""

    scheme: Literal["stripe"]
    header: str = Field(default="Stripe-Signature", min_length=1)
    tolerance_seconds: int = Field(default=300, ge=1)


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
    HmacScheme | StandardWebhooksScheme | StripeScheme | UnsignedScheme,
    Field(discriminator="scheme"),
]


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


def _candidates(value: str, prefix: str, encoding: str) -> list[bytes]:
    """Decoded signatures from a header that may carry several (rotation), separated by commas or spaces."""
    found = []
    for part in value.replace(",", " ").split():
        if prefix:
            if not part.startswith(prefix):
                continue
            part = part[len(prefix) :]
        try:
            found.append(bytes.fromhex(part) if encoding == "hex" else base64.b64decode(part, validate=True))
        except (binascii.Error, ValueError):
            continue
    return found


def _check_timestamp(value: str, now: float, tolerance: int) -> None:
    try:
        timestamp = int(value.strip())
    except ValueError:
        raise SignatureError("timestamp is not a Unix time in seconds") from None
    if abs(now - timestamp) > tolerance:
        raise SignatureError(f"timestamp is more than {tolerance} s away from now (replay refused)")


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

    def verify(self, delivery: Delivery) -> None:
        scheme = self.scheme
        now = delivery.received_at.timestamp()
        if isinstance(scheme, HmacScheme):
            self._hmac(scheme, delivery, now)
        elif isinstance(scheme, StripeScheme):
            self._stripe(scheme, delivery, now)
        elif isinstance(scheme, StandardWebhooksScheme):
            self._standard(delivery)

    def _hmac(self, scheme: HmacScheme, delivery: Delivery, now: float) -> None:
        value = delivery.header(scheme.header)
        if not value:
            raise SignatureError(f"missing {scheme.header} header")
        timestamp = ""
        if scheme.timestamp_header is not None:
            timestamp = delivery.header(scheme.timestamp_header) or ""
            if not timestamp:
                raise SignatureError(f"missing {scheme.timestamp_header} header")
            _check_timestamp(timestamp, now, scheme.tolerance_seconds)
        before, after = scheme.template.split("{body}")
        message = (
            before.replace("{timestamp}", timestamp).encode()
            + delivery.body
            + after.replace("{timestamp}", timestamp).encode()
        )
        candidates = _candidates(value, scheme.prefix, scheme.encoding)
        if not hmac_matches(self.keys, message, candidates, scheme.algorithm):
            raise SignatureError("no signature matches a secret of this source")

    def _stripe(self, scheme: StripeScheme, delivery: Delivery, now: float) -> None:
        value = delivery.header(scheme.header)
        if not value:
            raise SignatureError(f"missing {scheme.header} header")
        timestamp = None
        signatures = []
        for element in value.split(","):
            key, _, item = element.strip().partition("=")
            if key == "t" and timestamp is None:
                timestamp = item
            elif key == "v1":
                signatures.append(item)
        if timestamp is None or not signatures:
            raise SignatureError(f"{scheme.header} has no t= timestamp or no v1= signature")
        _check_timestamp(timestamp, now, scheme.tolerance_seconds)
        candidates = _candidates(" ".join(signatures), "", "hex")
        if not hmac_matches(self.keys, f"{timestamp}.".encode() + delivery.body, candidates):
            raise SignatureError("no v1 signature matches a secret of this source")

    def _standard(self, delivery: Delivery) -> None:
        headers = {name: delivery.header(name) for name in ("webhook-id", "webhook-timestamp", "webhook-signature")}
        missing = [name for name, value in headers.items() if not value]
        if missing:
            raise SignatureError(f"missing {', '.join(missing)} header")
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
            raise SignatureError(reasons[0] if reasons else "no secret configured")
