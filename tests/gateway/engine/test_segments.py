"""Segments end to end (the real app, a real SQLite file): membership follows orders in the order's own
transaction, entering and leaving record their events once, the read API pages members, and time alone moves a
withinDays segment through the worker's due times."""

from typing import Any

import pytest

from gateway.engine import build_engine, segment_rebuild
from gateway.engine.segment_facts import DAY_US
from normalizer.timefmt import format_instant_us, now_us
from store import timers
from store.db import connect
from tests.conftest import Harness, order

SEGMENTS: dict[str, Any] = {
    "vip": {
        "all": [
            {"attribute": "totalSpent", "gte": 150},
            {"purchased": {"productId": "SKU-PROTEIN-1KG", "atLeast": 2}},
        ]
    },
    "tiktok": {"attribute": "acquisitionChannel", "eq": "tiktok"},
    "recent": {"orders": {"withinDays": 30}},
    "lapsed": {"all": [{"attribute": "ordersCount", "gte": 1}, {"not": {"segment": "recent"}}]},
    "lapsed-vip": {"all": [{"segment": "lapsed"}, {"segment": "vip"}]},
}
EMAIL = "buyer@example.com"


def segment_events(harness: Harness, email: str = EMAIL) -> list[tuple[str, str]]:
    return [
        (event["name"], event["properties"]["segment"])
        for event in harness.events(email)
        if event["name"].startswith("segment.")
    ]


def days_ago(days: float) -> str:
    return format_instant_us(now_us() - int(days * DAY_US))


@pytest.fixture
def harness(make_harness: Any) -> Harness:
    built: Harness = make_harness(segments=SEGMENTS)
    return built


def test_an_order_moves_its_subscriber_in_and_a_refund_moves_them_out(harness: Harness) -> None:
    harness.post_order(order("o-1", orderedAt=days_ago(1)))
    harness.drain()
    assert harness.subscriber(EMAIL)["segments"] == ["recent", "tiktok"]
    assert sorted(segment_events(harness)) == [("segment.entered", "recent"), ("segment.entered", "tiktok")]
    harness.post_order(order("o-2", orderedAt=days_ago(0.5)))
    harness.drain()
    assert harness.subscriber(EMAIL)["segments"] == ["recent", "tiktok", "vip"]
    harness.post_order(order("o-2", status="refunded", orderedAt=days_ago(0.5)))
    harness.drain()
    assert harness.subscriber(EMAIL)["segments"] == ["recent", "tiktok"]
    assert segment_events(harness)[2:] == [("segment.entered", "vip"), ("segment.exited", "vip")]
    listing = harness.get("/api/v1/segments").json()
    assert listing == {
        "segments": [
            {"name": "lapsed", "members": 0},
            {"name": "lapsed-vip", "members": 0},
            {"name": "recent", "members": 1},
            {"name": "tiktok", "members": 1},
            {"name": "vip", "members": 0},
        ]
    }


def test_time_alone_moves_a_subscriber_out_of_a_window_and_into_the_segment_that_negates_it(
    harness: Harness,
) -> None:
    harness.post_order(order("o-1", orderedAt=days_ago(29)))
    harness.drain()
    assert harness.subscriber(EMAIL)["segments"] == ["recent", "tiktok"]
    with harness.db() as conn:
        (due,) = conn.execute("SELECT due_at FROM timers WHERE kind = 'segment'").fetchone()
    # The window closes 30 days after the order: one day from now.
    assert abs(due - (now_us() + DAY_US)) < 60_000_000
    assert harness.worker.fire_timers(now=due - 1) == 0  # not yet
    assert harness.worker.fire_timers(now=due + 5 * DAY_US) == 1  # the worker was down meanwhile
    assert harness.subscriber(EMAIL)["segments"] == ["lapsed", "tiktok"]
    assert segment_events(harness)[-2:] == [("segment.exited", "recent"), ("segment.entered", "lapsed")]
    with harness.db() as conn:
        assert conn.execute("SELECT count(*) FROM timers").fetchone() == (0,)  # no window left open
    assert harness.worker.fire_timers(now=due + 6 * DAY_US) == 0
    # A new order brings them back, in its own transaction.
    harness.post_order(order("o-2"))
    harness.drain()
    assert harness.subscriber(EMAIL)["segments"] == ["recent", "tiktok", "vip"]
    assert sorted(segment_events(harness)[-3:]) == [
        ("segment.entered", "recent"),
        ("segment.entered", "vip"),
        ("segment.exited", "lapsed"),
    ]


