"""A database whose deliveries were written before their webhook-ids were derived (and before the narrower
indexes) is migrated at start: its pending deliveries go out with the webhook-ids they were given, its dead ones
can still be read and replayed by them, and new deliveries get derived ids. Every reader finds its index."""

import re
from pathlib import Path
from typing import Any

from store import deliveries, schema_flows
from tests._schema import database_before
from tests.conftest import order
from tests.gateway.outbound._receiver import receiving
from tests.gateway.outbound._support import build, destination, rows, send

PENDING = "msg_0661819f52d3c2a4b7e1f00d"  # as written before: creation time, then 40 random bits
DEAD = "msg_0661819f52d3c2ffee01c0de"


def _old_database(path: Path, url: str) -> None:
    """The schema just before `deliveries_narrowed`, with one pending and one dead delivery of the time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = database_before(path, schema_flows.deliveries_narrowed)
    conn.execute(
        "INSERT INTO destinations (name, url, events, include_historical, configured, enabled, configured_at)"
        " VALUES ('crm', ?, '[]', 0, 1, 1, 1)",
        (url,),
    )
    conn.execute(
        "INSERT INTO subscribers (id, email, attributes, orders_count, total_spent_cents, created_at, updated_at)"
        " VALUES (1, 'old@example.com', '{}', 0, 0, 1, 1)"
    )
    conn.executemany(
        "INSERT INTO events (id, subscriber_id, name, properties, occurred_at, dedup_key) VALUES (?, 1, ?, '{}', 1, ?)",
        [(1, "ecommerce.order_placed", "old-1"), (2, "ecommerce.order_cancelled", "old-2")],
    )
    conn.executemany(
        "INSERT INTO deliveries (webhook_id, event_id, destination, status, attempts, tries, next_attempt_at,"
        " created_at, updated_at) VALUES (?, ?, 'crm', ?, ?, ?, 0, 1, 1)",
        [(PENDING, 1, "pending", 0, 0), (DEAD, 2, "dead", 8, 8)],
    )
    conn.close()


def test_deliveries_written_before_the_migration_go_out_with_their_webhook_ids(
    make_harness: Any, tmp_path: Path
) -> None:
    with receiving() as receiver:
        _old_database(tmp_path / "data" / "gateway.db", receiver.url)
        harness = build(make_harness, {"crm": destination(receiver.url)})
        harness.post_order(order())
        assert send(harness) == 2
        got = receiver.wait_for(2)
        sent = {r.headers["webhook-id"] for r in got}
        assert PENDING in sent
        [new] = sent - {PENDING}
        assert re.fullmatch(r"msg_[0-9a-f]{24}", new) and new > PENDING  # ordered by time, like the old ones
        assert harness.get(f"/api/v1/deliveries/{PENDING}").json()["status"] == "succeeded"
        assert harness.get(f"/api/v1/deliveries/{new}").json()["status"] == "succeeded"
        assert harness.get("/api/v1/deliveries/msg_0661819f52d3c2a4b7e1f00e").status_code == 404
        listed = harness.get("/api/v1/deliveries", status="dead").json()["deliveries"]
        assert [d["deliveryId"] for d in listed] == [DEAD]
        [crm] = harness.get("/api/v1/destinations").json()["destinations"]
        assert (crm["pending"], crm["dead"]) == (0, 1)
        replayed = harness.client.post(f"/api/v1/deliveries/{DEAD}/replay", headers=harness.headers)
        assert replayed.status_code == 202, replayed.text
        assert send(harness) == 1
        assert receiver.wait_for(3)[-1].headers["webhook-id"] == DEAD
    assert rows(harness, "SELECT DISTINCT status FROM deliveries") == [("succeeded",)]


def test_each_reader_of_the_deliveries_finds_its_index(make_harness: Any) -> None:
    harness = build(make_harness, {"crm": destination("http://127.0.0.1:9/hooks")})
    plans = {
        "deliveries_due": (deliveries._CLAIM, ("crm", 1, 10)),
        "deliveries_dead": (
            "SELECT count(*) FROM deliveries WHERE destination = ? AND status = 'dead'",
            ("crm",),
        ),
        "deliveries_leased": (
            "SELECT id FROM deliveries WHERE status = 'delivering' AND lease_expires <= ? AND lease_owner != ?",
            (1, "me"),
        ),
        "legacy_webhook_ids USING PRIMARY KEY": (
            "SELECT delivery_id FROM legacy_webhook_ids WHERE webhook_id = ?",
            ("msg_",),
        ),
        "deliveries_event": (
            "SELECT 1 FROM deliveries AS d WHERE d.event_id = ? AND d.destination = ?",
            (1, "crm"),
        ),
    }
    with harness.db() as conn:
        for index, (sql, params) in plans.items():
            plan = " ".join(row[-1] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params))
            assert index in plan, (index, plan)
        for status in ("pending", "failed"):
            sql = f"SELECT count(*) FROM deliveries WHERE destination = ? AND status = '{status}'"
            plan = " ".join(row[-1] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, ("crm",)))
            assert "COVERING INDEX deliveries_due" in plan, plan
