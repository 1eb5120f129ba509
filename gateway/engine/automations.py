"""The automation primitive's effects: start (with its due time), fire (with its event) and stop (with
`ecommerce.automation_stopped`), each in the caller's transaction, so an automation changes together with the
job or timer that caused it. An active automation's row is its timer (`store.automations.fire_at`, fired
through `DUE_ROWS`); one whose firing failed is retried from `store.timers` under `TIMER_KIND`."""

import sqlite3
from typing import Any

from normalizer.timefmt import format_instant_us
from store import automations, events, timers
from store.automations import BACK_IN_STOCK, CHECKOUT, REPLENISHMENT, TIMED, Automation

TIMER_KIND = "automation"  # the timer kind; the key is the automation id
FIRED_EVENTS = {
    REPLENISHMENT: "ecommerce.replenishment_due",
    BACK_IN_STOCK: "ecommerce.back_in_stock",
    CHECKOUT: "ecommerce.checkout_abandoned",
}
STOPPED_EVENT = "ecommerce.automation_stopped"


def start(
    conn: sqlite3.Connection,
    subscriber_id: int,
    flow: str,
    key: str,
    now: int,
    data: dict[str, Any],
    due_at: int | None = None,
    source: str | None = None,
    order_id: str | None = None,
    ordered_at: int | None = None,
) -> int:
    """Start an active automation; with `due_at`, it is set to fire then (one already past fires at once)."""
    automation_id = automations.start(conn, subscriber_id, flow, key, now, data, due_at, source, order_id, ordered_at)
    if due_at is not None and due_at <= now:
        fire(conn, automation_id, now)
    return automation_id


def reschedule(
    conn: sqlite3.Connection,
    automation: Automation,
    due_at: int,
    data: dict[str, Any],
    now: int,
    version: int | None = None,
) -> None:
    """New due time and data for an active automation (a checkout seen again)."""
    automations.update(conn, automation.id, due_at, data, version)
    _cancel_retry(conn, automation)
    if due_at <= now:
        fire(conn, automation.id, now)


def fire(conn: sqlite3.Connection, automation_id: int, now: int, extra: dict[str, Any] | None = None) -> bool:
    """Active -> fired, recording the flow's event; False (and nothing recorded) when it is no longer active."""
    automation = automations.get(conn, automation_id)
    if automation is None or not automations.fire(conn, automation_id, now):
        return False
    properties = dict(automation.data)
    if automation.flow == REPLENISHMENT and automation.due_at is not None:
        properties["dueAt"] = format_instant_us(automation.due_at)
    if extra:
        properties.update(extra)
    events.record(
        conn,
        automation.subscriber_id,
        FIRED_EVENTS[automation.flow],
        properties,
        now,
        f"automation\x1f{automation_id}\x1ffired",
    )
    return True


def stop(conn: sqlite3.Connection, automation: Automation, reason: str, order_id: str | None, now: int) -> bool:
    """Active -> stopped with `reason`, its timer removed, `ecommerce.automation_stopped` recorded."""
    if not automations.stop(conn, automation.id, now, reason):
        return False
    _cancel_retry(conn, automation)
    events.record(
        conn,
        automation.subscriber_id,
        STOPPED_EVENT,
        {"flow": automation.flow, "key": automation.key, "reason": reason, "orderId": order_id},
        now,
        f"automation\x1f{automation.id}\x1fstopped",
    )
    return True


def _cancel_retry(conn: sqlite3.Connection, automation: Automation) -> None:
    """Remove the automation's timer from `store.timers`, where one is only when an earlier firing failed (its
    row no longer set to fire, though active and with a due time)."""
    if automation.fire_at is None and automation.due_at is not None:
        timers.cancel(conn, TIMER_KIND, str(automation.id))


def on_timer(conn: sqlite3.Connection, key: str, due_at: int, now: int) -> None:
    """An automation's due time came: fire it if it is still active."""
    fire(conn, int(key), now)


class _DueRows:
    """Active automations coming due, read from their own rows (`gateway.engine.timers.DueRows`)."""

    @staticmethod
    def next_due(conn: sqlite3.Connection) -> int | None:
        times = [automations.next_due(conn, flow) for flow in TIMED]
        return min((due_at for due_at in times if due_at is not None), default=None)

    @staticmethod
    def due(conn: sqlite3.Connection, now: int, limit: int) -> list[tuple[str, int]]:
        found = [
            (str(automation_id), due_at)
            for flow in TIMED
            for automation_id, due_at in automations.due(conn, flow, now, limit)
        ]
        return sorted(found, key=lambda pair: pair[1])[:limit]

    @staticmethod
    def take(conn: sqlite3.Connection, key: str, now: int) -> bool:
        return automations.take(conn, int(key), now)


DUE_ROWS = _DueRows()
