"""The core engine: one canonical order in, all of its effects applied in the caller's transaction.

Ledger merge, subscriber upsert, events, revenue attributes recomputed from the ledger (docs/api.md, Engine
semantics). Lifecycle automations (`gateway.engine.lifecycle`) and segments plug in as `hooks`, called with
every applied order, and as timer handlers and job kinds of their own.
"""

import sqlite3
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any

from adapters import Command, TranslationError
from gateway.engine.registry import COMMANDS
from gateway.engine.segments import Segments
from gateway.engine.timers import Timers
from normalizer import RESERVED_ATTRIBUTES, CanonicalOrder, Customer, PushOrder
from normalizer.money import convert, to_major
from normalizer.order_event import OrderEvent
from normalizer.timefmt import format_instant, parse_instant
from store import events, ledger, subscribers
from store.ledger import LedgerOrder
from store.segments import SEGMENT_TIMER

if TYPE_CHECKING:  # the lifecycle registers itself on an engine: no import cycle at run time
    from gateway.engine.lifecycle import Lifecycle


@dataclass(slots=True)
class Applied:
    """What one order event did; handed to hooks (automations, segments) in the same transaction."""

    event: OrderEvent
    before: LedgerOrder | None
    after: LedgerOrder
    subscriber_id: int | None
    event_id: int | None
    warnings: list[str] = field(default_factory=list)
    historical: bool = False  # imported history: starts and stops no automation
    open_waits: int | None = None  # the subscriber's active back-in-stock waits and checkouts; None: not read
    created: bool = False  # the subscriber was new: no segment has judged them yet

    @property
    def order(self) -> PushOrder:
        return self.event.order


Hook = Callable[[sqlite3.Connection, Applied, int], None]
# Whether a hook has anything to do with an order event, asked before `Applied` is built (an order no hook wants
# builds none): (conn, event, subscriber id, historical, the subscriber's open waits as read with it).
Wants = Callable[[sqlite3.Connection, OrderEvent, int | None, bool, int | None], bool]
# A job kind other than orders and webhooks (a back-in-stock request, a checkout): (conn, body, job id, now)
# -> warnings.
JobHandler = Callable[[sqlite3.Connection, bytes, str, int], list[str]]


