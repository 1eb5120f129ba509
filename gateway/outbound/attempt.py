"""One attempt to deliver one event to one destination: the Standard Webhooks request, sent and judged."""

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.config import DeliveryConfig, DestinationConfig
from gateway.outbound.connections import ConnectionFailed, DestinationConnections, Refused
from gateway.outbound.outcomes import Decision, decide, retry_after_seconds
from gateway.signing import Signer
from normalizer.timefmt import format_instant_us, now_us
from store.deliveries import Attempt, Claimed

log = logging.getLogger("gateway.outbound")
Revenue = Callable[[int, int], dict[str, Any]]


@dataclass(slots=True)
class Destination:
    """A configured destination as the sender holds it: its connections, its signer, its requests in flight."""

    name: str
    config: DestinationConfig
    signer: Signer
    connections: DestinationConnections
    in_flight: int = 0

    @classmethod
    def build(cls, name: str, config: DestinationConfig, delivery: DeliveryConfig) -> "Destination":
        connections = DestinationConnections(config.url, delivery.allow_private_networks, delivery.allow_http)
        return cls(name, config, Signer(config.secrets), connections)


def body(claimed: Claimed, revenue: Revenue) -> bytes:
    """The request body: the event, and its subscriber as they are now (custom and revenue attributes)."""
    assert claimed.subscriber is not None
    email, external_id, first_name, last_name, attributes, orders_count, spent_cents = claimed.subscriber
    return orjson.dumps(
        {
            "type": claimed.name,
            "timestamp": format_instant_us(claimed.occurred_at),
            "data": {
                "eventId": claimed.event_id,
                "subscriber": {
                    "email": email,
                    "externalId": external_id,
                    "firstName": first_name,
                    "lastName": last_name,
                    "attributes": {**orjson.loads(attributes or "{}"), **revenue(orders_count, spent_cents)},
                },
                "properties": orjson.Fragment(claimed.properties),  # stored JSON, spliced in as it is
            },
        }
    )


async def attempt(
    destination: Destination, claimed: Claimed, delivery: DeliveryConfig, revenue: Revenue
) -> tuple[Attempt, Decision]:
    """Send once and decide what follows; never raises (a failure is an outcome)."""
    started_at = now_us()
    began = time.perf_counter()
    status: int | None = None
    retry_after: float | None = None
    kept: str | None = None
    error: str | None = None
    if claimed.event_id is None or claimed.subscriber is None:
        decision = Decision("dead", None)
        error = "the event no longer exists (erased)"
        attempted = Attempt(claimed.delivery_id, started_at, None, 0, error, None, "dead", None, claimed.webhook_id)
        return attempted, decision
    try:
        content = body(claimed, revenue)
        headers = destination.signer.headers(claimed.webhook_id, int(time.time()), content)
        async with asyncio.timeout(destination.config.timeout):
            answer = await destination.connections.post(content, headers)
        status, kept = answer.status, answer.body.decode("utf-8", "replace")
        if not 200 <= status < 300:
            error = f"HTTP {status}" + (" (a redirect is a failure; it is not followed)" if 300 <= status < 400 else "")
        retry_after = retry_after_seconds(_header(answer.headers, b"retry-after"), time.time())
    except TimeoutError:
        error = f"timed out after {destination.config.timeout:g} s"
    except Refused as exc:
        error = str(exc)
    except ConnectionFailed as exc:
        error = f"connection failed: {exc}"
    except Exception as exc:  # a bug here must not stop the sender: the attempt fails and is retried
        log.exception("delivery attempt failed unexpectedly", extra={"destination": destination.name})
        error = f"internal error: {type(exc).__name__}"
    duration_ms = int((time.perf_counter() - began) * 1000)
    decision = decide(status, retry_after, claimed.tries + 1, delivery.retry_schedule, now_us())
    return (
        Attempt(
            claimed.delivery_id,
            started_at,
            status,
            duration_ms,
            error,
            kept,
            decision.status,
            decision.next_attempt_at,
            claimed.webhook_id,
        ),
        decision,
    )


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None
