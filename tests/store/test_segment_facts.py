"""A chunk's segment facts read many subscribers to a statement (`store.segments.facts_many`) are what reading
them one by one (`facts`) gives: profile, counted orders and event measures, across more than one statement's
worth of subscribers, with an id that has no row left out."""

import sqlite3

from store import events
from store import segments as store


def _ledger(conn: sqlite3.Connection, subscribers: int) -> None:
    for sid in range(1, subscribers + 1):
        email = f"s{sid}@example.com"
        conn.execute(
            "INSERT INTO subscribers (id, email, first_name, orders_count, total_spent_cents, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, 1, 1)",
            (sid, email, "Bo" if sid % 3 else None, sid % 5, 1000 * sid),
        )
        for n in range(sid % 5):
            cancelled = int(n == 1 and sid % 2 == 0)
            refunded = 500 if n == 2 else 0  # the whole total: not counted
            conn.execute(
                "INSERT INTO orders (source, order_id, provider, email, total_cents, currency, items, ordered_at,"
                " cancelled, refunded_cents, version) VALUES (?, ?, 'api', ?, 500, 'USD', ?, ?, ?, ?, 1)",
                (
                    "api" if n % 2 else "shop",
                    f"o-{sid}-{n}",
                    email,
                    f'[{{"productId": "p{n}", "variantId": "v{sid}"}}]',
                    f"2026-11-{10 + n:02d}T08:00:00.{sid:03d}Z",
                    cancelled,
                    refunded,
                ),
            )
        for n in range(sid % 3):
            events.record(conn, sid, "ecommerce.order_placed", {}, 1_000 * sid + n, f"k-{sid}-{n}")


def test_many_subscribers_read_at_once_are_read_as_one_by_one(conn: sqlite3.Connection) -> None:
    subscribers = store.READ_BATCH + 9
    _ledger(conn, subscribers)
    ids = [*range(subscribers, 0, -1), 999]  # 999 has no row
    for newest in ([], [("ecommerce.order_placed", 1), ("ecommerce.order_placed", 2)]):
        read = store.facts_read(newest)
        for orders, items in ((False, False), (True, False), (True, True)):
            many = store.facts_many(conn, read, ids, orders, items)
            assert 999 not in many and set(many) == set(range(1, subscribers + 1))
            for sid in range(1, subscribers + 1):
                one = store.facts(conn, read, sid, orders, items)
                assert one is not None
                profile, counted, measures = many[sid]
                assert (profile, sorted(counted), measures) == (one[0], sorted(one[1]), one[2])
    counted = store.facts_many(conn, store.facts_read([]), [4], True, True)[4][1]
    assert len(counted) == 2  # of four orders, the cancelled and the fully refunded one are not counted
