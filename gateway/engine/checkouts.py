"""Checkouts and their abandonment: the first sighting of a checkoutId records `ecommerce.checkout_started` and
starts a timer of `lifecycle.checkout_abandoned_after`; later sightings update the checkout and restart the
timer without a new event; when it ends with the checkout still open, `ecommerce.checkout_abandoned` carries
the checkout's latest data. A checkout already abandoned or closed stays so (one abandonment per checkout)."""

import sqlite3
from typing import Any

from gateway.engine import automations as effects
from normalizer.checkout import Checkout, NativeCheckout
from normalizer.timefmt import to_micros
from store import automations, events
from store.automations import CHECKOUT

STARTED_EVENT = "ecommerce.checkout_started"


def _data(checkout: Checkout) -> dict[str, Any]:
    data: dict[str, Any] = {
        **checkout.properties,
        "checkoutId": checkout.checkoutId,
        "checkoutUrl": checkout.checkoutUrl,
        "items": [item.model_dump(exclude_none=True) for item in checkout.items],
        "totalCents": checkout.totalCents,
        "currency": checkout.currency,
    }
    return data


def _updated_at(checkout: Checkout) -> int | None:
    if isinstance(checkout, NativeCheckout) and checkout.updatedAt is not None:
        return to_micros(checkout.updatedAt)
    return None


def apply(
    conn: sqlite3.Connection, subscriber_id: int, checkout: Checkout, source: str, abandon_after_us: int, now: int
) -> list[str]:
    """One sighting of a checkout; returns warnings."""
    data = _data(checkout)
    seen = automations.by_key(conn, CHECKOUT, checkout.checkoutId)
    completed = isinstance(checkout, NativeCheckout) and checkout.completed
    if not seen:
        if completed:
            return []  # became an order before the gateway saw it open: nothing to remind of
        events.record(
            conn,
            subscriber_id,
            STARTED_EVENT,
            data,
            now,
            f"{STARTED_EVENT}\x1f{checkout.checkoutId}",
        )
        effects.start(
            conn,
            subscriber_id,
            CHECKOUT,
            checkout.checkoutId,
            now,
            data,
            now + abandon_after_us,
            source=source,
            ordered_at=_updated_at(checkout),
        )
        return []
    latest = seen[-1]
    if latest.status != "active":
        return []
    if completed:
        effects.stop(conn, latest, "superseded", None, now)
        return []
    given_at = _updated_at(checkout)
    if latest.ordered_at is not None and given_at is not None and given_at < latest.ordered_at:
        return [f"checkout {checkout.checkoutId}: an older update than the one held, ignored"]
    effects.reschedule(conn, latest, now + abandon_after_us, data, now, given_at)
    return []


def close(conn: sqlite3.Connection, checkout_id: str, order_id: str, now: int) -> None:
    """The order that completed a checkout closes it, whoever's it is."""
    for automation in automations.by_key(conn, CHECKOUT, checkout_id):
        if automation.status == "active":
            effects.stop(conn, automation, "superseded", order_id, now)
