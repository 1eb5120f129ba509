"""Back-in-stock requests: the subscriber is upserted, `ecommerce.back_in_stock_requested` recorded, and a wait
started for the variant (or the product when no variant is named); a key already in stock fires at once, and
a subscriber already waiting for the key starts nothing new."""

import sqlite3

from gateway.engine import automations as effects
from gateway.engine.catalog import properties
from normalizer.catalog import in_stock_keys
from normalizer.checkout import BackInStockRequest
from store import automations, catalog, events
from store.automations import BACK_IN_STOCK

REQUESTED_EVENT = "ecommerce.back_in_stock_requested"


def request(conn: sqlite3.Connection, subscriber_id: int, wanted: BackInStockRequest, job_id: str, now: int) -> None:
    wait = {
        "productId": wanted.productId,
        "variantId": wanted.variantId,
        "productTitle": wanted.productTitle,
        "variantTitle": wanted.variantTitle,
    }
    events.record(conn, subscriber_id, REQUESTED_EVENT, wait, now, f"{REQUESTED_EVENT}\x1f{job_id}")
    key = wanted.variantId or wanted.productId
    if any(a.key == key for a in automations.active(conn, subscriber_id, BACK_IN_STOCK)):
        return
    product = catalog.get(conn, wanted.productId)
    automation_id = effects.start(conn, subscriber_id, BACK_IN_STOCK, key, now, wait)
    if product is not None and key in in_stock_keys(product):
        effects.fire(conn, automation_id, now, properties(product, wait))
