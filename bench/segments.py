"""Segments: what 20 live segments cost the worker, and how long `segments rebuild` takes over a large ledger.

Worker: one database (a background ledger and N queued orders, built as `bench/process.py` builds them, with the
20 segments below already built over it, as `serve` does at start) is drained on fresh copies, alternately with
no segments configured and with the 20, each drain in an interpreter of its own, `--repeat` pairs; the medians
and their ratio are reported. The 20 segments mix every kind of condition: attributes (custom, revenue,
profile), purchased (product, variant, source), orders (ever and withinDays), events (ever and withinDays),
segment references, all / any / not.

Rebuild: a ledger of `--rebuild-orders` orders over ~30% as many subscribers (1M orders, 300,000 subscribers by
default) with no segment built yet, then `segments rebuild` of the 20 segments over it, timed (the build is
not): every membership is written, as when 20 segments are added to a gateway holding that history.

    python bench/segments.py                   # worker: 20,000 orders x 3 pairs; rebuild: 1M orders (minutes)
    python bench/segments.py --quick           # worker: 5,000 orders x 2 pairs; rebuild: 100,000 orders
    python bench/segments.py --orders 50 --ledger 100 --rebuild-orders 300 --repeat 1   # smoke run

Instructions: with `--part instructions`, the worker's instructions per order with no segments and with the
20, counted by callgrind as `bench/instructions.py` counts them (a drain of N orders minus a drain of one, over
the same 10,000-order ledger), and their ratio: repeatable whatever else the machine is doing.

    python bench/segments.py --part instructions --orders 1000
"""

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import instructions
import process

from gateway.config import Config
from gateway.engine import build_engine, segment_rebuild
from normalizer.timefmt import now_us
from store.db import connect
from store.schema import migrate

PRODUCT, VARIANT = process.SEED["items"][0]["productId"], process.SEED["items"][0]["variantId"]
SEGMENTS: dict[str, Any] = {
    "vip": {"attribute": "totalSpent", "gte": 500},
    "big-baskets": {"attribute": "aov", "gt": 150},
    "repeat": {"attribute": "ordersCount", "gte": 3},
    "named-bo": {"attribute": "firstName", "eq": "Bo"},
    "tiktok": {"attribute": "acquisitionChannel", "eq": "tiktok"},
    "has-channel": {"attribute": "acquisitionChannel", "exists": True},
    "protein-twice": {"purchased": {"productId": PRODUCT, "atLeast": 2}},
    "vanilla": {"purchased": {"variantId": VARIANT}},
    "api-protein": {"purchased": {"productId": PRODUCT, "source": "api"}},
    "recent": {"orders": {"withinDays": 30}},
    "active": {"orders": {"withinDays": 365, "atLeast": 2}},
    "five-orders": {"orders": {"atLeast": 5}},
    "placed-this-week": {"event": {"name": "ecommerce.order_placed", "withinDays": 7}},
    "refunded": {"event": {"name": "ecommerce.order_refunded"}},
    "abandoners": {"event": {"name": "ecommerce.checkout_abandoned", "withinDays": 14}},
    "lapsed": {"all": [{"attribute": "ordersCount", "gte": 1}, {"not": {"orders": {"withinDays": 90}}}]},
    "lapsed-vip": {"all": [{"segment": "vip"}, {"segment": "lapsed"}]},
    "fans": {"any": [{"segment": "tiktok"}, {"segment": "protein-twice"}]},
    "not-vip": {"not": {"segment": "vip"}},
    "whales": {"all": [{"segment": "vip"}, {"any": [{"segment": "tiktok"}, {"attribute": "ordersCount", "gte": 10}]}]},
}


def _config(database: Path, segments: bool) -> Config:
    return Config.model_validate(
        {"database": str(database), "fx_rates": {"EUR": 1.08}, "segments": SEGMENTS if segments else {}}
    )


def build(orders: int, ledger: int, folder: Path) -> Path:
    """A background ledger and `orders` queued jobs; with queued jobs (the worker's database), the 20 segments
    built over the ledger, as `serve` builds them at start."""
    rng = random.Random(0)
    database = folder / f"segments-{ledger}-{time.time_ns()}.db"
    conn = connect(database)
    migrate(conn)
    started = time.perf_counter()
    process.build_ledger(conn, ledger, rng)
    if orders:
        process.queue_orders(conn, orders, rng)
    if orders:
        segment_rebuild.sync(build_engine(_config(database, True)).segments, conn, now_us())
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    took = time.perf_counter() - started
    print(f"built a {ledger:,}-order ledger, {orders:,} queued orders and the segments in {took:.1f} s", flush=True)
    return database


def drain(built: Path, orders: int, segments: bool) -> float:
    """Drain a fresh copy of `built` with or without the 20 segments configured; orders/s."""
    database = built.with_name(f"drain-{time.time_ns()}.db")
    shutil.copyfile(built, database)
    os.sync()
    total, elapsed, _cpu = process.drain(_config(database, segments))
    conn = connect(database)
    process.check(conn, orders)
    conn.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    rate = total / elapsed
    label = f"{len(SEGMENTS)} segments" if segments else "no segments"
    print(f"{label:>12}: drained {total:,} orders in {elapsed:6.2f} s = {rate:8,.0f} orders/s", flush=True)
    return rate


