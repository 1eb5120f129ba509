"""Outbound test helpers: a harness whose config has destinations, and a sender run to completion."""

import asyncio
import base64
from typing import Any

from gateway.outbound.sender import Sender
from tests.conftest import Harness

HMAC_SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
LOOPBACK = ["127.0.0.0/8", "::1/128"]


def destination(url: str, **options: Any) -> dict[str, Any]:
    return {"url": url, "secrets": [HMAC_SECRET], **options}


def build(make_harness: Any, destinations: dict[str, Any], **delivery: Any) -> Harness:
    """A harness with these destinations; loopback allowed unless `allow_private_networks` says otherwise."""
    settings = {"allow_private_networks": LOOPBACK, **delivery}
    built: Harness = make_harness(destinations=destinations, delivery=settings)
    return built


def send(harness: Harness) -> int:
    """Process the queued jobs, then send every due delivery and record the outcomes; returns the attempts made."""
    harness.drain()
    gateway = harness.client.app.state.gateway
    sender = Sender(harness.config, gateway.engine.revenue_attributes)
    return asyncio.run(sender.drain())


def rows(harness: Harness, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with harness.db() as conn:
        return conn.execute(sql, params).fetchall()


def make_due(harness: Harness) -> None:
    with harness.db() as conn:
        conn.execute("UPDATE deliveries SET next_attempt_at = 0 WHERE status IN ('pending', 'failed')")
