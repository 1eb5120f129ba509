"""Money stays exact: amounts are bounded at 10**15 minor units, and a customer's totals add up exactly however
large they grow, past the 2**53 where a floating-point sum starts to round."""

from tests.conftest import Harness, order

LIMIT = 10**15


def test_two_orders_of_2_62_cents_are_refused_and_the_queue_goes_on(harness: Harness) -> None:
    # Two such orders for one customer once overflowed SQLite's sum() and stalled every job after them.
    for order_id in ("huge-1", "huge-2"):
        response = harness.post_order(order(order_id, totalCents=2**62))
        assert response.status_code == 422
        assert [d["field"] for d in response.json()["error"]["details"]] == ["totalCents"]
    assert harness.post_order(order("small-1")).status_code == 202
    assert harness.drain() == 1
    assert harness.attributes("buyer@example.com")["ordersCount"] == 1


def test_orders_at_the_limit_add_up_exactly(harness: Harness) -> None:
    amounts = [LIMIT] * 9 + [LIMIT - 1]  # 10**16 - 1: odd and past 2**53, so no float can hold it
    for number, cents in enumerate(amounts):
        response = harness.post_order(order(f"big-{number}", totalCents=cents, items=[]))
        assert response.status_code == 202, response.text
    refund = order("big-0", status="refunded", totalCents=LIMIT, refundAmountCents=3, items=[])
    assert harness.post_order(refund).status_code == 202
    assert harness.drain() == len(amounts) + 1
    with harness.db() as conn:
        row = conn.execute(
            "SELECT orders_count, total_spent_cents FROM subscribers WHERE email = 'buyer@example.com'"
        ).fetchone()
    assert row == (10, sum(amounts) - 3)
    assert harness.attributes("buyer@example.com")["ordersCount"] == 10
