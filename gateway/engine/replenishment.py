"""Replenishment reminders: an order's items with a replenishment rule start, per product (or per variant with
`matchBy: variant`), a reminder due at orderedAt + days x quantity - leadDays.

Exact under reordering: every order of a key gets a row, so a duplicate finds its own and starts nothing; an
order arriving after a newer one of its key (by orderedAt, then source and orderId) is kept as `superseded`
from the start; a cancelled or fully refunded order stops only its own reminder, and one that arrives already
cancelled or refunded starts none. Whatever the arrival order, the active reminder is that of the newest order
of the key, if it is still standing, due when its own dates say.
"""

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from gateway.engine import automations as effects
from normalizer.timefmt import parse_instant, to_micros
from store import automations
from store.automations import REPLENISHMENT
from store.ledger import LedgerOrder

DAY_US = 86_400 * 1_000_000


@dataclass(slots=True)
class Key:
    rule: dict[str, Any]
    quantity: int
    item: dict[str, Any]


def due_at(ordered_at: int, rule: dict[str, Any], quantity: int) -> int:
    days: int = rule["days"] * quantity - rule.get("leadDays", 0)
    return ordered_at + days * DAY_US


def instant_us(text: str) -> int:
    """µs since the epoch of a ledger timestamp (`format_instant_us`'s shape read with its second cached, as
    orders of one burst share it), or of any ISO 8601 one."""
    if len(text) == 24 and text[19] == "." and text[23] == "Z":
        return _second_us(text[:19]) + int(text[20:23]) * 1000
    return to_micros(parse_instant(text))


@lru_cache(maxsize=256)
def _second_us(text: str) -> int:
    return to_micros(parse_instant(text + "Z"))


def ended(order: LedgerOrder) -> str | None:
    """Why an order's reminder must not stand: cancelled, or refunded in full."""
    if order.cancelled:
        return "order_cancelled"
    if order.refunded_cents > 0 and order.refunded_cents >= order.total_cents:
        return "order_refunded"
    return None


def keys(order: LedgerOrder, rules: Mapping[str, dict[str, Any]]) -> dict[str, Key]:
    """The order's reminder keys (product, or variant with `matchBy: variant`) with their rule (`rules`: by
    productId) and quantity."""
    found: dict[str, Key] = {}
    for item in order.items:
        rule = rules.get(str(item["productId"]))
        if rule is None:
            continue
        by_variant = rule.get("matchBy") == "variant" and item.get("variantId")
        key = str(item["variantId"]) if by_variant else str(item["productId"])
        same = found.get(key)
        if same is None:
            found[key] = Key(rule, int(item["quantity"]), item)
        else:
            same.quantity += int(item["quantity"])
    return found


def apply(conn: sqlite3.Connection, subscriber_id: int, order: LedgerOrder, keys: dict[str, Key], now: int) -> None:
    """Bring the subscriber's reminders up to date with one event of `order` (the ledger row after it), whose
    keys are `keys`. A key the subscriber never had a reminder of, the common case, takes a probe of an index
    and the insert; for the others, its reminders are read."""
    ordered_at = instant_us(order.ordered_at)
    reason = ended(order)
    identity = (order.source, order.order_id, ordered_at)
    for key, found in keys.items():
        item = found.item
        data = {
            "productId": str(item["productId"]),
            "variantId": item.get("variantId"),
            "title": item.get("title"),
            "variantTitle": item.get("variantTitle"),
            "quantity": found.quantity,
            "orderId": order.order_id,
            "orderedAt": order.ordered_at,
        }
        due = due_at(ordered_at, found.rule, found.quantity)
        if automations.exists(conn, subscriber_id, REPLENISHMENT, key):
            _with_others(conn, subscriber_id, order, ordered_at, key, data, due, reason, now)
        else:  # the key's first order: active, or kept stopped when it arrived cancelled or refunded
            _start(conn, subscriber_id, key, data, due, identity, reason, now)


def _with_others(
    conn: sqlite3.Connection,
    subscriber_id: int,
    order: LedgerOrder,
    ordered_at: int,
    key: str,
    data: dict[str, Any],
    due: int,
    reason: str | None,
    now: int,
) -> None:
    """`apply` for a key the subscriber has reminders of already (read here, oldest first): the order's own, if
    it has one, is stopped when the order ended; else the order's reminder is the key's newest, or kept
    superseded when a newer order (by orderedAt, then source and orderId) has one."""
    identity = (order.source, order.order_id, ordered_at)
    rank = (ordered_at, order.source, order.order_id)
    rows = automations.of_key(conn, subscriber_id, REPLENISHMENT, key)
    mine = [row for row in rows if row.source == order.source and row.order_id == order.order_id]
    if mine:
        if reason is not None and mine[-1].status == "active":
            effects.stop(conn, mine[-1], reason, order.order_id, now)
        return
    if any((row.ordered_at or 0, row.source or "", row.order_id or "") > rank for row in rows):
        _start(conn, subscriber_id, key, data, due, identity, "superseded", now)  # older than one already seen
        return
    # The newest order of the key: it replaces the standing reminder, even if it is already over itself.
    for row in rows:
        if row.status == "active":
            effects.stop(conn, row, "superseded", order.order_id, now)
    _start(conn, subscriber_id, key, data, due, identity, reason, now)


def _start(
    conn: sqlite3.Connection,
    subscriber_id: int,
    key: str,
    data: dict[str, Any],
    due: int,
    identity: tuple[str, str, int],
    reason: str | None,
    now: int,
) -> None:
    """The order's reminder: active with its timer, or, with a `reason` (the order already ended, or is older
    than one already seen: `superseded`), kept stopped from the start so that the order's history is whole."""
    if reason is None:
        effects.start(conn, subscriber_id, REPLENISHMENT, key, now, data, due, *identity)
    else:
        automations.start(conn, subscriber_id, REPLENISHMENT, key, now, data, due, *identity, reason)