def test_members_are_listed_by_page(harness: Harness) -> None:
    emails = [f"fan-{n}@example.com" for n in range(5)]
    for n, email in enumerate(emails):
        harness.post_order(order(f"o-{n}", customer={"email": email, "attributes": {"acquisitionChannel": "tiktok"}}))
    harness.drain()
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = harness.get("/api/v1/segments/tiktok/members", **params).json()
        assert len(page["members"]) <= 2
        seen += page["members"]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == emails
    assert harness.get("/api/v1/segments/tiktok/members").json() == {"members": emails, "nextCursor": None}
    missing = harness.get("/api/v1/segments/nope/members")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
    bad = harness.get("/api/v1/segments/tiktok/members", limit=0, cursor="x")
    assert bad.status_code == 422
    assert [d["field"] for d in bad.json()["error"]["details"]] == ["limit", "cursor"]
    assert harness.client.get("/api/v1/segments").status_code == 401


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": "1" * 5000}, "limit"),  # more digits than int() converts
        ({"cursor": "1" * 5000}, "cursor"),
        ({"cursor": "1" * 19}, "cursor"),
    ],
)
def test_a_page_query_no_cursor_or_limit_could_be_is_422(harness: Harness, query: dict[str, str], field: str) -> None:
    response = harness.get("/api/v1/segments/tiktok/members", **query)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"
    assert [detail["field"] for detail in response.json()["error"]["details"]] == [field]


def test_a_replayed_job_records_no_transition_twice(harness: Harness) -> None:
    response = harness.post_order(order("o-1"))
    harness.drain()
    before = segment_events(harness)
    with harness.db() as conn:
        conn.execute("UPDATE jobs SET status = 'dead' WHERE job_id = ?", (response.json()["jobId"],))
    assert (
        harness.client.post(f"/api/v1/jobs/{response.json()['jobId']}/replay", headers=harness.headers).status_code
        == 202
    )
    harness.drain()
    assert segment_events(harness) == before


def test_definitions_change_at_start_without_events(make_harness: Any) -> None:
    first = make_harness(segments={"tiktok": SEGMENTS["tiktok"], "recent": SEGMENTS["recent"]})
    first.post_order(order("o-1"))
    first.post_order(order("o-2", customer={"email": "other@example.com", "attributes": {"acquisitionChannel": "ig"}}))
    first.drain()
    entered = segment_events(first)
    # Edited (tiktok now means instagram), added (big), removed (recent).
    changed = {
        "tiktok": {"attribute": "acquisitionChannel", "in": ["ig"]},
        "big": {"attribute": "totalSpent", "gt": 1},
    }
    second = make_harness(segments=changed)
    assert second.subscriber(EMAIL)["segments"] == ["big"]
    assert second.subscriber("other@example.com")["segments"] == ["big", "tiktok"]
    assert second.get("/api/v1/segments").json()["segments"] == [
        {"name": "big", "members": 2},
        {"name": "tiktok", "members": 1},
    ]
    assert segment_events(second) == entered  # nothing recorded by the rebuild
    assert segment_events(second, "other@example.com") == []
    # Live changes after the rebuild fire as usual.
    second.post_order(order("o-3", customer={"email": EMAIL, "attributes": {"acquisitionChannel": "ig"}}))
    second.drain()
    assert segment_events(second)[-1] == ("segment.entered", "tiktok")


