"""Which events a destination gets: its patterns, historical events only with include_historical, and events
recorded before it was configured only when replayed with --since."""

from pathlib import Path
from typing import Any

from store import events
from store.db import connect, transaction
from tests.conftest import order
from tests.gateway._server import cli
from tests.gateway.outbound._receiver import receiving
from tests.gateway.outbound._support import LOOPBACK, build, destination, rows, send


def test_patterns_choose_the_events(make_harness: Any) -> None:
    with receiving() as receiver:
        only_refunds = destination(receiver.url, events=["ecommerce.order_refund*"])
        harness = build(make_harness, {"refunds": only_refunds})
        harness.post_order(order())
        harness.post_order(order(status="refunded", refundAmountCents=100))
        send(harness)
        [got] = receiver.wait_for(1)
    assert b"ecommerce.order_refunded" in got.body
    assert rows(harness, "SELECT count(*) FROM events") == [(2,)]


def test_events_before_a_destination_existed_go_only_when_replayed_since(make_harness: Any, tmp_path: Path) -> None:
    with receiving() as receiver:
        before = make_harness(delivery={"allow_private_networks": LOOPBACK})
        before.post_order(order("old-1"))
        before.post_order(order("old-2"))
        before.drain()
        harness = build(make_harness, {"crm": destination(receiver.url)})
        harness.post_order(order("new-1"))
        send(harness)
        assert len(receiver.wait_for(1)) == 1
        replayed = cli(
            "deliveries",
            "replay",
            "--destination",
            "crm",
            "--since",
            "2020-01-01",
            "--config",
            str(tmp_path / "config.yaml"),
        )
        assert replayed.returncode == 0, replayed.stderr
        assert replayed.stdout.startswith("2 deliveries to crm due now")
        send(harness)
        got = receiver.wait_for(3)
    assert sorted(r.body.count(b"old-") for r in got) == [0, 1, 1]
    listed = cli("deliveries", "list", "--status", "succeeded", "--config", str(tmp_path / "config.yaml"))
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) == 3


def test_historical_events_go_only_where_include_historical(make_harness: Any) -> None:
    with receiving() as receiver:
        harness = build(
            make_harness,
            {"live": destination(receiver.url), "archive": destination(receiver.url, include_historical=True)},
        )
        with harness.db() as conn:  # an event as a backfill records it (the lifecycle engine marks them)
            conn.execute("INSERT INTO subscribers (email, created_at, updated_at) VALUES ('h@example.com', 1, 1)")
        conn = connect(harness.config.database)
        with transaction(conn):
            events.record(conn, 1, "ecommerce.order_placed", {"historical": True}, 1, "historical-1")
        conn.close()
        send(harness)
        receiver.wait_for(1)
    assert rows(harness, "SELECT destination FROM deliveries") == [("archive",)]
