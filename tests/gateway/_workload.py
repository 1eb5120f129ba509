"""A few thousand Push Orders over a few hundred customers (duplicates, cancellations, partial and full
refunds, shuffled so a refund may arrive before its order), the exact figures they must produce, and the
checks that the figures, the ledger and the events came out exactly once."""

import asyncio
import random
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import httpx
import httpx2


@dataclass
class Order:
    order_id: str
    email: str
    total: int
    cancelled: bool = False
    refunds: list[int] = field(default_factory=list)  # cumulative refunded amounts posted, ascending

    @property
    def contribution(self) -> int:
        return 0 if self.cancelled else self.total - min(max(self.refunds, default=0), self.total)

    def events(self) -> Counter[tuple[str, str, int | None]]:
        names = [("ecommerce.order_placed", None)]
        if self.cancelled:
            names.append(("ecommerce.order_cancelled", None))
        names += [("ecommerce.order_refunded", amount) for amount in sorted(set(self.refunds))]
        return Counter((self.order_id, name, amount) for name, amount in names)


@dataclass
class Workload:
    posts: list[dict[str, Any]]
    orders: dict[str, Order]

    def totals(self) -> dict[str, tuple[int, int]]:
        """email -> (ordersCount, totalSpent in cents)."""
        result: dict[str, tuple[int, int]] = {}
        for order in self.orders.values():
            count, cents = result.get(order.email, (0, 0))
            result[order.email] = (count + (0 if order.cancelled else 1), cents + order.contribution)
        return result

    def events(self, email: str) -> Counter[tuple[str, str, int | None]]:
        expected: Counter[tuple[str, str, int | None]] = Counter()
        for order in self.orders.values():
            if order.email == email:
                expected += order.events()
        return expected


def build(posts: int, customers: int, seed: int, prefix: str = "order") -> Workload:
    """At least `posts` order events, shuffled; every order has its `placed` post, some a duplicate of it, some a
    cancellation, some one or two refunds (a partial, then a larger or full one)."""
    rng = random.Random(seed)
    bodies: list[dict[str, Any]] = []
    orders: dict[str, Order] = {}
    while len(bodies) < posts:
        number = len(orders) + 1
        customer = rng.randrange(customers)
        email = f"customer-{customer}@example.com"
        # Some clients send mixed case and padding; the subscriber key is the normalised address.
        given_email = f"  Customer-{customer}@Example.COM " if number % 17 == 0 else email
        order = Order(f"{prefix}-{number}", email, rng.randrange(100, 50_000))
        orders[order.order_id] = order
        quantity = rng.randrange(1, 4)
        placed = {
            "orderId": order.order_id,
            "orderNumber": f"#{number}",
            "totalCents": order.total,
            "currency": "usd" if number % 13 == 0 else "USD",
            "orderedAt": f"2026-06-{1 + number % 28:02d}T12:00:00Z",
            "customer": {"email": given_email, "firstName": f"First{customer}"},
            "items": [{"productId": f"SKU-{number % 40}", "title": "Protein Powder", "quantity": quantity}],
        }
        bodies.append(placed)
        roll = rng.random()
        if roll < 0.10:
            bodies.append(dict(placed))
        elif roll < 0.15:
            order.cancelled = True
            bodies.append(_follow_up(order, "cancelled"))
        elif roll < 0.27:
            order.refunds.append(rng.randrange(1, order.total))
            bodies.append(_follow_up(order, "refunded", order.refunds[-1]))
            if roll < 0.20:
                order.refunds.append(order.total if roll < 0.18 else rng.randrange(order.refunds[0], order.total))
                bodies.append(_follow_up(order, "refunded", order.refunds[-1]))
            if roll < 0.16:
                bodies.append(_follow_up(order, "refunded", order.refunds[-1]))  # a client retry
    rng.shuffle(bodies)
    return Workload(bodies, orders)


def _follow_up(order: Order, status: str, refund: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "orderId": order.order_id,
        "status": status,
        "totalCents": order.total,
        "currency": "USD",
        "customer": {"email": order.email},
    }
    if refund is not None:
        body["refundAmountCents"] = refund
    return body


@dataclass
class Posted:
    """What the client saw: the jobId of every 202, and the posts that got no answer (the server died)."""

    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)  # jobId -> body
    unanswered: list[dict[str, Any]] = field(default_factory=list)


async def post_all(
    client: httpx2.AsyncClient, bodies: list[dict[str, Any]], posted: Posted, concurrency: int = 8
) -> None:
    """Post every body with `concurrency` requests in flight; anything but a 202 or a dead connection fails."""
    pending = iter(bodies)

    async def lane() -> None:
        for body in pending:
            try:
                response = await client.post("/api/v1/orders", json=body)
            except httpx2.TransportError:
                posted.unanswered.append(body)
                continue
            assert response.status_code == 202, response.text
            answer = response.json()
            assert (answer["success"], answer["queued"], answer["orderId"]) == (True, True, body["orderId"])
            posted.accepted[answer["jobId"]] = body

    await asyncio.gather(*(lane() for _ in range(concurrency)))


def post_concurrently(client: httpx2.AsyncClient, bodies: list[dict[str, Any]]) -> Posted:
    posted = Posted()

    async def run() -> None:
        async with client:
            await post_all(client, bodies, posted)

    asyncio.run(run())
    return posted


def cents_of(major: float) -> int:
    value = Decimal(str(major)) * 100
    assert value == value.to_integral_value(), major
    return int(value)


def check_exact(workload: Workload, client: httpx.Client, conn: sqlite3.Connection) -> None:
    """Per customer: revenue attributes (API and SQLite) and the exact events; per order: the ledger row;
    nothing counted or fired twice."""
    totals = workload.totals()
    stored = {
        email: (count, cents)
        for email, count, cents in conn.execute("SELECT email, orders_count, total_spent_cents FROM subscribers")
    }
    assert stored == totals
    for email, (count, cents) in totals.items():
        attributes = client.get(f"/api/v1/subscribers/{email}").json()["attributes"]
        aov = int((Decimal(cents) / count).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)) if count else 0
        assert attributes["ordersCount"] == count, email
        assert cents_of(attributes["totalSpent"]) == cents_of(attributes["ltv"]) == cents, email
        assert cents_of(attributes["aov"]) == aov, email
        events = client.get(f"/api/v1/subscribers/{email}/events").json()["events"]
        seen = Counter(
            (e["properties"]["orderId"], e["name"], e["properties"].get("refundAmountCents")) for e in events
        )
        assert seen == workload.events(email), email
    ledger = {
        order_id: (email, total, bool(cancelled), refunded)
        for order_id, email, total, cancelled, refunded in conn.execute(
            "SELECT order_id, email, total_cents, cancelled, refunded_cents FROM orders WHERE source = 'api'"
        )
    }
    assert ledger == {
        o.order_id: (o.email, o.total, o.cancelled, max(o.refunds, default=0)) for o in workload.orders.values()
    }
    doubled = conn.execute(
        "SELECT subscriber_id, name, order_id, properties ->> 'refundAmountCents', count(*) FROM events"
        " GROUP BY 1, 2, 3, 4 HAVING count(*) > 1"
    ).fetchall()
    assert doubled == []
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == sum(
        sum(o.events().values()) for o in workload.orders.values()
    )
