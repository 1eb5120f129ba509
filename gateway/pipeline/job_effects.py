"""What one job does: its body turned into engine calls (a canonical post, a platform delivery through its
adapter, a lifecycle request), and how a failure reads in the job's error (never a payload value)."""

import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime

from pydantic import ValidationError

from adapters import Adapter, Delivery, Translation, TranslationError
from gateway.engine import Engine, LedgerLookup
from normalizer import StoredOrder
from normalizer.order_event import OrderEvent
from normalizer.problems import InputProblem, describe, summary
from normalizer.timefmt import to_micros
from store import queue


class Permanent(Exception):
    """Retrying cannot help (unknown source, invalid canonical order): the job goes dead at once."""


def apply_job(
    engine: Engine, adapters: Mapping[str, Adapter], conn: sqlite3.Connection, job: queue.Job, now: int
) -> list[str]:
    """Apply one job's effects through the engine in the caller's transaction; returns its warnings."""
    if job.kind == "order":
        # Its validator called directly: `model_validate_json` is the same call behind a costly Python wrapper
        # (docs/PERFORMANCE.md).
        stored = StoredOrder.__pydantic_validator__.validate_json(job.body)
        version = to_micros(stored.updatedAt) if stored.updatedAt else job.received_at
        return engine.apply(conn, OrderEvent(job.source, "api", stored, version, job.job_id), now)
    handler = engine.jobs.get(job.kind)
    if handler is not None:  # a back-in-stock request, a checkout
        return handler(conn, job.body, job.job_id, now)
    adapter = adapters.get(job.source)
    if adapter is None:
        raise Permanent(f"source {job.source!r} is no longer configured")
    delivery = Delivery(
        source=job.source,
        headers=job.headers,
        body=job.body,
        received_at=datetime.fromtimestamp(job.received_at / 1e6, UTC),
    )
    return apply_delivery(conn, engine, adapter, delivery, job.received_at, job.job_id, now)[1]


def apply_delivery(
    conn: sqlite3.Connection,
    engine: Engine,
    adapter: Adapter,
    delivery: Delivery,
    received_at: int,
    job_id: str | None,
    now: int,
) -> tuple[Translation, list[str]]:
    """A platform delivery translated and applied in the caller's transaction: what its job does, and the one path
    `try-mapping` runs too (on a scratch database), so it shows the same warnings. Returns the translation and
    every warning (the adapter's and the engine's)."""
    translation = adapter.translate(delivery, LedgerLookup(conn, delivery.source))
    warnings = list(translation.warnings)
    for command in translation.commands:
        warnings += engine.run_command(conn, delivery.source, command, now)
    for order in translation.orders:
        version = to_micros(order.updatedAt) if order.updatedAt else received_at
        warnings += engine.apply(conn, OrderEvent(delivery.source, adapter.provider, order, version, job_id), now)
    return translation, once(warnings)


def once(warnings: list[str]) -> list[str]:
    """One delivery can imply several orders that warn alike (no email): each warning once."""
    return list(dict.fromkeys(warnings)) if len(warnings) > 1 else warnings


def describe_failure(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return f"invalid canonical order: {summary(exc)}"
    # Messages written without payload values: our own, and SQLite's (they name constraints and limits, not data).
    if isinstance(exc, TranslationError | Permanent | InputProblem | sqlite3.Error):
        return f"{type(exc).__name__}: {exc}"
    return describe(exc)
