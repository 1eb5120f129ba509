"""`commerce-gateway try-mapping SOURCE payload.json`: what a saved payload becomes through a source's adapter
(intake, then translate), printed as canonical orders or as the errors, with the warnings its job would record.
No signature check, and no database of the gateway's: the delivery goes through the worker's own path
(`apply_delivery`) on an empty in-memory database that is thrown away. The tool a merchant uses while writing a
custom mapping (it works for every source type)."""

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError

from adapters import Adapter, Delivery, NotReady, TranslationError
from gateway.engine import Engine
from gateway.pipeline.job_effects import apply_delivery
from normalizer.problems import problems
from normalizer.timefmt import now_us, utcnow
from store.db import connect
from store.schema import migrate

OK, FAILED, USAGE, NOT_PROCESSED = 0, 1, 2, 3


def _headers(pairs: Sequence[str]) -> dict[str, str]:
    headers = {}
    for pair in pairs:
        name, sep, value = pair.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"header {pair!r} must be written 'Name: value'")
        headers[name.strip().lower()] = value.strip()
    return headers


def run(
    engine: Engine,
    adapters: Mapping[str, Adapter],
    source: str,
    payload: str,
    header_pairs: Sequence[str] = (),
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    adapter = adapters.get(source)
    if adapter is None:
        known = ", ".join(sorted(adapters)) or "none configured"
        print(f"try-mapping: no source named {source!r} (sources: {known})", file=err)
        return USAGE
    try:
        body = sys.stdin.buffer.read() if payload == "-" else Path(payload).read_bytes()
        headers = _headers(header_pairs)
    except (OSError, ValueError) as exc:
        print(f"try-mapping: {exc}", file=err)
        return USAGE
    delivery = Delivery(source=source, headers=headers, body=body, received_at=utcnow())
    intake = adapter.intake(delivery)
    if intake.action != "queue":
        verdict = "ignored" if intake.action == "ignore" else "recorded"
        print(json.dumps({"topic": intake.topic, verdict: True, "reason": intake.reason}, indent=2), file=out)
        print(f"try-mapping: the gateway would acknowledge this delivery as {verdict}, not process it", file=err)
        return NOT_PROCESSED
    conn = connect(":memory:")
    try:
        migrate(conn)
        conn.execute("BEGIN")
        translation, warnings = apply_delivery(conn, engine, adapter, delivery, now_us(), None, now_us())
    except TranslationError as exc:
        print(f"try-mapping: error: {exc}", file=err)
        return FAILED
    except NotReady as exc:
        print(f"try-mapping: needs an earlier delivery of this source: {exc}", file=err)
        return FAILED
    except ValidationError as exc:
        for problem in problems(exc):
            print(f"try-mapping: error: {problem}", file=err)
        return FAILED
    finally:
        conn.close()  # never committed: nothing of it stays
    result = {
        "topic": intake.topic,
        "deliveryKey": intake.dedup_key,
        "orders": [order.model_dump(mode="json", exclude_unset=True) for order in translation.orders],
        "warnings": warnings,
    }
    print(json.dumps(result, indent=2, ensure_ascii=False), file=out)
    return OK
