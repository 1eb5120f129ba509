"""Privacy and lifecycle commands adapters ask of the engine (Shopify's mandatory compliance topics): erase a
customer of one source, erase a source, record a data request, record an uninstall.

Job warnings name counts and ids, never an email: they are readable through the API and stay in the database.
"""

import sqlite3
from typing import TYPE_CHECKING, Any

from adapters import Command, TranslationError
from store import privacy, subscribers

if TYPE_CHECKING:  # the engine calls these handlers with itself: no import cycle at run time
    from gateway.engine.orders import Engine

# Erasure requests are the proof that data was erased: their own deliveries are kept.
_REQUEST_RECORDS = frozenset({"customers/redact", "shop/redact"})


def erase_customer(engine: "Engine", conn: sqlite3.Connection, source: str, command: Command, now: int) -> list[str]:
    args = command.args
    email, customer_id = _text(args, "email"), _text(args, "customerId")
    order_ids = [str(order_id) for order_id in args.get("orderIds") or []]
    if email is None and customer_id is None and not order_ids:
        raise TranslationError("erase_customer needs an email, a customer id or order ids")
    erased = privacy.erase_customer(conn, source, email, customer_id, order_ids, _REQUEST_RECORDS)
    warnings: list[str] = []
    kept = _settle(engine, conn, erased.emails, customer_id, now, warnings)
    warnings.append(
        f"customer erased from source {source}: {erased.orders} orders unlinked, {erased.events} events and"
        f" {erased.deliveries} deliveries erased" + _kept(kept)
    )
    return warnings


def erase_source(engine: "Engine", conn: sqlite3.Connection, source: str, command: Command, now: int) -> list[str]:
    erased = privacy.erase_source(conn, source, {"shop/redact"})
    warnings: list[str] = []
    kept = _settle(engine, conn, erased.emails, None, now, warnings)
    warnings.append(
        f"source {source} erased: {erased.orders} orders, {erased.events} events, {erased.deliveries} deliveries"
        + _kept(kept)
    )
    return warnings


def data_request(engine: "Engine", conn: sqlite3.Connection, source: str, command: Command, now: int) -> list[str]:
    email = _text(command.args, "email")
    held = email is not None and subscribers.find_id(conn, email) is not None
    request = command.args.get("requestId")
    return [
        f"data request {request if request is not None else '(no id)'} recorded: "
        + (
            "export the customer's data with GET /api/v1/subscribers/{email}/export"
            if held
            else "the gateway holds no subscriber for this customer"
        )
    ]


def app_uninstalled(engine: "Engine", conn: sqlite3.Connection, source: str, command: Command, now: int) -> list[str]:
    return [f"app uninstalled from source {source}: recorded; shop/redact erases its data when it arrives"]


def _settle(
    engine: "Engine", conn: sqlite3.Connection, emails: set[str], customer_id: str | None, now: int, warnings: list[str]
) -> int:
    """After an erasure: subscribers nothing references any more are deleted; the others keep what other
    sources know of them, with revenue attributes recomputed without the erased orders. Returns how many kept."""
    kept = 0
    for email in sorted(emails):
        if not privacy.forget_if_unused(conn, email, customer_id):
            engine.recompute(conn, email, now, None, warnings)
            subscriber_id = subscribers.find_id(conn, email)
            if engine.segments and subscriber_id is not None:
                engine.segments.on_erasure(conn, subscriber_id, now)
            kept += 1
    return kept


def _kept(count: int) -> str:
    plural = "s" if count > 1 else ""
    return f"; {count} subscriber{plural} kept for the data other sources hold" if count else ""


def _text(args: Any, key: str) -> str | None:
    value = args.get(key)
    return str(value) if value is not None and str(value).strip() else None
