"""One address, one subscriber: emails are kept in their normalised form (NFC, lower-cased), and a database
built before that rule, where one address written two ways became two subscribers with split totals, is merged at
start and their totals recomputed from the ledger exactly."""

import json
import unicodedata
from pathlib import Path
from typing import Any

from store import schema_orders
from tests._schema import database_before
from tests.conftest import Harness, order

NFC = unicodedata.normalize("NFC", "josé@b.cóm")
NFD = unicodedata.normalize("NFD", "josé@b.cóm")


def _old_database(path: Path) -> None:
    """A database at the schema before emails were normalised (v8), as the old release left it: two subscribers
    for one address, each with its orders in the ledger and its events. Their stored totals are stale on purpose:
    the merge must recompute them from the ledger, not add them up."""
    conn = database_before(path, schema_orders.v8)
    people = [
        (1, NFC, "ext-1", "José", None, {"tier": "gold", "city": "Lisbon"}, 100, 200),
        (2, NFD, None, None, "Silva", {"tier": "silver"}, 150, 300),
        (3, "other@example.com", None, "Ann", None, {}, 100, 100),
    ]
    for sid, email, external, first, last, attributes, created, updated in people:
        conn.execute(
            "INSERT INTO subscribers (id, email, external_id, first_name, last_name, attributes, orders_count,"
            " total_spent_cents, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 99, 99, ?, ?)",
            (sid, email, external, first, last, json.dumps(attributes), created, updated),
        )
    orders = [  # (order id, email, total, currency, refunded, cancelled)
        ("o-1", NFC, 8850, "USD", 0, 0),
        ("o-2", NFD, 5000, "USD", 1500, 0),
        ("o-3", NFD, 10000, "EUR", 0, 0),  # 100 EUR at 1.08
        ("o-4", NFD, 7000, "USD", 0, 1),  # cancelled: not counted
        ("o-5", "other@example.com", 1234, "USD", 0, 0),
    ]
    for index, (order_id, email, total, currency, refunded, cancelled) in enumerate(orders):
        conn.execute(
            "INSERT INTO orders (source, order_id, provider, email, total_cents, currency, ordered_at, statuses,"
            " cancelled, fulfilled, refunded_cents, version, created_at, updated_at) VALUES ('api', ?, 'api', ?, ?,"
            " ?, '2026-01-01T00:00:00.000Z', '[\"placed\"]', ?, 0, ?, 1, 1, 1)",
            (order_id, email, total, currency, cancelled, refunded),
        )
        subscriber = 1 if email == NFC else 2 if email == NFD else 3
        conn.execute(
            "INSERT INTO events (subscriber_id, name, properties, occurred_at, dedup_key, source, order_id)"
            " VALUES (?, 'ecommerce.order_placed', '{}', ?, ?, 'api', ?)",
            (subscriber, 1000 + index, f"api\x1f{order_id}\x1fplaced", order_id),
        )
    conn.close()


def test_one_address_two_spellings_is_merged_with_exact_totals(tmp_path: Path, make_harness: Any) -> None:
    path = tmp_path / "data" / "gateway.db"
    path.parent.mkdir()
    _old_database(path)
    harness: Harness = make_harness(database=str(path))  # the app's start migrates and recomputes

    with harness.db() as conn:
        rows = conn.execute("SELECT email FROM subscribers ORDER BY id").fetchall()
        assert rows == [(NFC,), ("other@example.com",)]
        assert {row[0] for row in conn.execute("SELECT DISTINCT email FROM orders")} == {NFC, "other@example.com"}
        assert conn.execute("SELECT count(*) FROM totals_to_recompute").fetchone()[0] == 0
    for spelling in (NFC, NFD, NFC.upper()):
        merged = harness.subscriber(spelling)
        assert merged["email"] == NFC
    # o-1 88.50 + o-2 (50.00 - 15.00) + o-3 100 EUR = 108.00 USD; o-4 cancelled.
    assert merged["attributes"] == {
        "tier": "silver",  # the most recently updated subscriber's value wins
        "city": "Lisbon",
        "ltv": 231.5,
        "totalSpent": 231.5,
        "ordersCount": 3,
        "aov": 77.17,
    }
    assert (merged["externalId"], merged["firstName"], merged["lastName"]) == ("ext-1", "José", "Silva")
    assert [event["properties"] for event in harness.events(NFD)] == [{}] * 4
    assert harness.attributes("other@example.com")["ordersCount"] == 99  # not merged: left as it was

    # New orders under either spelling land on the one subscriber.
    assert harness.post_order(order("o-6", customer={"email": NFD}, totalCents=1000)).status_code == 202
    harness.drain()
    assert harness.attributes(NFC)["ordersCount"] == 4
    with harness.db() as conn:
        assert conn.execute("SELECT count(*) FROM subscribers").fetchone()[0] == 2


def test_a_new_database_stores_the_normalised_form(harness: Harness) -> None:
    for index, spelling in enumerate([NFD, NFC, NFC.upper()]):
        assert harness.post_order(order(f"n-{index}", customer={"email": spelling})).status_code == 202
    harness.drain()
    with harness.db() as conn:
        assert conn.execute("SELECT email FROM subscribers").fetchall() == [(NFC,)]
    assert harness.attributes(NFD)["ordersCount"] == 3
