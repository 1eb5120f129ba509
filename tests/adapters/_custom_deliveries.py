"""Shared by the custom-adapter tests: genuine signatures for each scheme, and the worked examples read from the
shipped config.yaml (so the commented blocks there are the ones tested)."""

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "custom"
WHSEC = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
WHSEC_OLD = "whsec_" + base64.b64encode(b"fedcba9876543210fedcba9876543210").decode()


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def payload(name: str) -> Any:
    return json.loads(fixture(name))


def example_source(name: str, secrets: list[str]) -> dict[str, Any]:
    """The commented `sources:` entry `name` of the shipped config.yaml, uncommented, with test secrets."""
    lines = (ROOT / "config.yaml").read_text().splitlines()
    start = lines.index(f"#  {name}:")
    block = []
    for line in lines[start + 1 :]:
        if not line.startswith("#    "):
            break
        block.append(line[5:])
    source: dict[str, Any] = yaml.safe_load("\n".join(block))
    source["secrets"] = secrets
    return source


def now() -> int:
    return int(time.time())


def hmac_hex(secret: str, message: bytes, digest: str = "sha256") -> str:
    return hmac.new(secret.encode(), message, digest).hexdigest()


def stripe_header(body: bytes, *secrets: str, timestamp: int | None = None) -> str:
    t = now() if timestamp is None else timestamp
    signatures = ",".join(f"v1={hmac_hex(s, f'{t}.'.encode() + body)}" for s in secrets)
    return f"t={t},{signatures}"


def standard_headers(
    body: bytes, *secrets: str, msg_id: str = "msg_2Zx1", timestamp: int | None = None
) -> dict[str, str]:
    t = now() if timestamp is None else timestamp
    signed = f"{msg_id}.{t}.".encode() + body
    signatures = " ".join(
        "v1,"
        + base64.b64encode(
            hmac.new(base64.b64decode(s.removeprefix("whsec_")), signed, hashlib.sha256).digest()
        ).decode()
        for s in secrets
    )
    return {"webhook-id": msg_id, "webhook-timestamp": str(t), "webhook-signature": signatures}
