"""The sender after a turn that failed (the database full or unreachable at the wrong moment): what it had leased
in that turn is leased no more, and the destination keeps its room for requests in flight."""

import sqlite3
import threading
from typing import Any

import pytest

from gateway.outbound.sender import Sender
from store import deliveries
from tests.conftest import Harness, order
from tests.gateway.outbound._receiver import Reply, receiving
from tests.gateway.outbound._support import LOOPBACK, build, destination, rows, send


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


def test_with_the_database_unwritable_the_sender_neither_spins_nor_hangs_on_stop(
    make_harness: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The attempt's outcome cannot be written (a full disk, for as long as the test runs): the sender retries
    now and then, not in a loop that floods the log, and `stop` returns, leaving the lease to expire (the
    delivery then goes out again, with the same webhook-id)."""
    with receiving() as receiver:
        harness = build(make_harness, {"crm": destination(receiver.url)})
        harness.post_order(order())
        harness.drain()

        def full(conn: sqlite3.Connection, attempts: Any, owner: str) -> None:
            raise sqlite3.OperationalError("database or disk is full")

        monkeypatch.setattr(deliveries, "finish", full)
        sender = Sender(harness.config, harness.client.app.state.gateway.engine.revenue_attributes)
        sender.start()
        receiver.wait_for(1)
        stopping = threading.Thread(target=sender.stop, daemon=True)
        stopping.start()
        stopping.join(timeout=30)
        assert not stopping.is_alive()
    warnings = [r for r in caplog.records if r.getMessage() == "sender cannot reach the database"]
    assert 1 <= len(warnings) <= 10  # about one a second over the stop's few seconds of grace
    assert rows(harness, "SELECT status FROM deliveries") == [("delivering",)]


def test_a_disabled_destinations_held_deliveries_do_not_queue_the_sender_for_the_write_lock(
    make_harness: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Every commit of the worker wakes the sender. A disabled destination's deliveries wait, due, until it is
    enabled again: they must not make the sender take the write lock at every wake-up, in turn with ingest and
    the worker, for nothing to send. Here another writer holds the lock: the sender does not wait for it."""
    with receiving(default=Reply(410)) as receiver:
        harness: Harness = make_harness(
            destinations={"crm": destination(receiver.url)},
            delivery={"allow_private_networks": LOOPBACK},
            busy_timeout_seconds=0.2,
        )
        harness.post_order(order("a"))
        send(harness)  # 410 Gone: disabled
        harness.post_order(order("b"))
        harness.drain()  # b's delivery is due, held while the destination is disabled
    sender = Sender(harness.config, harness.client.app.state.gateway.engine.revenue_attributes)
    assert sender._turn_safely(claim=True)  # the first turn reads what is enabled
    with harness.db() as writer:
        writer.execute("BEGIN IMMEDIATE")
        woken = sender._turn_safely(claim=True)
        writer.execute("ROLLBACK")
    assert woken and not [r for r in caplog.records if r.getMessage() == "sender cannot reach the database"]
    assert rows(harness, "SELECT status FROM deliveries ORDER BY id") == [("failed",), ("pending",)]
