"""Worker throughput: queue N canonical orders, then time the worker (`Worker.run_once` as `serve` runs it)
draining them over a small ledger and over a large one, in turn, in the same run.

Each database is built once, in an interpreter of its own; setup is not measured. The background ledger (orders,
subscribers, events) is written with direct SQL, the jobs with `store.queue.insert` in large transactions, exactly
the rows `POST /api/v1/orders` would commit. Each drain then takes a fresh copy of its database in a new
interpreter, as a `serve` started on it would. Drains alternate between the two ledgers `--repeat` times (3 by
default), and the medians are compared: this shared machine's speed drifts by ±15% from minute to minute.

The queued orders belong to their own ~30% as many customers (so about 3.3 orders each, plus ~10% follow-up
events: fulfilled, partial refund, cancel) in both runs; the background ledger only changes how big the tables
and indexes are. That isolates what the issue asks: is the worker slower when the database is big?

    python bench/process.py            # 100,000 orders over a 10k and a 1M-order ledger (a few minutes)
    python bench/process.py --quick    # 20,000 orders over 10k and 200k
    python bench/process.py --orders 50 --ledger 100 --small-ledger 10
"""

import argparse
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway import runtime
from gateway.config import Config
from gateway.engine import build_engine
from gateway.pipeline.worker import Worker
from gateway.pipeline.write_turns import WriteTurns
from normalizer import PushOrder
from normalizer.timefmt import now_us
from store import job_reads, queue
from store.db import connect, transaction
from store.schema import migrate

ROOT = Path(__file__).resolve().parent.parent
# The README's Push Order example, shared with the tests.
SEED: dict[str, Any] = json.loads((ROOT / "tests" / "fixtures" / "api" / "seed-order.json").read_text())
CUSTOMERS_PER_ORDER = 0.3  # ~3.3 orders per customer
_BATCH = 20_000


def _stored_body(fields: dict[str, Any]) -> bytes:
    """What the API stores for this body: normalised, only the given fields."""
    return PushOrder.model_validate(fields).model_dump_json(exclude_unset=True).encode()


def build_ledger(conn: sqlite3.Connection, orders: int, rng: random.Random) -> None:
    """`orders` background orders over ~30% as many customers (skewed: a few customers order a lot), with
    their subscribers and one placed event each, written with direct SQL."""
    customers = max(1, int(orders * CUSTOMERS_PER_ORDER))
    now = now_us()
    items = json.dumps([{k: v for k, v in SEED["items"][0].items()}])
    props = json.dumps({"provider": "api", "source": "api", "status": "placed", "currency": "USD"})
    totals: dict[int, list[int]] = {}
    for start in range(0, orders, _BATCH):
        order_rows = []
        event_rows = []
        for i in range(start, min(start + _BATCH, orders)):
            who = int(customers * rng.random() ** 1.6)
            total = rng.randrange(500, 40_000)
            cancelled = int(rng.random() < 0.03)
            refunded = total if rng.random() < 0.04 else 0
            currency = "EUR" if rng.random() < 0.1 else "USD"
            email = f"bg-{who}@example.com"
            order_rows.append(
                (
                    "api",
                    f"bg-{i}",
                    "api",
                    str(100_000 + i),
                    email,
                    '{"firstName": "Bo"}',
                    total,
                    currency,
                    items,
                    "2026-01-01T00:00:00.000Z",
                    '["placed"]',
                    cancelled,
                    0,
                    refunded,
                    None,
                    now,
                    now,
                    now,
                )
            )
            event_rows.append((who + 1, "ecommerce.order_placed", props, now, f"api\x1fbg-{i}\x1fplaced", "api"))
            slot = totals.setdefault(who, [0, 0])
            if not cancelled:
                slot[0] += 1
                slot[1] += total - refunded
        with transaction(conn):
            conn.executemany(
                "INSERT INTO orders (source, order_id, provider, order_number, email, customer, total_cents, currency,"
                " items, ordered_at, statuses, cancelled, fulfilled, refunded_cents, refunds, version, created_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                order_rows,
            )
            if start == 0:
                conn.executemany(
                    "INSERT INTO subscribers (id, email, first_name, attributes, orders_count, total_spent_cents,"
                    " created_at, updated_at) VALUES (?, ?, 'Bo', '{}', 0, 0, ?, ?)",
                    ((who + 1, f"bg-{who}@example.com", now, now) for who in range(customers)),
                )
            conn.executemany(
                "INSERT INTO events (subscriber_id, name, properties, occurred_at, dedup_key, source)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                event_rows,
            )
    with transaction(conn):
        conn.executemany(
            "UPDATE subscribers SET orders_count = ?, total_spent_cents = ? WHERE id = ?",
            ((count, cents, who + 1) for who, (count, cents) in totals.items()),
        )


