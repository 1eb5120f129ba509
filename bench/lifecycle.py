"""Lifecycle benchmarks, each with its baseline measured in the same run:

- `throughput`: the worker drain of bench/process.py (the same queued Push Orders over a 10k-order ledger), with
  a catalog of `--catalog` products of which half have a replenishment rule and the orders' items drawn from it,
  dated now (so not historical: every placed order of a product with a rule starts or supersedes a reminder,
  ~10% follow-ups cancel or refund some). Drains alternate between lifecycle on and lifecycle off (the same
  engine without the lifecycle registered) on fresh copies of one database, each in a new interpreter.
- `fire`: `--due` reminders coming due at once (rows written directly, as orders would have left them), drained
  by `Worker.fire_timers` as the worker loop calls it; events recorded per second.
- `latency`: an idle `serve` worker thread (`Worker.run`); an order whose reminder comes due 1.5 s after it is
  processed; how late each reminder fires, `--reminders` times.
- `memory`: the memory of a worker process (RssAnon: what the process itself holds, not the database pages it
  maps, which the OS shares and reclaims) after it starts on a database with `--active` active automations (each
  its own timer), fires what is due and drains a batch of orders, against the same with `--small-active`.

- `instructions`: the `throughput` drain counted by callgrind instead of timed (`bench/instructions.py
  --lifecycle`: a drain of N orders minus a drain of one, lifecycle off and on): instructions per order and
  their ratio off/on, the throughput ratio without the machine's noise. Needs valgrind; not part of `all`.

    python bench/lifecycle.py                 # all four, default sizes (a few minutes on a loaded 2-core machine)
    python bench/lifecycle.py throughput --orders 20000 --repeat 3
    python bench/lifecycle.py instructions --orders 1000      # ~4 minutes under valgrind
    python bench/lifecycle.py fire --due 100000
    python bench/lifecycle.py memory --active 1000000 --small-active 10000
"""

import argparse
import json
import os
import random
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(1, str(Path(__file__).resolve().parent))

from bench.process import SEED, _stored_body, build_ledger, check, timed
from gateway import runtime
from gateway.config import Config
from gateway.engine import Engine, build_engine
from gateway.pipeline.worker import Worker
from gateway.pipeline.write_turns import WriteTurns
from normalizer.timefmt import format_instant_us, now_us
from store import queue
from store.db import connect, transaction
from store.schema import migrate

DAY_US = 86_400 * 1_000_000


def _config(database: Path) -> Config:
    return Config.model_validate({"database": str(database), "fx_rates": {"EUR": 1.08}})


def _engine(config: Config, lifecycle: bool) -> Engine:
    if lifecycle:
        return build_engine(config)
    return Engine(config.currency, config.fx_rates, config.segments)  # build_engine without the lifecycle