class Engine:
    def __init__(self, currency: str, fx_rates: dict[str, Decimal], segments: Mapping[str, Any] | None = None) -> None:
        """`segments`: definitions from config (a bad one raises `DefinitionError`)."""
        self.currency = currency
        self.fx_rates = fx_rates
        self.hooks: list[tuple[Hook, Wants | None]] = []  # `add_hook`
        self.timers = Timers()  # handlers of the durable timers the worker fires, by kind
        self.jobs: dict[str, JobHandler] = {}
        self.lifecycle: Lifecycle | None = None  # set by `Lifecycle.register`
        self.segments = Segments(segments or {}, self.revenue_attributes)
        if self.segments:
            self.add_hook(self.segments.on_order)
            self.timers.register(SEGMENT_TIMER, self.segments.on_timer)

    def add_hook(self, hook: Hook, wants: Wants | None = None) -> None:
        """Call `hook` with every applied order event, or only with those `wants` says it has work on."""
        self.hooks.append((hook, wants))

    def recording(self) -> AbstractContextManager[None]:
        """Around what the worker applies: every event recorded meanwhile reaches the segments counting it."""
        if not self.segments:
            return events.observed(None)
        return events.observed(self.segments.on_event, self.segments.observed)

    def chunk(self, conn: sqlite3.Connection) -> AbstractContextManager[None]:
        """Around one transaction of the worker's jobs, which holds the write lock from its start: what the hooks
        may read once for its length (the lifecycle's replenishment rules) and do once at its end."""
        return self.lifecycle.chunk(conn) if self.lifecycle is not None else nullcontext()

    def apply(self, conn: sqlite3.Connection, event: OrderEvent, now: int) -> list[str]:
        """Apply one order event; returns the warnings it produced."""
        order = event.order
        warnings = list(order.warnings) if isinstance(order, CanonicalOrder) else []
        before, after = ledger.merge(conn, event, now)
        if after.currency != self.currency and after.currency not in self.fx_rates:
            warnings.append(
                f"order {order.orderId} is in {after.currency}, which has no fx_rates entry for {self.currency}:"
                " kept in the ledger, left out of revenue totals"
            )
        subscriber_id = open_waits = None
        created = False
        totalled = None  # the email whose totals the subscriber write already included
        customer: Customer | None = order.customer  # None only from adapters (CanonicalOrder)
        if customer is not None:
            attributes = self._custom_attributes(customer, warnings)
            stored = subscribers.load(conn, customer.email, self.currency)
            # An older event than the ledger's may name another customer than the order's: that subscriber is
            # upserted with its own ledger totals, and this order's customerTotals do not apply to it.
            current = customer.email == after.email
            totals = self.totals(stored, order if current else None, warnings, stored.baseline)
            subscriber_id = subscribers.save(conn, stored, customer, attributes, totals, now)
            totalled, open_waits, created = customer.email, stored.open_waits, stored.id is None
        elif after.email:
            subscriber_id = subscribers.find_id(conn, after.email)
        event_id = None
        historical = self.lifecycle is not None and self.lifecycle.is_historical(event, after, now)
        if subscriber_id is not None:
            properties = self._event_properties(event, after, before is None)
            if historical:
                properties["historical"] = True
            event_id = events.record(
                conn,
                subscriber_id,
                f"ecommerce.order_{order.status}",
                properties,
                now,
                event.dedup_key,
                event.source,
                order.orderId,
                event.job_id,
            )
        else:
            warnings.append(f"order {order.orderId} has no customer email: recorded in the ledger, no subscriber")
        if before is not None or after.email != totalled:  # another customer's totals may have changed too
            for email in {e for e in (after.email, before.email if before else None) if e and e != totalled}:
                self.recompute(conn, email, now, order if email == after.email else None, warnings)
        applied = None
        for hook, wants in self.hooks:
            if wants is None or wants(conn, event, subscriber_id, historical, open_waits):
                if applied is None:
                    applied = Applied(
                        event, before, after, subscriber_id, event_id, warnings, historical, open_waits, created
                    )
                hook(conn, applied, now)
        return warnings

    def run_command(self, conn: sqlite3.Connection, source: str, command: Command, now: int) -> list[str]:
        handler = COMMANDS.get(command.name)
        if handler is None:
            raise TranslationError(f"no handler for command {command.name!r}")
        return handler(self, conn, source, command, now)

    def upsert_subscriber(self, conn: sqlite3.Connection, customer: Customer, now: int, warnings: list[str]) -> int:
        """A customer met outside an order (a back-in-stock request, a checkout), upserted as an order's would be,
        with their totals from the ledger; returns the subscriber id."""
        attributes = self._custom_attributes(customer, warnings)
        stored = subscribers.load(conn, customer.email, self.currency)
        totals = self.totals(stored, None, warnings, stored.baseline)
        subscriber_id = subscribers.save(conn, stored, customer, attributes, totals, now)
        if self.segments:
            self.segments.on_customer(conn, subscriber_id, customer, stored.id is None, now)
        return subscriber_id

    def _custom_attributes(self, customer: Customer, warnings: list[str]) -> dict[str, Any]:
        reserved = RESERVED_ATTRIBUTES.intersection(customer.attributes)
        if not reserved:
            return customer.attributes
        warnings.append(
            f"customer.attributes {', '.join(sorted(reserved))} ignored: revenue attributes are computed from orders"
        )
        return {k: v for k, v in customer.attributes.items() if k not in reserved}

    def _event_properties(self, event: OrderEvent, after: LedgerOrder, first: bool) -> dict[str, Any]:
        """The event's own facts; what it left out (a bare refund has no items) comes from the ledger. `first`:
        the order's first event, whose ledger row holds its own facts."""
        order = event.order
        ordered_at = after.ordered_at if first or not order.orderedAt else format_instant(order.orderedAt)
        reserved: dict[str, Any] = {
            "provider": event.provider,
            "source": event.source,
            "orderId": order.orderId,
            "orderNumber": order.orderNumber if "orderNumber" in order.__pydantic_fields_set__ else after.order_number,
            "status": order.status,
            "totalCents": order.totalCents,
            "currency": order.currency,
            "orderedAt": ordered_at,
            "lineItems": event.items if event.items is not None else after.items,
        }
        if order.status == "refunded":
            reserved["refundAmountCents"] = order.refunded_cents
        return {**order.properties, **reserved}

    def recompute(
        self, conn: sqlite3.Connection, email: str, now: int, order: PushOrder | None, warnings: list[str]
    ) -> None:
        """A subscriber's revenue attributes from the ledger again (another order's event or a privacy command
        changed what counts); `order.customerTotals`, when given, becomes the new baseline."""
        stored = subscribers.load(conn, email, self.currency)
        if stored.id is None:
            return
        subscribers.set_totals(conn, stored.id, self.totals(stored, order, warnings, stored.baseline), now)

    def totals(
        self,
        spend: ledger.Spend,
        order: PushOrder | None,
        warnings: list[str],
        base: dict[str, int] | None,
    ) -> subscribers.Totals:
        """The customer's totals, the one place they are computed: their ledger `spend` counted in the base
        currency (each foreign order converted on its own, those without a rate left out), on top of the
        platform's baseline when there is one (totals = baseline + (ledger now - ledger at baseline)). Returns
        the totals with the baseline to keep: `base`, unless `order` brings customerTotals, which become the new
        one."""
        count, cents = spend.orders, spend.cents
        for contribution, currency in spend.foreign:
            converted = convert(contribution, currency, self.currency, self.fx_rates)
            if converted is not None:
                count += 1
                cents += converted
        platform = order.customerTotals if order is not None else None
        if platform is not None and order is not None:
            spent = convert(platform.totalSpentCents, order.currency, self.currency, self.fx_rates)
            if spent is None:
                warnings.append(f"customerTotals in {order.currency} ignored: no fx_rates entry for it")
            else:
                base = {
                    "ordersCount": platform.ordersCount,
                    "totalSpentCents": spent,
                    "ledgerOrders": count,
                    "ledgerCents": cents,
                }
        if base is not None:
            count = max(0, base["ordersCount"] + count - base["ledgerOrders"])
            cents = max(0, base["totalSpentCents"] + cents - base["ledgerCents"])
        return count, cents, base

    def revenue_attributes(self, orders_count: int, total_spent_cents: int) -> dict[str, Any]:
        total = to_major(total_spent_cents, self.currency)
        aov = 0.0
        if orders_count:
            per_order = (Decimal(total_spent_cents) / orders_count).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
            aov = to_major(int(per_order), self.currency)
        return {"ltv": total, "totalSpent": total, "ordersCount": orders_count, "aov": aov}


def stored_as_canonical(row: LedgerOrder) -> CanonicalOrder:
    """A ledger row as the canonical order an adapter may build on (e.g. a refund joined to its order)."""
    customer = None
    if row.email:
        customer = Customer(email=row.email, **row.customer)
    return CanonicalOrder(
        orderId=row.order_id,
        orderNumber=row.order_number,
        status=row.status,  # type: ignore[arg-type]
        totalCents=row.total_cents,
        currency=row.currency,
        orderedAt=parse_instant(row.ordered_at),
        customer=customer,
        items=row.items,  # type: ignore[arg-type]
        refundAmountCents=min(row.refunded_cents, row.total_cents) or None,
        refunds=row.refunds,
    )


class LedgerLookup:
    """The `OrderLookup` adapters get: reads through the worker's connection, so it sees the open transaction."""

    def __init__(self, conn: sqlite3.Connection, source: str) -> None:
        self.conn = conn
        self.source = source

    def order(self, order_id: str) -> CanonicalOrder | None:
        row = ledger.get(self.conn, self.source, order_id)
        return stored_as_canonical(row) if row else None