def queue_orders(conn: sqlite3.Connection, orders: int, rng: random.Random) -> None:
    """`orders` jobs as POST /api/v1/orders commits them: ~90% new placed orders, ~10% later events of them."""
    customers = max(1, int(orders * CUSTOMERS_PER_ORDER))
    template = json.loads(_stored_body(SEED))
    follow_ups = (
        json.loads(_stored_body({**SEED, "status": "fulfilled"})),
        json.loads(_stored_body({**SEED, "status": "refunded", "refundAmountCents": 4425})),
        json.loads(_stored_body({**SEED, "status": "cancelled"})),
    )
    placed: list[tuple[str, str]] = []
    received = now_us()
    # Placed now, not on the seed's date: an order older than `lifecycle.historical_after` would take the
    # historical path (starts and stops no automation), and the bench measures the live one.
    ordered_at = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(received // 1_000_000))
    for start in range(0, orders, _BATCH):
        with transaction(conn):
            for i in range(start, min(start + _BATCH, orders)):
                if placed and rng.random() < 0.1:
                    order_id, email = rng.choice(placed)
                    body = dict(rng.choice(follow_ups))
                else:
                    order_id, email = f"bench-{i}", f"buyer-{rng.randrange(customers)}@example.com"
                    placed.append((order_id, email))
                    body = dict(template)
                body["orderId"] = order_id
                body["orderedAt"] = ordered_at
                body["customer"] = {**body["customer"], "email": email}
                raw = json.dumps(body, separators=(",", ":")).encode()
                queue.insert(conn, queue.NewJob(f"commerce-order-bench{i:010d}", "order", "api", raw, received + i))


def drain(config: Config, standalone: bool = False) -> tuple[int, float, float]:
    """(jobs drained, wall seconds, CPU seconds of this process, checkpointer thread included). The worker is
    built as `serve` builds its own (with the write turns it shares with ingest, here idle), or with
    `standalone` as the `worker` command does (shorter transactions, for writers in other processes)."""
    turns = None if standalone else WriteTurns()
    worker = Worker(config, {}, build_engine(config), turns)
    runtime.prepare(serving=not standalone)  # as the CLI does for `serve` or `worker`
    runtime.freeze_heap()
    return timed(worker)


def timed(worker: Worker) -> tuple[int, float, float]:
    """`worker` run until idle, then closed: (jobs drained, wall seconds, CPU seconds of this process, checkpointer
    thread included)."""
    started, cpu = time.perf_counter(), time.process_time()
    total = 0
    with worker.checkpointer:  # as `Worker.run` does around the same loop
        while processed := worker.run_once():
            total += processed
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    worker.close()
    return total, elapsed, cpu


def check(conn: sqlite3.Connection, orders: int) -> None:
    counts = job_reads.counts(conn)
    done = conn.execute("SELECT count(*) FROM jobs WHERE status = 'done'").fetchone()[0]
    if done != orders or any(counts.values()):
        raise SystemExit(f"worker left jobs behind: done={done} of {orders}, {counts}")


def build(orders: int, ledger: int, folder: Path) -> Path:
    """A database with a `ledger`-order background ledger and `orders` queued jobs, checkpointed and on disk."""
    rng = random.Random(0)
    database = folder / f"ledger-{ledger}-{time.time_ns()}.db"
    conn = connect(database)
    migrate(conn)
    started = time.perf_counter()
    build_ledger(conn, ledger, rng)
    queue_orders(conn, orders, rng)
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    print(f"built the {ledger:,}-order ledger and {orders:,} jobs in {time.perf_counter() - started:.1f} s", flush=True)
    return database


def run(built: Path, orders: int, ledger: int, standalone: bool = False) -> float:
    """Drain a fresh copy of `built` (in this interpreter, as a `serve` started on that database would)."""
    database = built.with_name(f"drain-{time.time_ns()}.db")
    shutil.copyfile(built, database)
    os.sync()  # the copy reaches the disk now, not while the drain is timed (1M orders: ~1 GB)
    config = Config.model_validate({"database": str(database), "fx_rates": {"EUR": 1.08}})
    total, elapsed, cpu = drain(config, standalone)
    conn = connect(database)
    check(conn, orders)
    conn.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    rate = total / elapsed
    print(
        f"ledger {ledger:>9,} orders: drained {total:,} orders in {elapsed:6.2f} s = {rate:8,.0f} orders/s"
        f" ({total / cpu:,.0f} per CPU-second)",
        flush=True,
    )
    return rate


def _apart(*args: str) -> str:
    """This script with `args` in an interpreter of its own: its output lines echoed, the last one returned. A
    drain in the interpreter that built the ledger, or after another drain, ran slower (docs/PERFORMANCE.md)."""
    command = [sys.executable, __file__, *args]
    *lines, last = subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()
    print(*lines, sep="\n", flush=True)
    return last


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=100_000, help="orders queued and drained per run")
    parser.add_argument("--ledger", type=int, default=1_000_000, help="orders already in the large ledger")
    parser.add_argument("--small-ledger", type=int, default=10_000, help="orders already in the small ledger")
    parser.add_argument("--quick", action="store_true", help="20,000 orders; 200,000-order large ledger")
    parser.add_argument("--repeat", type=int, default=3, help="drain each ledger this many times, alternating")
    parser.add_argument("--keep", type=Path, help="keep the built databases in this folder")
    parser.add_argument("--standalone", action="store_true", help="the `worker` command's worker, not `serve`'s")
    # One step in an interpreter of its own (see `_apart`).
    parser.add_argument("--build", type=int, metavar="LEDGER", help=argparse.SUPPRESS)
    parser.add_argument("--drain", type=Path, metavar="DATABASE", help=argparse.SUPPRESS)
    parser.add_argument("--drain-ledger", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.build is not None:
        print(build(args.orders, args.build, args.keep))
        return 0
    if args.drain is not None:
        print(run(args.drain, args.orders, args.drain_ledger, args.standalone))
        return 0
    if args.quick:
        args.orders, args.ledger = 20_000, 200_000
    who = "the `worker` command's" if args.standalone else "`serve`'s"
    print(f"worker drain: {args.orders:,} queued orders; {who} `Worker.run_once` until idle, one thread", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-process-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        ledgers = (args.small_ledger, args.ledger)
        built = [_apart("--build", str(n), "--orders", str(args.orders), "--keep", str(folder)) for n in ledgers]
        rates: tuple[list[float], list[float]] = ([], [])
        for _ in range(args.repeat):  # alternating, so a slow minute of this shared machine hits both alike
            for database, n, runs in zip(built, ledgers, rates, strict=True):
                drain = ["--drain", database, "--drain-ledger", str(n), "--orders", str(args.orders)]
                runs.append(float(_apart(*drain, *(["--standalone"] if args.standalone else []))))
            print(f"ratio large/small ledger: {rates[1][-1] / rates[0][-1]:.2f}", flush=True)
        if args.keep is None:
            for database in built:
                Path(database).unlink()
    small, large = (statistics.median(runs) for runs in rates)
    print(
        f"median of {args.repeat}: {small:,.0f} orders/s over {args.small_ledger:,}, {large:,.0f} over"
        f" {args.ledger:,}; ratio of medians {large / small:.2f}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