def test_an_event_recorded_by_the_lifecycle_moves_the_segments_counting_it(make_harness: Any) -> None:
    harness = make_harness(
        segments={
            "abandoners": {"event": {"name": "ecommerce.checkout_abandoned", "withinDays": 7}},
            "started": {"event": {"name": "ecommerce.checkout_started"}},
        }
    )
    checkout = {
        "checkoutId": "chk-1",
        "totalCents": 4425,
        "currency": "USD",
        "customer": {"email": EMAIL},
        "items": [{"productId": "SKU-PROTEIN-1KG", "title": "Protein Powder", "quantity": 1}],
    }
    assert harness.client.post("/api/v1/checkouts", json=checkout, headers=harness.headers).status_code == 202
    harness.drain()
    assert harness.subscriber(EMAIL)["segments"] == ["started"]
    # The abandonment timer fires (an hour later): the event it records enters the subscriber at once.
    abandoned_at = now_us() + 2 * 3_600_000_000
    assert harness.worker.fire_timers(abandoned_at) == 1
    assert harness.subscriber(EMAIL)["segments"] == ["abandoners", "started"]
    # Seven days after the abandonment, time alone takes them out again.
    assert harness.worker.fire_timers(abandoned_at + 7 * DAY_US) == 0
    assert harness.worker.fire_timers(abandoned_at + 7 * DAY_US + 1) == 1
    assert harness.subscriber(EMAIL)["segments"] == ["started"]
    assert segment_events(harness)[-1] == ("segment.exited", "abandoners")


def test_segment_events_of_imported_history_say_so(make_harness: Any) -> None:
    harness = make_harness(segments=SEGMENTS, lifecycle={"historical_after": "30d"})
    harness.post_order(order("o-old", orderedAt=days_ago(400)))
    harness.drain()
    changes = [e for e in harness.events(EMAIL) if e["name"].startswith("segment.")]
    assert sorted((e["properties"]["segment"], e["properties"].get("historical")) for e in changes) == [
        ("lapsed", True),
        ("tiktok", True),
    ]
    harness.post_order(order("o-new", orderedAt=days_ago(0)))
    harness.drain()
    changes = [e for e in harness.events(EMAIL) if e["name"].startswith("segment.")][2:]
    assert sorted((e["name"], e["properties"]["segment"], e["properties"].get("historical")) for e in changes) == [
        ("segment.entered", "recent", None),
        ("segment.entered", "vip", None),
        ("segment.exited", "lapsed", None),
    ]


def segment_due(harness: Harness) -> int | None:
    with harness.db() as conn:
        row = conn.execute("SELECT due_at FROM timers WHERE kind = 'segment'").fetchone()
    return None if row is None else int(row[0])


def test_a_later_window_leaves_the_timer_early_and_its_firing_sets_it_again(harness: Harness) -> None:
    harness.post_order(order("o-1", orderedAt=days_ago(29)))
    harness.drain()
    first = segment_due(harness)
    assert first is not None and abs(first - (now_us() + DAY_US)) < 60_000_000
    harness.post_order(order("o-2", orderedAt=days_ago(10)))  # the window now closes in 20 days: no write
    harness.drain()
    assert segment_due(harness) == first
    events_before = segment_events(harness)
    assert harness.worker.fire_timers(now=first + 1) == 1  # early: nothing changes, the timer is set again
    assert harness.subscriber(EMAIL)["segments"] == ["recent", "tiktok", "vip"]
    assert segment_events(harness) == events_before
    again = segment_due(harness)
    assert again is not None and abs(again - (now_us() + 20 * DAY_US)) < 60_000_000


def test_a_segment_timer_that_died_is_set_anew_by_the_next_change(harness: Harness) -> None:
    harness.post_order(order("o-1", orderedAt=days_ago(29)))
    harness.drain()
    with harness.db() as conn:  # the timer failed its last attempt: out of the due order, kept dead
        rowid, key, due_at = conn.execute("SELECT rowid, key, due_at FROM timers WHERE kind = 'segment'").fetchone()
        timers.take(conn, rowid, due_at)
        timers.bury(conn, "segment", key, due_at, 3, "RuntimeError", now_us())
    harness.post_order(order("o-2", orderedAt=days_ago(5)))  # a later window than the dead timer's
    harness.drain()
    due = segment_due(harness)
    assert due is not None and abs(due - (now_us() + 25 * DAY_US)) < 60_000_000


