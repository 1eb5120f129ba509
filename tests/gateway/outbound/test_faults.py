"""The sender after a turn that failed (the database full or unreachable at the wrong moment): what it had leased
in that turn is leased no more, and the destination keeps its room for requests in flight."""

import sqlite3
from typing import Any

import pytest

from gateway.outbound.sender import Sender
from store import deliveries
from tests.conftest import order
from tests.gateway.outbound._receiver import receiving
from tests.gateway.outbound._support import build, destination, rows


def test_a_turn_failing_after_its_claims_leaves_the_destination_its_room(
    make_harness: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with receiving() as receiver:
        harness = build(make_harness, {"crm": destination(receiver.url, max_in_flight=1)})
        harness.post_order(order())
        harness.drain()
        next_due = deliveries.next_due
        failed: list[str] = []

        def full_once(conn: sqlite3.Connection, names: Any) -> int | None:
            """The transaction that leased the delivery fails after the lease (a full disk) and rolls back."""
            if conn.in_transaction and not failed:
                failed.append("database or disk is full")
                raise sqlite3.OperationalError(failed[0])
            return next_due(conn, names)

        monkeypatch.setattr(deliveries, "next_due", full_once)
        sender = Sender(harness.config, harness.client.app.state.gateway.engine.revenue_attributes)
        sender.start()
        try:
            receiver.wait_for(1, timeout=10)
        finally:
            sender.stop()
    assert failed == ["database or disk is full"]
    assert rows(harness, "SELECT status FROM deliveries") == [("succeeded",)]
