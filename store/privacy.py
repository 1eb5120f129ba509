"""Privacy requests in SQL: erase a customer's personal data of one source, erase a whole source, export what
the gateway holds about one email. Amounts stay in the ledger (they are the shop's books, not personal data);
what ties them to a person (email, names, external id, the subscriber's events, raw deliveries) goes."""

import json
import sqlite3
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from normalizer.emails import normalise_email
from store import automations, events, ledger, outbox, segments

# A redacted delivery keeps its row (topic, times, status: the audit trail) but not its body.
REDACTED_BODY = b'{"redacted": true}'


@dataclass(slots=True)
class Erased:
    orders: int = 0
    events: int = 0
    deliveries: int = 0
    emails: set[str] = field(default_factory=set)


def erase_customer(
    conn: sqlite3.Connection,
    source: str,
    email: str | None,
    customer_id: str | None,
    order_ids: Collection[str],
    keep_topics: Collection[str],
) -> Erased:
    """Unlink one customer from every order of `source` that is theirs (by email, external id or listed order),
    delete that source's events of theirs, and redact the raw deliveries that carry them."""
    matched = conn.execute(
        "SELECT order_id, email FROM orders WHERE source = ? AND (email = ? OR"
        " json_extract(customer, '$.externalId') = ? OR order_id IN (SELECT value FROM json_each(?)))",
        (source, email, customer_id, json.dumps(list(order_ids))),
    ).fetchall()
    ids = {row[0] for row in matched} | set(order_ids)
    emails = {row[1] for row in matched if row[1]} | ({email} if email else set())
    subscriber_ids = [
        row[0]
        for row in conn.execute(
            "SELECT id FROM subscribers WHERE email IN (SELECT value FROM json_each(?))", (json.dumps(sorted(emails)),)
        )
    ]
    erased = Erased(emails=emails)
    erased.events = _delete_events(
        conn,
        "source = ? AND (order_id IN (SELECT value FROM json_each(?)) OR subscriber_id IN (SELECT value FROM"
        " json_each(?)))",
        (source, json.dumps(sorted(ids)), json.dumps(subscriber_ids)),
    )
    erased.orders = conn.execute(
        "UPDATE orders SET email = NULL, customer = '{}' WHERE source = ? AND order_id IN"
        " (SELECT value FROM json_each(?))",
        (source, json.dumps(sorted(ids))),
    ).rowcount
    erased.deliveries = _redact_deliveries(conn, source, keep_topics, emails, customer_id, ids)
    return erased


def erase_source(conn: sqlite3.Connection, source: str, keep_topics: Collection[str]) -> Erased:
    """Everything the gateway holds from one source: its ledger rows, its events, its raw deliveries."""
    emails = {row[0] for row in conn.execute("SELECT DISTINCT email FROM orders WHERE source = ?", (source,)) if row[0]}
    emails |= {
        row[0]
        for row in conn.execute(
            "SELECT DISTINCT s.email FROM events e JOIN subscribers s ON s.id = e.subscriber_id WHERE e.source = ?",
            (source,),
        )
    }
    erased = Erased(emails=emails)
    erased.events = _delete_events(conn, "source = ?", (source,))
    erased.orders = conn.execute("DELETE FROM orders WHERE source = ?", (source,)).rowcount
    erased.deliveries = conn.execute(
        "UPDATE jobs SET body = ?, error = CASE WHEN status = 'done' THEN error ELSE 'erased by a privacy request'"
        " END, status = CASE WHEN status = 'done' THEN status ELSE 'dead' END, lease_owner = NULL,"
        " lease_expires = NULL WHERE source = ? AND kind = 'webhook' AND body != ?"
        " AND (topic IS NULL OR topic NOT IN (SELECT value FROM json_each(?)))",
        (REDACTED_BODY, source, REDACTED_BODY, json.dumps(sorted(keep_topics))),
    ).rowcount
    return erased