def rebuild_changes(harness: Harness) -> tuple[int, int]:
    """(entered, left) by a rebuild of every segment now: what live evaluation got wrong."""
    conn = connect(harness.config.database, harness.config.durability)
    try:
        result = segment_rebuild.rebuild_all(build_engine(harness.config).segments, conn, False, now_us())
    finally:
        conn.close()
    return result.entered, result.exited


def test_a_new_subscriber_enters_what_holds_for_them_and_a_checkout_moves_them(make_harness: Any) -> None:
    harness = make_harness(
        segments={
            "no-tier": {"attribute": "tier", "exists": False},
            "not-gold": {"attribute": "tier", "ne": "gold"},
            "gold": {"attribute": "tier", "eq": "gold"},
            "never-ordered": {"not": {"orders": {}}},
        }
    )
    # A first order that gives no tier: the segments holding for a subscriber without one.
    harness.post_order(order("o-1", customer={"email": EMAIL}))
    harness.drain()
    assert harness.subscriber(EMAIL)["segments"] == ["no-tier", "not-gold"]
    # A checkout creates its subscriber; a later one gives a tier.
    checkout = {"checkoutId": "chk-1", "totalCents": 100, "currency": "USD", "customer": {"email": "c@example.com"}}
    assert harness.client.post("/api/v1/checkouts", json=checkout, headers=harness.headers).status_code == 202
    harness.drain()
    assert harness.subscriber("c@example.com")["segments"] == ["never-ordered", "no-tier", "not-gold"]
    checkout["customer"] = {"email": EMAIL, "attributes": {"tier": "gold"}}
    assert harness.client.post("/api/v1/checkouts", json=checkout, headers=harness.headers).status_code == 202
    # A back-in-stock request does the same.
    wait = {"productId": "SKU-1", "customer": {"email": "w@example.com", "attributes": {"tier": "gold"}}}
    assert harness.client.post("/api/v1/back-in-stock", json=wait, headers=harness.headers).status_code == 202
    harness.drain()
    assert harness.subscriber(EMAIL)["segments"] == ["gold"]
    assert sorted(segment_events(harness)[2:]) == [
        ("segment.entered", "gold"),
        ("segment.exited", "no-tier"),
        ("segment.exited", "not-gold"),
    ]
    assert harness.subscriber("w@example.com")["segments"] == ["gold", "never-ordered"]
    assert rebuild_changes(harness) == (0, 0)  # live membership is what a rebuild finds


def test_a_window_that_closed_while_down_is_applied_after_a_start_that_rebuilds_another_segment(
    make_harness: Any,
) -> None:
    first = make_harness(segments=SEGMENTS)
    first.post_order(order("o-1", orderedAt=days_ago(29)))
    first.drain()
    assert first.subscriber(EMAIL)["segments"] == ["recent", "tiktok"]
    # Two days pass while the gateway is down: the order is now 31 days old, its window closed a day ago.
    moved = now_us() - 31 * DAY_US
    with first.db() as conn:
        conn.execute("UPDATE orders SET ordered_at = ?", (format_instant_us(moved),))
        conn.execute("UPDATE timers SET due_at = ? WHERE kind = 'segment'", (moved + 30 * DAY_US + 1,))
    # It starts again with a segment added: that one is built; the due time that passed is still applied.
    second = make_harness(segments={**SEGMENTS, "big": {"attribute": "totalSpent", "gt": 1}})
    assert second.subscriber(EMAIL)["segments"] == ["big", "recent", "tiktok"]
    second.drain()
    assert second.subscriber(EMAIL)["segments"] == ["big", "lapsed", "tiktok"]
    assert segment_events(second)[-2:] == [("segment.exited", "recent"), ("segment.entered", "lapsed")]