def build_catalog(conn: sqlite3.Connection, products: int, now: int) -> None:
    """`products` products with two variants each; the even ones with a replenishment rule."""
    rows = []
    for number in range(products):
        product = {
            "productId": f"P{number}",
            "title": f"Product {number}",
            "variants": [
                {"variantId": f"P{number}-a", "title": "A", "inventoryQuantity": 10},
                {"variantId": f"P{number}-b", "title": "B", "inventoryQuantity": 0},
            ],
        }
        rule = json.dumps({"days": 30, "leadDays": 5, "matchBy": "product"}) if number % 2 == 0 else None
        rows.append((product["productId"], "api", json.dumps(product), rule, now, now))
    with transaction(conn):
        conn.executemany(
            "INSERT INTO products (product_id, source, data, replenishment, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )


def queue_catalog_orders(conn: sqlite3.Connection, orders: int, products: int, rng: random.Random) -> None:
    """bench/process.py's queue (~90% new placed orders, ~10% follow-ups over ~30% as many customers), with each
    order's item drawn from the catalog and the order dated now."""
    customers = max(1, int(orders * 0.3))
    ordered_at = format_instant_us(now_us())
    follow_ups = ({"status": "fulfilled"}, {"status": "refunded", "refundAmountCents": 8850}, {"status": "cancelled"})
    placed: list[tuple[str, str, dict[str, Any]]] = []
    received = now_us()
    with transaction(conn):
        for i in range(orders):
            if placed and rng.random() < 0.1:
                order_id, email, item = rng.choice(placed)
                extra: dict[str, Any] = dict(rng.choice(follow_ups))
            else:
                product = rng.randrange(products)
                item = {
                    "productId": f"P{product}",
                    "variantId": f"P{product}-a",
                    "title": f"Product {product}",
                    "quantity": rng.randint(1, 3),
                    "priceCents": 4425,
                }
                order_id, email, extra = f"bench-{i}", f"buyer-{rng.randrange(customers)}@example.com", {}
                placed.append((order_id, email, item))
            body = {
                **SEED,
                **extra,
                "orderId": order_id,
                "orderedAt": ordered_at,
                "items": [item],
                "customer": {**SEED["customer"], "email": email},
            }
            raw = _stored_body(body)
            queue.insert(conn, queue.NewJob(f"commerce-order-bench{i:010d}", "order", "api", raw, received + i))


def build_throughput(orders: int, products: int, folder: Path) -> Path:
    rng = random.Random(0)
    database = folder / f"lifecycle-{time.time_ns()}.db"
    conn = connect(database)
    migrate(conn)
    build_ledger(conn, 10_000, rng)
    build_catalog(conn, products, now_us())
    queue_catalog_orders(conn, orders, products, rng)
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return database


def drain_copy(built: Path, orders: int, lifecycle: bool) -> str:
    """Drain a fresh copy of `built` as `serve`'s worker does; returns "<orders per second> <per CPU-second>"."""
    database = built.with_name(f"drain-{time.time_ns()}.db")
    shutil.copyfile(built, database)
    os.sync()
    config = _config(database)
    worker = Worker(config, {}, _engine(config, lifecycle), WriteTurns())
    runtime.prepare(serving=True)
    runtime.freeze_heap()
    total, elapsed, cpu = timed(worker)
    conn = connect(database)
    check(conn, orders)
    active = conn.execute("SELECT count(*) FROM automations WHERE status = 'active'").fetchone()[0]
    conn.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    print(
        f"lifecycle {'on ' if lifecycle else 'off'}: {total:,} orders in {elapsed:6.2f} s = {total / elapsed:8,.0f}/s"
        f" ({total / cpu:,.0f} per CPU-second; {active:,} reminders active after)",
        flush=True,
    )
    return f"{total / elapsed} {total / cpu}"


def _apart(*args: str) -> str:
    """This script with `args` in an interpreter of its own; its output echoed, the last line returned."""
    command = [sys.executable, __file__, *args]
    *lines, last = subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()
    print(*lines, sep="\n", flush=True)
    return last


def throughput(args: argparse.Namespace, folder: Path) -> None:
    print(f"throughput: {args.orders:,} orders, {args.catalog:,}-product catalog (half with replenishment)")
    built = _apart("_build", "--orders", str(args.orders), "--catalog", str(args.catalog), "--keep", str(folder))
    rates: dict[bool, list[list[float]]] = {True: [], False: []}
    for _ in range(args.repeat):  # alternating: a slow minute of this shared machine hits both alike
        for lifecycle in (False, True):
            step = ["_drain", "--database", built, "--orders", str(args.orders)]
            rates[lifecycle].append([float(f) for f in _apart(*step, *(["--on"] if lifecycle else [])).split()])
    for index, unit in ((0, "/s"), (1, " per CPU-second")):
        on = statistics.median(r[index] for r in rates[True])
        off = statistics.median(r[index] for r in rates[False])
        print(f"throughput median of {args.repeat}: on {on:,.0f}{unit}, off {off:,.0f}{unit}; on/off {on / off:.2f}")


def _due_reminders(conn: sqlite3.Connection, count: int, due_at: int, subscribers: int) -> None:
    """`count` active replenishment reminders set to fire at their due time, over `subscribers` subscribers."""
    now = now_us()
    data = json.dumps({"productId": "P0", "variantId": None, "title": "Product 0", "quantity": 1, "orderId": "o"})
    with transaction(conn):
        conn.executemany(
            "INSERT INTO subscribers (id, email, attributes, orders_count, total_spent_cents, created_at, updated_at)"
            " VALUES (?, ?, '{}', 0, 0, ?, ?)",
            ((n + 1, f"s{n}@example.com", now, now) for n in range(subscribers)),
        )
        conn.executemany(
            "INSERT INTO automations (id, subscriber_id, flow, key, status, source, order_id, ordered_at, started_at,"
            " due_at, fire_at, data) VALUES (?1, ?2, 'replenishment', ?3, 'active', 'api', ?4, ?5, ?5, ?6, ?6, ?7)",
            ((n + 1, n % subscribers + 1, f"P{n % 5000}", f"o{n}", now, due_at + n, data) for n in range(count)),
        )


def fire(args: argparse.Namespace, folder: Path) -> None:
    database = folder / f"fire-{time.time_ns()}.db"
    conn = connect(database)
    migrate(conn)
    _due_reminders(conn, args.due, now_us() - DAY_US, max(1, args.due // 3))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    config = _config(database)
    worker = Worker(config, {}, build_engine(config), WriteTurns())
    started = time.perf_counter()
    fired = transactions = 0
    with worker.checkpointer:
        while count := worker.fire_timers():
            fired += count
            transactions += 1
    elapsed = time.perf_counter() - started
    worker.close()
    conn = connect(database)
    events = conn.execute("SELECT count(*) FROM events WHERE name = 'ecommerce.replenishment_due'").fetchone()[0]
    left = conn.execute("SELECT count(*) FROM automations WHERE status = 'active'").fetchone()[0]
    conn.close()
    assert events == fired == args.due and left == 0, (events, fired, left)
    print(
        f"fire: {fired:,} reminders due at once fired in {elapsed:.2f} s = {fired / elapsed:,.0f} events/s"
        f" ({transactions} transactions, {fired / transactions:,.0f} a transaction)",
        flush=True,
    )


def latency(args: argparse.Namespace, folder: Path) -> None:
    database = folder / f"latency-{time.time_ns()}.db"
    config = Config.model_validate({"database": str(database), "lifecycle": {"replenishment": {"P0": {"days": 1}}}})
    conn = connect(database)
    migrate(conn)
    worker = Worker(config, {}, build_engine(config), WriteTurns())
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    late = []
    try:
        for number in range(args.reminders):
            # Ordered a day ago less 1.5 s: the reminder (1 day per unit) comes due 1.5 s after now.
            ordered_at = now_us() - DAY_US + 1_500_000
            body = {
                **SEED,
                "orderId": f"late-{number}",
                "orderedAt": format_instant_us(ordered_at),
                "items": [{"productId": "P0", "title": "Product 0", "quantity": 1}],
            }
            with transaction(conn):
                job = queue.NewJob(f"commerce-order-late{number}", "order", "api", _stored_body(body), now_us())
                queue.insert(conn, job)
            worker.wake.set()  # as the ingest committer does after its commit
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                row = conn.execute(
                    "SELECT fired_at - due_at FROM automations WHERE order_id = ? AND status = 'fired'",
                    (f"late-{number}",),
                ).fetchone()
                if row:
                    late.append(row[0] / 1e6)
                    break
                time.sleep(0.05)  # the benchmark's own polling, not the worker's
            else:
                raise SystemExit(f"reminder {number} did not fire within 30 s")
    finally:
        stop.set()
        worker.wake.set()
        thread.join()
        conn.close()
    print(
        f"latency: {len(late)} reminders fired {min(late) * 1000:.0f}-{max(late) * 1000:.0f} ms after their due time"
        f" (median {statistics.median(late) * 1000:.0f} ms) by an idle worker (poll_seconds"
        f" {config.worker.poll_seconds})",
        flush=True,
    )


def _rss_run(database: Path, due: int) -> int:
    """In this interpreter: a `serve` worker starts on `database`, fires what is due, drains 2,000 orders that
    start and supersede reminders, idles; returns the peak RSS in KiB."""
    config = _config(database)
    worker = Worker(config, {}, build_engine(config), WriteTurns())
    runtime.prepare(serving=True)
    with worker.checkpointer:
        while worker.fire_timers():
            pass
        while worker.run_once():
            pass
        worker.fire_timers()
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    anon, file = (int(status[key].split()[0]) for key in ("RssAnon", "RssFile"))
    print(
        f"  peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.1f} MiB; now: process memory"
        f" (RssAnon) {anon / 1024:,.1f} MiB, mapped database and library pages (RssFile) {file / 1024:,.1f} MiB"
    )
    worker.close()
    return anon


def _build_memory(active: int, folder: Path) -> Path:
    database = folder / f"memory-{active}-{time.time_ns()}.db"
    conn = connect(database)
    migrate(conn)
    rng = random.Random(0)
    build_catalog(conn, 10_000, now_us())
    _due_reminders(conn, active, now_us() + 30 * DAY_US, max(1, active // 3))
    # 1,000 of them due now, and 2,000 orders of the same subscribers' products to process.
    conn.execute("UPDATE automations SET due_at = 0, fire_at = 0 WHERE id <= 1000")
    queue_catalog_orders(conn, 2_000, 10_000, rng)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return database


def memory(args: argparse.Namespace, folder: Path) -> None:
    figures = {}
    for active in (args.small_active, args.active):
        built = _apart("_memory_build", "--active", str(active), "--keep", str(folder))
        figures[active] = int(_apart("_memory_run", "--database", built))
        print(f"memory: {active:>9,} active automations: RssAnon {figures[active] / 1024:,.1f} MiB", flush=True)
        Path(built).unlink()
    ratio = figures[args.active] / figures[args.small_active]
    print(f"memory: RssAnon with {args.active:,} / with {args.small_active:,} active automations = {ratio:.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", nargs="?", default="all")
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--catalog", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--due", type=int, default=100_000)
    parser.add_argument("--reminders", type=int, default=5)
    parser.add_argument("--active", type=int, default=1_000_000)
    parser.add_argument("--small-active", type=int, default=10_000)
    parser.add_argument("--keep", type=Path)
    parser.add_argument("--database", type=Path)
    parser.add_argument("--on", action="store_true")
    args = parser.parse_args(argv)
    if args.what == "_build":
        print(build_throughput(args.orders, args.catalog, args.keep))
    elif args.what == "_drain":
        print(drain_copy(args.database, args.orders, args.on))  # the parent reads this last line
    elif args.what == "_memory_build":
        print(_build_memory(args.active, args.keep))
    elif args.what == "_memory_run":
        print(_rss_run(args.database, 1000))
    elif args.what == "instructions":
        import instructions  # bench/instructions.py, beside this script

        return instructions.main(["--lifecycle", "--orders", str(args.orders)])
    else:
        with tempfile.TemporaryDirectory(prefix="bench-lifecycle-") as tmp:
            folder = args.keep or Path(tmp)
            steps = {"throughput": throughput, "fire": fire, "latency": latency, "memory": memory}
            for name, step in steps.items():
                if args.what in (name, "all"):
                    step(args, folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
