"""Catalog updates (the API's and native webhooks') and what they set off: a key (product or variant) that goes
from out of stock to in stock tells its back-in-stock waiters, once each.

The waiters are told by the worker, not in the update's transaction: the update sets a `restock` timer that
names the key and the newest wait it covers, and each firing tells at most `RESTOCK_BATCH` of them and sets
itself again while some are left. A product with thousands of waiters thus never holds the write lock for
long, and a waiter who registers after the restock is told at once by its own request (the key is in stock).
"""

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from gateway.engine import automations as effects
from normalizer.catalog import Product, in_stock_keys
from store import automations, catalog, timers
from store import json_columns as json

TIMER_KIND = "restock"
RESTOCK_BATCH = 200


class Rules:
    """Replenishment rules by productId for the worker's orders: config's first, then the catalog's, all of which
    are read at once and kept in memory while their generation (`store.catalog.rules_generation`) stays the same.
    Checked at every order, one single-row read, rather than told by the write path: the catalog is written by
    other connections and processes too (the API, a standalone worker), and a write can be rolled back after
    the rules were read. Stock updates, the frequent catalog writes, leave the generation alone.

    Within one transaction of the worker's jobs (`held`), the write lock is the worker's: no other connection
    can change the rules, so they are checked once at its start, and again at every order after a catalog write
    of this process (which a savepoint may roll back)."""

    def __init__(self, configured: dict[str, dict[str, Any]]) -> None:
        self.configured = configured
        self.by_product: dict[str, dict[str, Any]] = dict(configured)  # the lookup: config's over the catalog's
        self._generation: int | None = None
        self._held = False

    def current(self, conn: sqlite3.Connection) -> None:
        """Read the rules again if they changed since (call before `get`, in the same transaction)."""
        if self._held:
            return
        generation = catalog.rules_generation(conn)
        if generation != self._generation:
            self.by_product = {**catalog.rules(conn), **self.configured}
            self._generation = generation

    @contextmanager
    def held(self, conn: sqlite3.Connection) -> Iterator[None]:
        """Around a transaction that holds the write lock: the rules are checked once, here."""
        self._held = False
        self.current(conn)
        self._held = True
        try:
            yield
        finally:
            self._held = False

    def written(self) -> None:
        """This process is writing the catalog: check the rules at every order again until the transaction ends."""
        self._held = False


def merge(stored: dict[str, Any] | None, given: dict[str, Any], replace_variants: bool) -> dict[str, Any]:
    """The product after an update: given fields replace stored ones (null clears), the rest is kept. Variants
    merge by variantId the same way, unless the sender states the whole list (`replace_variants`)."""
    product = dict(stored or {})
    for key, value in given.items():
        if key != "variants":
            product[key] = value
    if "variants" in given:
        if given["variants"] is None or replace_variants or not product.get("variants"):
            product["variants"] = given["variants"]
        else:
            variants = {str(v["variantId"]): dict(v) for v in product["variants"]}
            for variant in given["variants"]:
                variants.setdefault(str(variant["variantId"]), {}).update(variant)
            product["variants"] = list(variants.values())
    return {key: value for key, value in product.items() if value is not None}


def upsert(
    conn: sqlite3.Connection, products: list[Product], source: str, now: int, replace_variants: bool = False
) -> int:
    """Store `products`; returns how many back-in-stock events their restocks will fire."""
    triggered = 0
    for product in products:
        stored = catalog.get(conn, product.productId)
        merged = merge(stored, product.given(), replace_variants)
        catalog.put(conn, merged, source, now)
        before = in_stock_keys(stored) if stored else set()
        for key in sorted(in_stock_keys(merged) - before):
            count, newest = automations.count_waiting(conn, key)
            if count:
                timers.schedule(conn, TIMER_KIND, json.dumps([product.productId, key, newest]), now)
                triggered += count
    return triggered


def properties(product: dict[str, Any] | None, wait: dict[str, Any]) -> dict[str, Any]:
    """`ecommerce.back_in_stock`'s properties: the catalog's latest names, else those the request gave."""
    product = product or {}
    variant_id = wait.get("variantId")
    variant: dict[str, Any] = next((v for v in product.get("variants") or [] if str(v["variantId"]) == variant_id), {})
    return {
        "productId": wait["productId"],
        "variantId": variant_id,
        "productTitle": product.get("title") or wait.get("productTitle"),
        "variantTitle": variant.get("title") or wait.get("variantTitle"),
        "url": product.get("url"),
        "imageUrl": product.get("imageUrl"),
    }


def on_restock(conn: sqlite3.Connection, key: str, due_at: int, now: int) -> None:
    """Tell up to RESTOCK_BATCH waiters of one restock; set the timer again while some are left."""
    product_id, wait_key, up_to = json.loads(key)
    product = catalog.get(conn, product_id)
    batch = automations.waiting(conn, wait_key, up_to, RESTOCK_BATCH)
    for wait in batch:
        effects.fire(conn, wait.id, now, properties(product, wait.data))
    if len(batch) == RESTOCK_BATCH:
        timers.schedule(conn, TIMER_KIND, key, now)
