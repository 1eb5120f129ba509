"""Privacy requests in the store on their own: erasing one customer of a source unlinks their orders (the
amounts stay: they are the shop's books), deletes that source's events of theirs and redacts exactly the raw
deliveries about them; erasing a source removes all it brought."""

import json
import sqlite3
from typing import Any

from normalizer import CanonicalOrder
from normalizer.order_event import OrderEvent
from store import events, ledger, privacy, queue
from store.db import transaction

SOURCE = "my-shop"
NOW = 1_000_000_000
KEEP = ("customers/redact", "shop/redact")


def _order(conn: sqlite3.Connection, order_id: str, email: str | None, external_id: str | None = None) -> None:
    customer = {"email": email, "externalId": external_id, "firstName": "Jane"} if email else None
    order = CanonicalOrder.model_validate(
        {"orderId": order_id, "totalCents": 8_850, "currency": "USD", "customer": customer}
    )
    ledger.merge(conn, OrderEvent(SOURCE, "shopify", order, NOW), NOW)


def _subscriber(conn: sqlite3.Connection, email: str) -> int:
    cursor = conn.execute(
        "INSERT INTO subscribers (email, first_name, created_at, updated_at) VALUES (?, 'Jane', ?, ?)",
        (email, NOW, NOW),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def _delivery(conn: sqlite3.Connection, number: int, payload: dict[str, Any], topic: str = "orders/create") -> None:
    body = json.dumps(payload).encode()
    job = queue.NewJob(f"commerce-webhook-{number}", "webhook", SOURCE, body, NOW, f"delivery-{number}", topic)
    assert queue.insert(conn, job)
    conn.execute("UPDATE jobs SET status = 'done' WHERE job_id = ?", (job.job_id,))


def _bodies(conn: sqlite3.Connection) -> dict[str, bytes]:
    return dict(conn.execute("SELECT job_id, body FROM jobs").fetchall())


def _state(conn: sqlite3.Connection) -> None:
    """Jane's two orders (one found only by her customer id), a stranger's order whose id contains hers, the
    events of both, and the deliveries that carried them (plus a compliance request, kept as the audit trail)."""
    with transaction(conn):
        _order(conn, "1001", "jane@example.com", "77")
        _order(conn, "1002", "jane-old@example.com", "77")
        _order(conn, "10010", "sam@example.com", "88")
        jane, sam = _subscriber(conn, "jane@example.com"), _subscriber(conn, "sam@example.com")
        events.record(conn, jane, "ecommerce.order_placed", {}, NOW, "e-1001", SOURCE, "1001")
        events.record(conn, jane, "ecommerce.order_placed", {}, NOW, "e-api", "api", "api-1")
        events.record(conn, sam, "ecommerce.order_placed", {}, NOW, "e-10010", SOURCE, "10010")
        _delivery(conn, 1, {"id": 1001, "email": "Jane@Example.com", "customer": {"id": 77}})
        _delivery(conn, 2, {"id": 1002, "customer": {"id": 77, "email": "jane-old@example.com"}})
        _delivery(conn, 3, {"id": 10010, "email": "sam@example.com", "note": "not 1001"})
        _delivery(conn, 4, {"customer": {"id": 77, "email": "jane@example.com"}}, topic="customers/redact")
        conn.execute("UPDATE jobs SET status = 'failed' WHERE job_id = 'commerce-webhook-2'")


def test_erase_customer_unlinks_orders_deletes_events_and_redacts_only_their_deliveries(
    conn: sqlite3.Connection,
) -> None:
    _state(conn)
    with transaction(conn):
        erased = privacy.erase_customer(conn, SOURCE, "jane@example.com", "77", ["1001"], KEEP)
    assert (erased.orders, erased.events, erased.deliveries) == (2, 1, 2)
    assert erased.emails == {"jane@example.com", "jane-old@example.com"}

    orders = {
        order_id: (email, customer, total)
        for order_id, email, customer, total in conn.execute(
            "SELECT order_id, email, customer, total_cents FROM orders"
        )
    }
    assert orders == {
        "1001": (None, "{}", 8_850),
        "1002": (None, "{}", 8_850),
        "10010": ("sam@example.com", '{"externalId":"88","firstName":"Jane"}', 8_850),
    }
    remaining = {row[0] for row in conn.execute("SELECT dedup_key FROM events")}
    assert remaining == {"e-api", "e-10010"}  # another source's event is not this source's to erase

    bodies = _bodies(conn)
    assert bodies["commerce-webhook-1"] == bodies["commerce-webhook-2"] == privacy.REDACTED_BODY
    assert json.loads(bodies["commerce-webhook-3"])["id"] == 10010  # "1001" inside another id is not hers
    assert json.loads(bodies["commerce-webhook-4"])["customer"]["id"] == 77  # the request itself is kept
    statuses = dict(conn.execute("SELECT job_id, status FROM jobs").fetchall())
    assert statuses["commerce-webhook-1"] == "done"  # a done delivery keeps its status: the audit trail
    assert statuses["commerce-webhook-2"] == "dead"  # a pending one can never run on redacted data
    error = conn.execute("SELECT error FROM jobs WHERE job_id = 'commerce-webhook-2'").fetchone()[0]
    assert error == "erased by a privacy request"


def test_erasing_again_changes_nothing(conn: sqlite3.Connection) -> None:
    _state(conn)
    with transaction(conn):
        privacy.erase_customer(conn, SOURCE, "jane@example.com", "77", ["1001"], KEEP)
    before = _bodies(conn)
    with transaction(conn):
        again = privacy.erase_customer(conn, SOURCE, "jane@example.com", "77", ["1001"], KEEP)
    assert (again.events, again.deliveries) == (0, 0)
    assert _bodies(conn) == before


def test_a_subscriber_is_forgotten_only_once_nothing_refers_to_them(conn: sqlite3.Connection) -> None:
    _state(conn)
    with transaction(conn):
        privacy.erase_customer(conn, SOURCE, "jane@example.com", "77", ["1001"], KEEP)
        assert not privacy.forget_if_unused(conn, "jane@example.com", "77")  # an event from the API remains
        conn.execute("DELETE FROM events WHERE dedup_key = 'e-api'")
        assert privacy.forget_if_unused(conn, "jane@example.com", "77")
    assert conn.execute("SELECT email FROM subscribers").fetchall() == [("sam@example.com",)]


def test_erase_source_removes_what_the_source_brought_and_keeps_the_requests(conn: sqlite3.Connection) -> None:
    _state(conn)
    with transaction(conn):
        erased = privacy.erase_source(conn, SOURCE, KEEP)
    assert (erased.orders, erased.events, erased.deliveries) == (3, 2, 3)
    assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 0
    assert {row[0] for row in conn.execute("SELECT dedup_key FROM events")} == {"e-api"}
    bodies = _bodies(conn)
    assert {job_id for job_id, body in bodies.items() if body == privacy.REDACTED_BODY} == {
        "commerce-webhook-1",
        "commerce-webhook-2",
        "commerce-webhook-3",
    }


def test_an_erased_event_id_is_never_given_again(conn: sqlite3.Connection) -> None:
    """A consumer of the event feed polls `after=` the last id it read: after an erasure deleted the newest
    events, the next event still takes an id past every id the feed ever showed, so it is not skipped."""
    _state(conn)
    seen = events.feed(conn, 0, 100)
    last_seen = seen[-1][0]
    with transaction(conn):
        privacy.erase_source(conn, SOURCE, KEEP)  # Sam's event, the newest, goes with the rest of the source
    assert [row[0] for row in events.feed(conn, 0, 100)] == [seen[1][0]]  # only Jane's Push Order event stays
    with transaction(conn):
        sam = _subscriber(conn, "sam-again@example.com")
        new = events.record(conn, sam, "ecommerce.order_placed", {}, NOW, "e-later", "api", "api-2")
        events.record_many(conn, [(sam, "segment.entered", {"segment": "vip"}, NOW, events.NO_KEY)])
    assert new is not None and new > last_seen
    assert [row[3] for row in events.feed(conn, last_seen, 100)] == ["{}", '{"segment":"vip"}']
