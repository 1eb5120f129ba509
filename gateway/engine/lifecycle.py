"""The lifecycle engine: replenishment reminders, back in stock, checkout abandonment and the stops a purchase
causes (docs/lifecycle.md), wired into the order engine as a hook, two job kinds, two timer kinds and the
native catalog and checkout commands.

Historical data never emails anyone: an order placed longer ago than `lifecycle.historical_after` when it is
processed, and everything `backfill` queued, is recorded as usual with `historical: true` on its events, and
starts and stops nothing.
"""

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from adapters import Command, TranslationError
from gateway.config import LifecycleConfig
from gateway.engine import automations as effects
from gateway.engine import back_in_stock, catalog, checkouts, replenishment
from normalizer import CanonicalOrder, Customer
from normalizer.catalog import Product
from normalizer.checkout import BackInStockRequest, Checkout, NativeCheckout
from normalizer.order_event import OrderEvent
from normalizer.timefmt import format_instant_us, parse_instant, to_micros
from store import automation_counts, automations
from store.automations import BACK_IN_STOCK, CHECKOUT
from store.ledger import LedgerOrder

if TYPE_CHECKING:  # the order engine's registry names the commands below: no import cycle at run time
    from gateway.engine.orders import Applied, Engine

BACKFILL_JOB_PREFIX = "commerce-backfill-"
_SECOND_US = 1_000_000
_LEDGER_INSTANT_LENGTH = len("2026-01-01T00:00:00.000Z")
_SECOND_LENGTH = len("2026-01-01T00:00:00")