def rebuild(built: Path) -> float:
    """`segments rebuild` (no events) of the 20 segments over `built`, as the command runs it; seconds."""
    conn = connect(built)
    segments = build_engine(_config(built, True)).segments
    subscribers, orders = (conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("subscribers", "orders"))
    started, cpu = time.perf_counter(), time.process_time()
    result = segment_rebuild.rebuild_all(segments, conn, False, now_us())
    took, cpu = time.perf_counter() - started, time.process_time() - cpu
    members = conn.execute("SELECT sum(members) FROM segments").fetchone()[0]
    conn.close()
    print(
        f"rebuild: {len(result.rebuilt)} segments over {subscribers:,} subscribers and {orders:,} orders in"
        f" {took:.1f} s, {cpu:.1f} s of CPU ({members:,} memberships)",
        flush=True,
    )
    return took


def _counted(database: str, orders: int, segments: bool, folder: Path) -> int:
    """Instructions of a drain of `database` (its `orders` queued orders) under callgrind."""
    out = folder / f"callgrind-{orders}-{int(segments)}.out"
    argv = [__file__, "--drain", database, "--orders", str(orders), *(["--with-segments"] if segments else [])]
    return instructions.counted(argv, out)


def count_instructions(orders: int, ledger: int, folder: Path, keep: Path | None) -> None:
    """Worker instructions per order with no segments and with the 20 (N-order drain minus 1-order drain)."""
    many = _apart("--build", str(ledger), "--orders", str(orders), "--folder", str(folder))
    one = _apart("--build", str(ledger), "--orders", "1", "--folder", str(folder))
    per_order = []
    for segments in (False, True):
        total = _counted(many, orders, segments, folder) - _counted(one, 1, segments, folder)
        per_order.append(total / (orders - 1))
        label = f"{len(SEGMENTS)} segments" if segments else "no segments"
        print(f"{label:>12}: {per_order[-1]:,.0f} worker instructions per order (callgrind)", flush=True)
    print(f"instructions ratio none / 20 segments: {per_order[0] / per_order[1]:.2f}", flush=True)
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        for out in folder.glob("callgrind-*.out"):
            shutil.copy(out, keep / out.name)


def _apart(*args: str) -> str:
    """This script with `args` in an interpreter of its own; its output echoed, the last line returned."""
    command = [sys.executable, __file__, *args]
    *lines, last = subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()
    print(*lines, sep="\n", flush=True)
    return last


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=20_000, help="orders queued and drained per drain")
    parser.add_argument("--ledger", type=int, default=10_000, help="orders already in the drains' ledger")
    parser.add_argument("--repeat", type=int, default=3, help="pairs of drains (none, 20 segments), alternating")
    parser.add_argument("--rebuild-orders", type=int, default=1_000_000, help="ledger orders for the rebuild")
    parser.add_argument("--part", choices=("worker", "rebuild", "both", "instructions"), default="both")
    parser.add_argument("--quick", action="store_true", help="5,000 orders x 2 pairs; rebuild over 100,000 orders")
    parser.add_argument("--keep", type=Path, help="with --part instructions: keep the callgrind outputs here")
    parser.add_argument("--build", type=int, metavar="LEDGER", help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--drain", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--with-segments", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rebuild", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.build is not None:
        print(build(args.orders, args.build, args.folder))
        return 0
    if args.drain is not None:
        print(drain(args.drain, args.orders, args.with_segments))
        return 0
    if args.rebuild is not None:
        print(rebuild(args.rebuild))
        return 0
    if args.quick:
        args.orders, args.repeat, args.rebuild_orders = 5_000, 2, 100_000
    with tempfile.TemporaryDirectory(prefix="bench-segments-") as tmp:
        if args.part == "instructions":
            count_instructions(args.orders, args.ledger, Path(tmp), args.keep)
            return 0
        if args.part in ("worker", "both"):
            built = _apart("--build", str(args.ledger), "--orders", str(args.orders), "--folder", tmp)
            rates: tuple[list[float], list[float]] = ([], [])
            for _ in range(args.repeat):  # alternating, so a slow minute of this shared machine hits both alike
                for segments, runs in zip((False, True), rates, strict=True):
                    flag = ["--with-segments"] if segments else []
                    runs.append(float(_apart("--drain", built, "--orders", str(args.orders), *flag)))
                print(f"ratio 20 segments / none: {rates[1][-1] / rates[0][-1]:.2f}", flush=True)
            none, twenty = (statistics.median(runs) for runs in rates)
            print(
                f"median of {args.repeat}: {none:,.0f} orders/s with no segments, {twenty:,.0f} with"
                f" {len(SEGMENTS)}; ratio of medians {twenty / none:.2f}",
                flush=True,
            )
            Path(built).unlink()
        if args.part in ("rebuild", "both"):
            built = _apart("--build", str(args.rebuild_orders), "--orders", "0", "--folder", tmp)
            _apart("--rebuild", built)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
