"""Standard Webhooks signatures of outbound deliveries: `v1,` HMAC-SHA256 under a `whsec_` secret, `v1a,`
ed25519 under a `whsk_` secret; one signature per configured secret (rotation), space-separated."""

import base64
import hashlib
import hmac
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

_HMAC_PREFIX, _ED25519_PREFIX, _PUBLIC_PREFIX = "whsec_", "whsk_", "whpk_"


class SecretError(ValueError):
    """A configured secret cannot sign: the message says why, never the secret."""


class _Hmac:
    """HMAC-SHA256 under one key; the key's padded state is computed once and copied for each signature."""

    __slots__ = ("_keyed",)

    def __init__(self, key: bytes) -> None:
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)

    def sign(self, content: bytes) -> str:
        mac = self._keyed.copy()
        mac.update(content)
        return "v1," + base64.b64encode(mac.digest()).decode()


@dataclass(frozen=True, slots=True)
class _Ed25519:
    key: Ed25519PrivateKey

    def sign(self, content: bytes) -> str:
        return "v1a," + base64.b64encode(self.key.sign(content)).decode()

    def public_key(self) -> str:
        raw = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return _PUBLIC_PREFIX + base64.b64encode(raw).decode()


Secret = _Hmac | _Ed25519


def _decode(text: str, prefix: str) -> bytes:
    try:
        return base64.b64decode(text.removeprefix(prefix), validate=True)
    except ValueError:
        raise SecretError(f"a {prefix} secret must be base64 after the prefix") from None


def parse_secret(text: str) -> Secret:
    """`whsec_` + base64 of 24-64 random bytes, or `whsk_` + base64 of an ed25519 private key (its 32-byte seed,
    or the 64 bytes of seed and public key)."""
    if text.startswith(_HMAC_PREFIX):
        key = _decode(text, _HMAC_PREFIX)
        if not 24 <= len(key) <= 64:
            raise SecretError("a whsec_ secret must hold 24 to 64 bytes")
        return _Hmac(key)
    if text.startswith(_ED25519_PREFIX):
        key = _decode(text, _ED25519_PREFIX)
        if len(key) not in (32, 64):
            raise SecretError("a whsk_ secret must hold a 32-byte ed25519 seed (or seed and public key, 64 bytes)")
        private = Ed25519PrivateKey.from_private_bytes(key[:32])
        if len(key) == 64 and key[32:] != private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw):
            raise SecretError("the whsk_ secret's public half does not belong to its seed")
        return _Ed25519(private)
    raise SecretError("a destination secret starts with whsec_ (HMAC) or whsk_ (ed25519)")


class Signer:
    """Signs with every secret of one destination."""

    def __init__(self, secrets: list[str]) -> None:
        self.secrets = [parse_secret(text) for text in secrets]

    def headers(self, webhook_id: str, timestamp: int, body: bytes) -> list[tuple[bytes, bytes]]:
        content = f"{webhook_id}.{timestamp}.".encode() + body
        signature = " ".join(secret.sign(content) for secret in self.secrets)
        return [
            (b"webhook-id", webhook_id.encode()),
            (b"webhook-timestamp", str(timestamp).encode()),
            (b"webhook-signature", signature.encode()),
        ]

    def public_keys(self) -> list[str]:
        return [secret.public_key() for secret in self.secrets if isinstance(secret, _Ed25519)]
