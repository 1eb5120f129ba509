"""The core engine: one canonical order in, all of its effects applied in the caller's transaction.

Ledger merge, subscriber upsert, events, revenue attributes recomputed from the ledger (docs/api.md, Engine
semantics). Lifecycle automations and segments plug in later as `hooks`, called with every applied order.
"""

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from adapters import Command, TranslationError
from gateway.engine import compliance
from normalizer import RESERVED_ATTRIBUTES, CanonicalOrder, Customer, PushOrder
from normalizer.money import convert, to_major
from normalizer.timefmt import format_instant, parse_instant
from store import events, ledger, subscribers
from store.ledger import LedgerOrder


@dataclass(slots=True)
class Applied:
    """What one order event did; handed to hooks (automations, segments) in the same transaction."""

    source: str
    order: PushOrder
    before: LedgerOrder | None
    after: LedgerOrder
    subscriber_id: int | None
    event_id: int | None
    warnings: list[str] = field(default_factory=list)


Hook = Callable[[sqlite3.Connection, Applied, int], None]
CommandHandler = Callable[[sqlite3.Connection, str, Command, int], list[str]]


def event_dedup_key(source: str, order: PushOrder) -> str:
    key = f"{source}\x1f{order.orderId}\x1f{order.status}"
    return f"{key}\x1f{order.refunded_cents}" if order.status == "refunded" else key


class Engine:
    def __init__(self, currency: str, fx_rates: dict[str, Decimal]) -> None:
        self.currency = currency
        self.fx_rates = fx_rates
        self.hooks: list[Hook] = []
        self.commands: dict[str, CommandHandler] = {}
        compliance.register(self)

    def apply(
        self,
        conn: sqlite3.Connection,
        source: str,
        provider: str,
        order: PushOrder,
        version: int,
        now: int,
        job_id: str | None = None,
    ) -> list[str]:
        """Apply one order event; returns the warnings it produced."""
        warnings = list(order.warnings) if isinstance(order, CanonicalOrder) else []
        # Dumped once: the ledger row and the event both store them.
        items = (
            [item.model_dump(exclude_none=True) for item in order.items] if "items" in order.model_fields_set else None
        )
        before, after = ledger.merge(conn, source, provider, order, version, now, items)
        if after.currency != self.currency and after.currency not in self.fx_rates:
            warnings.append(
                f"order {order.orderId} is in {after.currency}, which has no fx_rates entry for {self.currency}:"
                " kept in the ledger, left out of revenue totals"
            )
        subscriber_id = None
        totalled = None  # the email whose totals the subscriber write already included
        customer: Customer | None = order.customer  # None only from adapters (CanonicalOrder)
        if customer is not None:
            attributes = self._custom_attributes(customer, warnings)
            email = customer.email
            # An older event than the ledger's may name another customer than the order's: that subscriber is
            # upserted with its own ledger totals, and this order's customerTotals do not apply to it.
            current = email == after.email
            subscriber_id = subscribers.upsert_with_totals(
                conn,
                customer,
                attributes,
                now,
                self.currency,
                lambda base, spend: self._totals(spend, order if current else None, warnings, base),
            )
            totalled = email
        elif after.email:
            subscriber_id = subscribers.find_id(conn, after.email)
        event_id = None
        if subscriber_id is not None:
            event_id = events.record(
                conn,
                subscriber_id,
                f"ecommerce.order_{order.status}",
                self._event_properties(source, provider, order, after, items, before is None),
                now,
                event_dedup_key(source, order),
                source,
                order.orderId,
                job_id,
            )
        else:
            warnings.append(f"order {order.orderId} has no customer email: recorded in the ledger, no subscriber")
        if before is not None or after.email != totalled:  # another customer's totals may have changed too
            for email in {e for e in (after.email, before.email if before else None) if e and e != totalled}:
                self.recompute(conn, email, now, order if email == after.email else None, warnings)
        if self.hooks:
            applied = Applied(source, order, before, after, subscriber_id, event_id, warnings)
            for hook in self.hooks:
                hook(conn, applied, now)
        return warnings

    def run_command(self, conn: sqlite3.Connection, source: str, command: Command, now: int) -> list[str]:
        handler = self.commands.get(command.name)
        if handler is None:
            raise TranslationError(f"no handler for command {command.name!r}")
        return handler(conn, source, command, now)

    def _custom_attributes(self, customer: Customer, warnings: list[str]) -> dict[str, Any]:
        reserved = RESERVED_ATTRIBUTES.intersection(customer.attributes)
        if not reserved:
            return customer.attributes
        warnings.append(
            f"customer.attributes {', '.join(sorted(reserved))} ignored: revenue attributes are computed from orders"
        )
        return {k: v for k, v in customer.attributes.items() if k not in reserved}

    def _event_properties(
        self,
        source: str,
        provider: str,
        order: PushOrder,
        after: LedgerOrder,
        items: list[dict[str, Any]] | None,
        first: bool,
    ) -> dict[str, Any]:
        """The event's own facts; what it left out (a bare refund has no items) comes from the ledger.
        `items` is the order's items dumped, None when the order gives none; `first`: the order's first event,
        whose ledger row holds its own facts."""
        given = order.model_fields_set
        ordered_at = after.ordered_at if first or not order.orderedAt else format_instant(order.orderedAt)
        reserved: dict[str, Any] = {
            "provider": provider,
            "source": source,
            "orderId": order.orderId,
            "orderNumber": order.orderNumber if "orderNumber" in given else after.order_number,
            "status": order.status,
            "totalCents": order.totalCents,
            "currency": order.currency,
            "orderedAt": ordered_at,
            "lineItems": items if items is not None else after.items,
        }
        if order.status == "refunded":
            reserved["refundAmountCents"] = order.refunded_cents
        return {**order.properties, **reserved}

    def _counted(self, spend: ledger.Spend) -> tuple[int, int]:
        """(orders counted, spend in base minor units): each foreign order converted on its own, those without a
        rate left out."""
        count, cents = spend.orders, spend.cents
        for contribution, currency in spend.foreign:
            converted = convert(contribution, currency, self.currency, self.fx_rates)
            if converted is not None:
                count += 1
                cents += converted
        return count, cents

    def recompute(
        self, conn: sqlite3.Connection, email: str, now: int, order: PushOrder | None, warnings: list[str]
    ) -> None:
        """Revenue attributes from the ledger; `order.customerTotals`, when given, becomes the new baseline:
        totals = baseline + (ledger now - ledger at baseline)."""
        found = subscribers.find(conn, email)
        if found is None:
            return
        subscriber_id, stored = found
        totals, base = self._totals(ledger.spend(conn, email, self.currency), order, warnings, stored)
        if base is not stored and base is not None:
            subscribers.set_baseline(conn, subscriber_id, base)
        subscribers.set_totals(conn, subscriber_id, totals, now)

    def _totals(
        self,
        spend: ledger.Spend,
        order: PushOrder | None,
        warnings: list[str],
        base: dict[str, int] | None,
    ) -> tuple[subscribers.Totals, dict[str, int] | None]:
        """The customer's totals from their ledger `spend`, and the baseline to keep (`base` itself unless
        `order` brings a new one)."""
        count, cents = self._counted(spend)
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
        return subscribers.Totals(count, cents), base

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
