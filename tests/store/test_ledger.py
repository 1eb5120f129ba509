"""The ledger merge on its own: the monotone facts of an order (statuses seen, cancelled, fulfilled, the largest
refund) only ever grow, whatever the order of arrival, and the latest-state facts come from the newest event."""

import itertools
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from normalizer import CanonicalOrder, PushOrder
from normalizer.order_event import OrderEvent
from store import ledger
from store.db import transaction
from tests._schema import migrated_database

STATUSES = ("placed", "cancelled", "fulfilled", "refunded")


@contextmanager
def _database() -> Iterator[sqlite3.Connection]:
    conn = migrated_database(":memory:")
    try:
        yield conn
    finally:
        conn.close()


def _event(version: int, status: str, total: int, refund: int | None, number: str) -> OrderEvent:
    body: dict[str, Any] = {
        "orderId": "order-1",
        "orderNumber": number,
        "status": status,
        "totalCents": total,
        "currency": "USD",
        "customer": {"email": f"buyer-{version}@example.com"},
    }
    if refund is not None:
        body["refundAmountCents"] = min(refund, total)
    return OrderEvent("api", "api", PushOrder.model_validate(body), version)


@st.composite
def _events(draw: st.DrawFn) -> list[OrderEvent]:
    """2-6 events of one order with distinct versions, in arrival order (not version order)."""
    versions = draw(st.lists(st.integers(1, 10**6), min_size=2, max_size=6, unique=True))
    return [
        _event(
            version,
            draw(st.sampled_from(STATUSES)),
            draw(st.integers(0, 100_000)),
            draw(st.none() | st.integers(0, 100_000)),
            f"#{version}",
        )
        for version in versions
    ]


def _merge_all(conn: sqlite3.Connection, events: list[OrderEvent]) -> list[ledger.LedgerOrder]:
    rows = []
    for arrival, event in enumerate(events):
        with transaction(conn):
            _before, after = ledger.merge(conn, event, now=arrival)
        rows.append(after)
    stored = ledger.get(conn, "api", "order-1")
    assert stored is not None
    assert (stored.cancelled, stored.refunded_cents, stored.total_cents) == (
        rows[-1].cancelled,
        rows[-1].refunded_cents,
        rows[-1].total_cents,
    )
    return rows


@settings(deadline=None)  # each example builds a database: ~100 ms alone, past 200 ms on a loaded machine
@given(_events())
def test_monotone_facts_never_shrink_whatever_arrives(events: list[OrderEvent]) -> None:
    with _database() as conn:
        rows = _merge_all(conn, events)
    for earlier, later in itertools.pairwise(rows):
        assert set(earlier.statuses) <= set(later.statuses)
        assert later.cancelled >= earlier.cancelled
        assert later.fulfilled >= earlier.fulfilled
        assert later.refunded_cents >= earlier.refunded_cents
    final = rows[-1]
    assert set(final.statuses) == {event.order.status for event in events}
    assert final.cancelled == any(event.order.status == "cancelled" for event in events)
    assert final.fulfilled == any(event.order.status == "fulfilled" for event in events)
    assert final.refunded_cents == max(event.order.refunded_cents for event in events)


@settings(deadline=None)
@given(_events(), st.randoms())
def test_any_arrival_order_gives_the_same_row_with_the_newest_events_state(events: list[OrderEvent], rng: Any) -> None:
    shuffled = list(events)
    rng.shuffle(shuffled)
    with _database() as conn:
        in_order = _merge_all(conn, events)[-1]
    with _database() as conn:
        reordered = _merge_all(conn, shuffled)[-1]
    newest = max(events, key=lambda event: event.version)
    for row in (in_order, reordered):
        assert (row.total_cents, row.order_number, row.email, row.version) == (
            newest.order.totalCents,
            newest.order.orderNumber,
            newest.order.customer.email if newest.order.customer else None,
            newest.version,
        )
    assert (in_order.statuses, in_order.cancelled, in_order.fulfilled, in_order.refunded_cents) == (
        reordered.statuses,
        reordered.cancelled,
        reordered.fulfilled,
        reordered.refunded_cents,
    )


def test_an_older_update_never_overwrites_a_newer_one_but_still_adds_its_facts() -> None:
    with _database() as conn:
        with transaction(conn):
            ledger.merge(conn, _event(20, "fulfilled", 9_000, None, "#new"), now=1)
        with transaction(conn):
            before, after = ledger.merge(conn, _event(10, "cancelled", 5_000, None, "#old"), now=2)
    assert before is not None
    assert (after.total_cents, after.order_number, after.version) == (9_000, "#new", 20)
    assert (after.cancelled, after.fulfilled, after.statuses) == (True, True, ["cancelled", "fulfilled"])


def test_refunds_by_platform_id_add_up_and_a_repeat_counts_once() -> None:
    def refund(version: int, refunds: dict[str, int]) -> OrderEvent:
        order = CanonicalOrder.model_validate(
            {"orderId": "order-1", "status": "refunded", "totalCents": 10_000, "currency": "USD", "customer": None}
            | {"refunds": refunds, "refundAmountCents": 0}
        )
        return OrderEvent("my-shop", "shopify", order, version)

    with _database() as conn:
        for version, refunds in enumerate(({"r1": 1_500}, {"r2": 2_000}, {"r1": 1_500}), start=1):
            with transaction(conn):
                _before, row = ledger.merge(conn, refund(version, refunds), now=version)
    assert row.refunds == {"r1": 1_500, "r2": 2_000}
    assert row.refunded_cents == 3_500