class Lifecycle:
    def __init__(self, engine: "Engine", settings: LifecycleConfig) -> None:
        self.engine = engine
        self.historical_after_us = int(settings.historical_after * _SECOND_US)
        self.abandon_after_us = int(settings.checkout_abandoned_after * _SECOND_US)
        self._cut = (0, "")  # the historical threshold's second, and as text
        self.rules = catalog.Rules(
            {product_id: rule.model_dump() for product_id, rule in settings.replenishment.items()}
        )

    @classmethod
    def register(cls, engine: "Engine", settings: LifecycleConfig) -> "Lifecycle":
        lifecycle = cls(engine, settings)
        engine.lifecycle = lifecycle
        engine.add_hook(lifecycle.on_order, lifecycle.wants)
        engine.timers.register(effects.TIMER_KIND, effects.on_timer)
        engine.timers.register_rows(effects.TIMER_KIND, effects.DUE_ROWS)
        engine.timers.register(catalog.TIMER_KIND, catalog.on_restock)
        engine.jobs["back_in_stock"] = lifecycle.back_in_stock_job
        engine.jobs["checkout"] = lifecycle.checkout_job
        return lifecycle

    @contextmanager
    def chunk(self, conn: sqlite3.Connection) -> Iterator[None]:
        """Around one transaction of the worker's jobs: the rules checked once (`Rules.held`), and the
        automations it started folded into the active counts at its end (`store.automation_counts.fold`)."""
        with self.rules.held(conn):
            yield
        automation_counts.fold(conn)

    def is_historical(self, event: OrderEvent, after: LedgerOrder, now: int) -> bool:
        if event.job_id is not None and event.job_id.startswith(BACKFILL_JOB_PREFIX):
            return True
        threshold = now - self.historical_after_us
        ordered_at = after.ordered_at
        if len(ordered_at) == _LEDGER_INSTANT_LENGTH and ordered_at[-1] == "Z":
            # The ledger's own shape (`format_instant_us`, to the millisecond): its second compared as text with
            # the threshold's (formatted once a second), then its millisecond as a number.
            second, micros = divmod(threshold, _SECOND_US)
            if second != self._cut[0]:
                self._cut = (second, format_instant_us(second * _SECOND_US)[:_SECOND_LENGTH])
            cut, head = self._cut[1], ordered_at[:_SECOND_LENGTH]
            if head != cut:
                return head < cut
            return int(ordered_at[_SECOND_LENGTH + 1 : _SECOND_LENGTH + 4]) * 1000 < micros
        return to_micros(parse_instant(ordered_at)) < threshold

    def wants(
        self,
        conn: sqlite3.Connection,
        event: OrderEvent,
        subscriber_id: int | None,
        historical: bool,
        waits: int | None,
    ) -> bool:
        """Whether `on_order` may have work on a live order of a subscriber: some replenishment rule exists, or it
        is a purchase that may end waits or checkouts (the subscriber has some open, or they were not read, or
        it names the checkout it completed). Most orders have none, and build no `Applied` for it."""
        if historical or subscriber_id is None:
            return False
        self.rules.current(conn)
        if self.rules.by_product:
            return True
        order = event.order
        return order.status == "placed" and (
            waits != 0 or (isinstance(order, CanonicalOrder) and order.checkoutId is not None)
        )

    def on_order(self, conn: sqlite3.Connection, applied: "Applied", now: int) -> None:
        """The order's reminders brought up to date, and for a purchase, the waits and checkouts it ends: only
        the writes its changes need, and reads only where the subscriber has automations of the kind. Called
        only for orders `wants`, which brought the rules up to date in this transaction."""
        if applied.historical or applied.subscriber_id is None:
            return
        after = applied.after
        keys = replenishment.keys(after, self.rules.by_product)
        if keys:
            replenishment.apply(conn, applied.subscriber_id, after, keys, now)
        if applied.order.status == "placed" and replenishment.ended(after) is None:
            self._close_waits(conn, applied, applied.subscriber_id, now)

    def _close_waits(self, conn: sqlite3.Connection, applied: "Applied", subscriber_id: int, now: int) -> None:
        """A purchase ends the waits for what it contains and the checkouts it completed. The subscriber's are
        read only when they have some (`Applied.open_waits`, None when it was not read with the subscriber)."""
        after, order = applied.after, applied.order
        checkout_id = order.checkoutId if isinstance(order, CanonicalOrder) else None
        if applied.open_waits != 0:
            bought = {str(item["productId"]) for item in after.items} | {
                str(item["variantId"]) for item in after.items if item.get("variantId")
            }
            for open_one in automations.active(conn, subscriber_id, BACK_IN_STOCK, CHECKOUT):
                if open_one.flow == CHECKOUT:
                    # Without a checkout named, every open checkout of the subscriber closes.
                    if checkout_id is None or open_one.key == checkout_id:
                        effects.stop(conn, open_one, "superseded", after.order_id, now)
                elif open_one.key in bought or open_one.data.get("productId") in bought:
                    effects.stop(conn, open_one, "superseded", after.order_id, now)
        if checkout_id is not None:  # the checkout it completed may be another subscriber's (an email changed)
            checkouts.close(conn, checkout_id, after.order_id, now)

    def subscriber(self, conn: sqlite3.Connection, customer: Customer, now: int, warnings: list[str]) -> int:
        return self.engine.upsert_subscriber(conn, customer, now, warnings)

    def back_in_stock_job(self, conn: sqlite3.Connection, body: bytes, job_id: str, now: int) -> list[str]:
        wanted = BackInStockRequest.model_validate_json(body)
        warnings: list[str] = []
        subscriber_id = self.subscriber(conn, wanted.customer, now, warnings)
        back_in_stock.request(conn, subscriber_id, wanted, job_id, now)
        return warnings

    def checkout_job(self, conn: sqlite3.Connection, body: bytes, job_id: str, now: int) -> list[str]:
        return self.checkout(conn, "api", Checkout.model_validate_json(body), now)

    def checkout(self, conn: sqlite3.Connection, source: str, checkout: Checkout, now: int) -> list[str]:
        warnings: list[str] = []
        subscriber_id = self.subscriber(conn, checkout.customer, now, warnings)
        return warnings + checkouts.apply(conn, subscriber_id, checkout, source, self.abandon_after_us, now)

    def upsert_products(
        self, conn: sqlite3.Connection, items: list[Product], source: str, now: int, replace_variants: bool = False
    ) -> int:
        """Store catalog updates; returns how many back-in-stock events their restocks will fire."""
        self.rules.written()
        return catalog.upsert(conn, items, source, now, replace_variants)


def _lifecycle(engine: "Engine") -> Lifecycle:
    if engine.lifecycle is None:
        raise TranslationError("the lifecycle engine is not running")
    return engine.lifecycle


def catalog_command(engine: "Engine", conn: sqlite3.Connection, source: str, command: Command, now: int) -> list[str]:
    """A native catalog update (`Command("catalog_update", {"products": [...], "replaceVariants": bool})`)."""
    items: list[Product] = list(command.args["products"])
    _lifecycle(engine).upsert_products(conn, items, source, now, bool(command.args.get("replaceVariants")))
    return []


def checkout_command(engine: "Engine", conn: sqlite3.Connection, source: str, command: Command, now: int) -> list[str]:
    """A native checkout (`Command("checkout", {"checkout": NativeCheckout | None, "warning": str})`): one
    without an email is acknowledged with a warning."""
    checkout: NativeCheckout | None = command.args.get("checkout")
    if checkout is None:
        return [str(command.args.get("warning") or "checkout without an email: no subscriber, nothing started")]
    return _lifecycle(engine).checkout(conn, source, checkout, now)