def forget_if_unused(conn: sqlite3.Connection, email: str, customer_id: str | None) -> bool:
    """Delete the subscriber once nothing else references them (no order of any source, no event but their
    segment events, which go with them); else drop the external id this customer request named. True when the
    subscriber is gone."""
    row = conn.execute("SELECT id FROM subscribers WHERE email = ?", (email,)).fetchone()
    if row is None:
        return True
    subscriber_id = row[0]
    used = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM orders WHERE email = ?) OR EXISTS (SELECT 1 FROM events WHERE subscriber_id = ?"
        " AND substr(name, 1, 8) != 'segment.')",
        (email, subscriber_id),
    ).fetchone()[0]
    if not used:
        automations.forget_subscriber(conn, subscriber_id)
        _delete_events(conn, "subscriber_id = ?", (subscriber_id,))
        segments.forget_subscriber(conn, subscriber_id)
        conn.execute("DELETE FROM subscribers WHERE id = ?", (subscriber_id,))
        return True
    if customer_id is not None:
        conn.execute(
            "UPDATE subscribers SET external_id = NULL WHERE id = ? AND external_id = ?", (subscriber_id, customer_id)
        )
    return False


def _delete_events(conn: sqlite3.Connection, where: str, params: Sequence[Any]) -> int:
    """Delete the events `where` selects, with their outbound deliveries; returns how many events."""
    ids = [row[0] for row in conn.execute(f"SELECT id FROM events WHERE {where}", params)]
    if ids:
        outbox.forget(conn, ids)
        conn.execute("DELETE FROM events WHERE id IN (SELECT value FROM json_each(?))", (json.dumps(ids),))
    return len(ids)


def orders_for_email(conn: sqlite3.Connection, email: str) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT source, order_id FROM orders WHERE email = ? ORDER BY id", (email,)).fetchall()
    found = [ledger.get(conn, source, order_id) for source, order_id in rows]
    return [ledger.as_api(row) for row in found if row is not None]


def events_for_subscriber(conn: sqlite3.Connection, subscriber_id: int) -> Iterable[tuple[int, str, str, int]]:
    after = 0
    while page := events.for_subscriber(conn, subscriber_id, after, 1000):
        yield from page
        after = page[-1][0]


def _redact_deliveries(
    conn: sqlite3.Connection,
    source: str,
    keep_topics: Collection[str],
    emails: set[str],
    customer_id: str | None,
    order_ids: set[str],
) -> int:
    """Raw deliveries of `source` that are about this customer. A cheap byte search narrows the rows; parsing
    decides, so an id that merely appears inside another number never redacts a stranger's delivery."""
    needles = sorted(emails) + ([customer_id] if customer_id else []) + sorted(order_ids)
    if not needles:
        return 0
    candidates = conn.execute(
        "SELECT id, body FROM jobs WHERE source = ? AND kind = 'webhook' AND body != ?"
        " AND (topic IS NULL OR topic NOT IN (SELECT value FROM json_each(?)))"
        " AND EXISTS (SELECT 1 FROM json_each(?) WHERE instr(lower(CAST(body AS TEXT)), value) > 0)",
        (source, REDACTED_BODY, json.dumps(sorted(keep_topics)), json.dumps(needles)),
    ).fetchall()
    redacted = 0
    for job_id, body in candidates:
        if _concerns(body, emails, customer_id, order_ids):
            conn.execute(
                "UPDATE jobs SET body = ?, error = CASE WHEN status = 'done' THEN error ELSE"
                " 'erased by a privacy request' END, status = CASE WHEN status = 'done' THEN status ELSE 'dead' END,"
                " lease_owner = NULL, lease_expires = NULL WHERE id = ?",
                (REDACTED_BODY, job_id),
            )
            redacted += 1
    return redacted


def _concerns(body: bytes, emails: set[str], customer_id: str | None, order_ids: set[str]) -> bool:
    try:
        payload = json.loads(body)
    except ValueError:
        return False
    if not isinstance(payload, dict):
        return False
    for key in ("id", "order_id"):
        if payload.get(key) is not None and str(payload[key]) in order_ids:
            return True
    customer = payload.get("customer")
    person: dict[str, Any] = customer if isinstance(customer, dict) else {}
    if customer_id is not None and person.get("id") is not None and str(person["id"]) == customer_id:
        return True
    for value in (person.get("email"), payload.get("email"), payload.get("contact_email")):
        if isinstance(value, str) and value.strip():
            try:
                if normalise_email(value) in emails:
                    return True
            except ValueError:
                continue
    return False
