"""`commerce-gateway backfill`: reconcile a WooCommerce source with the store's REST API.

WooCommerce never retries a failed webhook delivery, so an outage loses orders. Backfill pages through the
orders modified since a date and queues each one as if WooCommerce had delivered it as `order.updated`: the
same intake (delivery key = topic + body hash), the same job table, the same worker, adapter translation and
engine as a webhook. A second run finds every unchanged order already recorded and queues nothing; an order
that did change is applied like any update, and the engine's merge and event dedup make that harmless.
"""

import argparse
import json
import logging
import sqlite3
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

import httpx
from tqdm import tqdm

from adapters import Adapter, Delivery
from adapters.woocommerce import WooApi, WooCommerceAdapter
from gateway.config import Config
from gateway.engine import build_engine
from gateway.pipeline.ingest import webhook_job
from gateway.pipeline.worker import Worker
from store import job_reads, queue
from store.db import connect, transaction
from store.schema import migrate

TOPIC = "order.updated"
PER_PAGE = 100  # the REST API's maximum


class BackfillError(Exception):
    """Backfill cannot run or the store's API failed; the message never contains keys or payloads."""


@dataclass(slots=True)
class Summary:
    pages: int = 0
    fetched: int = 0
    queued: int = 0
    already_seen: int = 0
    job_ids: list[str] = field(default_factory=list)
    outcome: dict[str, int] = field(default_factory=dict)
    warned: dict[str, list[str]] = field(default_factory=dict)  # job id -> its warnings (they name no person)

    def lines(self) -> list[str]:
        done = ", ".join(f"{count} {status}" for status, count in sorted(self.outcome.items())) or "none"
        lines = [
            f"fetched {self.fetched} order(s) in {self.pages} page(s)",
            f"queued {self.queued}, already recorded {self.already_seen}",
            f"jobs: {done}; {len(self.warned)} with warnings" + (":" if self.warned else ""),
        ]
        return lines + [f"  {job_id}: {'; '.join(warnings)}" for job_id, warnings in self.warned.items()]


def parse_since(text: str) -> datetime:
    """A date or an ISO 8601 instant; without an offset it is UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BackfillError(f"--since {text!r} is not a date (YYYY-MM-DD) or an ISO 8601 timestamp") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def fetch_pages(
    api: WooApi, since: datetime, client: httpx.Client, where: str = "api"
) -> Iterator[tuple[int | None, list[Any]]]:
    """(the store's total order count if it says, orders) for every page of orders modified since `since`;
    `where` is the config key of the `api` block, named when the store refuses the key."""
    page, total_pages = 1, 1
    while page <= total_pages:
        params: dict[str, str | int] = {
            "modified_after": since.strftime("%Y-%m-%dT%H:%M:%S"),
            "dates_are_gmt": "true",
            "per_page": PER_PAGE,
            "page": page,
            # Ascending ids keep the pages stable while new orders arrive during the run.
            "orderby": "id",
            "order": "asc",
        }
        try:
            response = client.get(f"{api.url}/wp-json/wc/v3/orders", params=params)
        except httpx.HTTPError as exc:
            raise BackfillError(f"page {page}: the store could not be reached ({type(exc).__name__})") from None
        if response.status_code in (401, 403):
            raise BackfillError(
                f"page {page}: the store refused the API key (HTTP {response.status_code}): check {where}.consumer_key"
                f" and {where}.consumer_secret, and that the key has Read permission"
                " (WooCommerce > Settings > Advanced > REST API)"
            )
        if response.status_code != 200:
            raise BackfillError(f"page {page}: the store answered HTTP {response.status_code}")
        try:
            orders = response.json()
        except ValueError:
            raise BackfillError(f"page {page}: the store's answer is not JSON") from None
        if not isinstance(orders, list):
            raise BackfillError(f"page {page}: the store's answer is not a list of orders")
        total_pages = _header_int(response, "x-wp-totalpages") or page
        yield _header_int(response, "x-wp-total"), orders
        page += 1


def _header_int(response: httpx.Response, name: str) -> int | None:
    value = response.headers.get(name, "")
    return int(value) if value.strip().isdigit() else None


def _enqueue(conn: sqlite3.Connection, adapter: WooCommerceAdapter, source: str, order: Any, summary: Summary) -> None:
    # Canonical JSON, so an unchanged order gives the same bytes, hence the same delivery key, on every run.
    body = json.dumps(order, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    headers = {"x-wc-webhook-topic": TOPIC, "x-gateway-backfill": "true"}
    delivery = Delivery(source=source, headers=headers, body=body, received_at=datetime.now(UTC))
    intake = adapter.intake(delivery)
    job = webhook_job(delivery, intake, prefix="commerce-backfill")
    if queue.insert(conn, job):
        summary.queued += 1
        summary.job_ids.append(job.job_id)
    else:
        summary.already_seen += 1


def _outcome(conn: sqlite3.Connection, summary: Summary) -> None:
    for job_id in summary.job_ids:
        job = job_reads.get(conn, job_id)
        if job is None:
            continue
        summary.outcome[job["status"]] = summary.outcome.get(job["status"], 0) + 1
        if job["warnings"]:
            summary.warned[job_id] = list(job["warnings"])


def run(
    config: Config,
    adapters: Mapping[str, Adapter],
    source: str,
    since: datetime,
    process: bool = True,
    out: TextIO | None = None,
) -> Summary:
    adapter = adapters.get(source)
    if not isinstance(adapter, WooCommerceAdapter):
        raise BackfillError(f"source {source!r} is not a configured woocommerce source")
    api = adapter.options.api
    if api is None:
        raise BackfillError(f"sources.{source}.api is not configured (url, consumer_key, consumer_secret)")
    summary = Summary()
    conn = connect(config.database, config.durability, config.busy_timeout_seconds)
    migrate(conn)
    failure: BackfillError | None = None
    auth = httpx.BasicAuth(api.consumer_key, api.consumer_secret)
    with (
        httpx.Client(auth=auth, timeout=30, follow_redirects=False) as client,
        tqdm(desc=f"backfill {source}", unit="order", file=sys.stderr, disable=None) as bar,
    ):
        try:
            for total, orders in fetch_pages(api, since, client, f"sources.{source}.api"):
                if total is not None:
                    bar.total = total
                with transaction(conn):
                    for order in orders:
                        summary.fetched += 1
                        _enqueue(conn, adapter, source, order, summary)
                summary.pages += 1
                bar.update(len(orders))
        except BackfillError as exc:
            failure = exc  # what was fetched is still processed; a re-run skips it
    if process and summary.job_ids:
        worker = Worker(config, adapters, build_engine(config))
        # A worker is a worker: it also takes whatever else is queued, which is as safe as `serve` doing it.
        while worker.run_once():
            pass
        worker.close()
    _outcome(conn, summary)
    conn.close()
    for line in summary.lines():
        print(line, file=out or sys.stdout)
    if failure is not None:
        raise failure
    return summary


def main(config: Config, adapters: Mapping[str, Adapter], args: argparse.Namespace) -> int:
    # One log line per page request would only interleave with the progress bar; failures are reported below.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        run(config, adapters, args.source, parse_since(args.since), process=not args.no_process)
    except BackfillError as exc:
        print(f"commerce-gateway backfill: {exc}", file=sys.stderr)
        return 1
    return 0
