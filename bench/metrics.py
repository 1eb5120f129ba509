"""What the Prometheus instrumentation costs: the same two hot paths with metrics on and off, in one run.

- Ingest: the real gateway (`serve`, in-process worker on) under `wrk` as bench/ingest.py loads it, saturated,
  once with `metrics_enabled: false` and once with `true`, alternating `--repeat` times. Every request passes
  the request-counting middleware and the intake counts when on.
- Worker: `--orders` queued Push Orders over a small ledger (bench/process.py builds it once), drained by
  `serve`'s worker with and without `JobMetrics`, alternating, each drain in a new interpreter on a fresh copy.

It prints every figure, the medians, and the ratio on/off of each (1.00: no cost).

    python bench/metrics.py                        # 3 pairs of 5 s loads, 3 pairs of 20,000-order drains
    python bench/metrics.py --duration 2 --orders 2000 --repeat 1     # a smoke run
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import ingest
import process
from prometheus_client import CollectorRegistry

from gateway.config import Config
from gateway.engine import Engine
from gateway.metrics import JobMetrics
from gateway.pipeline.worker import Worker
from gateway.pipeline.write_turns import WriteTurns
from store.db import connect


def drain_once(built: Path, metrics: bool) -> None:
    """In a fresh interpreter: drain a copy of `built`; prints `{"rate": orders/s, "cpu": orders per CPU-s}`."""
    database = built.with_name(f"drain-{time.time_ns()}.db")
    shutil.copyfile(built, database)
    config = Config.model_validate({"database": str(database), "fx_rates": {"EUR": 1.08}})
    job_metrics = JobMetrics(CollectorRegistry()) if metrics else None
    worker = Worker(config, {}, Engine(config.currency, config.fx_rates), WriteTurns(), job_metrics)
    total, elapsed, cpu = process.timed(worker)
    conn = connect(database)
    done = conn.execute("SELECT count(*) FROM jobs WHERE status = 'done'").fetchone()[0]
    conn.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    if job_metrics is not None and job_metrics.processed.get(("order", "done")) != total:
        raise SystemExit("the metrics did not count every job")
    print(json.dumps({"rate": total / elapsed, "cpu": total / cpu, "done": done}))


def _drain(built: Path, metrics: bool) -> tuple[float, float]:
    """(orders/s, orders per CPU-second) of one drain in a new interpreter."""
    command = [sys.executable, __file__, "--drain", str(built), "--with-metrics" if metrics else "--without-metrics"]
    result = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    print(
        f"  worker, metrics {'on ' if metrics else 'off'}: {result['rate']:8,.0f} orders/s"
        f" ({result['cpu']:,.0f} per CPU-second)",
        flush=True,
    )
    return float(result["rate"]), float(result["cpu"])


def _ingest(args: argparse.Namespace, folder: Path, script: Path, metrics: bool) -> float:
    result = ingest.run_target("full", args, folder, script, settings={"metrics_enabled": metrics})
    print(f"  ingest, metrics {'on ' if metrics else 'off'}: {result.rate:8,.0f} accepted/s", flush=True)
    for leftover in folder.glob("gateway-*.db*"):
        leftover.unlink()
    return result.rate


def _ratio(name: str, on: list[float], off: list[float]) -> None:
    print(
        f"{name}: median {statistics.median(off):,.0f}/s off, {statistics.median(on):,.0f}/s on;"
        f" on/off {statistics.median(on) / statistics.median(off):.3f}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5, help="seconds of load per ingest run (default 5)")
    parser.add_argument("--orders", type=int, default=20_000, help="orders per drain (default 20,000)")
    parser.add_argument("--repeat", type=int, default=3, help="pairs of each (default 3)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--generator", choices=("wrk", "httpx"), default="wrk" if shutil.which("wrk") else "httpx")
    parser.add_argument("--drain", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--with-metrics", dest="metrics", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--without-metrics", dest="metrics", action="store_false", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.drain:
        drain_once(args.drain, args.metrics)
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        folder = Path(tmp)
        script = folder / "orders.lua"
        script.write_text(ingest._lua(ingest._order_template().replace("]]", "] ]")))
        accepted: dict[bool, list[float]] = {True: [], False: []}
        print(f"ingest: {args.connections} connections, {args.duration:g} s per run, by {args.generator}", flush=True)
        # Which goes first alternates: on this machine the second of two back-to-back runs tends to be slower.
        for attempt in range(args.repeat):
            for metrics in (attempt % 2 == 1, attempt % 2 == 0):
                accepted[metrics].append(_ingest(args, folder, script, metrics=metrics))
        built = process.build(args.orders, 10_000, folder)
        wall: dict[bool, list[float]] = {True: [], False: []}
        cpu: dict[bool, list[float]] = {True: [], False: []}
        for attempt in range(args.repeat):
            for metrics in (attempt % 2 == 1, attempt % 2 == 0):
                rate, per_cpu = _drain(built, metrics)
                wall[metrics].append(rate)
                cpu[metrics].append(per_cpu)
        _ratio("ingest (accepted/s)", accepted[True], accepted[False])
        _ratio("worker (orders/s)", wall[True], wall[False])
        _ratio("worker (orders per CPU-second)", cpu[True], cpu[False])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
