"""Outbound delivery: how fast the sender delivers, how soon an event reaches a destination, and what a
destination costs ingest and the worker. Loopback only: the receiver is this script in a process of its own
(`--receiver`), an asyncio server that answers 200 at once on one port and never answers on another (a
destination that times out on every request).

1. throughput: N recorded events, one destination, `Sender.drain` in this process -> deliveries/s.
2. latency: `serve` with its worker and sender, orders posted at `--rate`/s for `--seconds`: POST latency
   (ingest) and event recorded -> first attempt, with no destination, one, and one beside a destination that
   times out on every request.
3. worker: `bench/process.py`'s queue drained by `serve`'s worker with no destination, then with one (the sender
   sending meanwhile), alternating, `--repeat` times: orders/s and the ratio.
4. ingest: `bench/ingest.py`'s saturated phase (wrk) against the bare endpoint and the gateway with no
   destination and with one, back to back: the ingest ratios.

    python bench/deliver.py                 # ~3 minutes
    python bench/deliver.py --quick         # ~1 minute
"""

import argparse
import asyncio
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import ingest  # bench/ingest.py
import process  # bench/process.py

from gateway import runtime
from gateway.config import Config
from gateway.engine import Engine, build_engine
from gateway.outbound.routes import sync_destinations
from gateway.outbound.sender import Sender
from gateway.pipeline.worker import Worker
from gateway.pipeline.write_turns import WriteTurns
from store import events
from store.db import connect, transaction
from store.schema import migrate

ROOT = Path(__file__).resolve().parent.parent
SECRET = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
_OK = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"


# -- the receiver (a process of its own) ------------------------------------------------------------------------
class _Answering(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            length = 0
            for line in self.buffer[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            self.transport.write(_OK)


class _Silent(asyncio.Protocol):
    """Reads and never answers: every request to it times out."""

    def data_received(self, data: bytes) -> None:
        pass


def receive(ports: list[int]) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        await loop.create_server(_Answering, "127.0.0.1", ports[0], backlog=1024)
        await loop.create_server(_Silent, "127.0.0.1", ports[1], backlog=1024)
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_receiver() -> tuple[subprocess.Popen[str], str, str]:
    ok, silent = _free_port(), _free_port()
    command = [sys.executable, __file__, "--receiver", str(ok), str(silent)]
    receiver = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert receiver.stdout is not None and receiver.stdout.readline().strip() == "ready"
    return receiver, f"http://127.0.0.1:{ok}/hooks", f"http://127.0.0.1:{silent}/hooks"


def stop_receiver(receiver: subprocess.Popen[str]) -> None:
    receiver.terminate()
    receiver.wait()
    if receiver.stdout is not None:
        receiver.stdout.close()


def _settings(database: Path, destinations: dict[str, str], timeout: str = "15s") -> dict[str, Any]:
    return {
        "database": str(database),
        "api_keys": [ingest.API_KEY],
        "log_level": "warning",
        "fx_rates": {"EUR": 1.08},
        "destinations": {
            name: {"url": url, "secrets": [SECRET], "timeout": timeout} for name, url in destinations.items()
        },
        "delivery": {"allow_private_networks": ["127.0.0.0/8"]},
        # The seed order is dated mid-2026: not historical by its age, so its events go to the destination.
        "lifecycle": {"historical_after": "36500d"},
    }


def _percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


# -- 1. throughput ----------------------------------------------------------------------------------------------
def throughput(folder: Path, url: str, count: int) -> float:
    config = Config.model_validate(_settings(folder / f"throughput-{time.time_ns()}.db", {"crm": url}))
    conn = connect(config.database)
    migrate(conn)
    sync_destinations(conn, config)
    with transaction(conn):
        conn.execute("INSERT INTO subscribers (email, created_at, updated_at) VALUES ('b@example.com', 1, 1)")
        properties = dict(process.SEED, orderId="x")
        for i in range(count):
            events.record(conn, 1, "ecommerce.order_placed", properties, 1, f"bench-{i}")
    conn.close()
    sender = Sender(config, Engine(config.currency, config.fx_rates).revenue_attributes)
    started, cpu = time.perf_counter(), time.process_time()
    made = asyncio.run(sender.drain())
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    with sqlite3.connect(config.database) as check:
        statuses = dict(check.execute("SELECT status, count(*) FROM deliveries GROUP BY status").fetchall())
    if statuses != {"succeeded": count} or made != count:
        raise SystemExit(f"throughput: deliveries not all succeeded: {statuses}, {made} attempts")
    rate = count / elapsed
    print(
        f"  {count:,} deliveries in {elapsed:.2f} s = {rate:,.0f} deliveries/s"
        f" ({count / cpu:,.0f} per CPU-second of the sending process; max_in_flight 16)",
        flush=True,
    )
    return rate


# -- 2. latency -------------------------------------------------------------------------------------------------
async def _paced(port: int, rate: float, seconds: float) -> list[float]:
    import httpx2

    latencies: list[float] = []
    template = dict(process.SEED)
    headers = {"Authorization": f"Bearer {ingest.API_KEY}"}
    async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30) as client:

        async def one(i: int) -> None:
            body = {**template, "orderId": f"paced-{i}", "customer": {"email": f"c{i % 500}@example.com"}}
            began = time.perf_counter()
            response = await client.post("/api/v1/orders", json=body)
            assert response.status_code == 202, response.text
            latencies.append((time.perf_counter() - began) * 1000)

        tasks = []
        start = time.perf_counter()
        for i in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    return latencies


def latency(
    folder: Path, label: str, destinations: dict[str, str], rate: float, seconds: float
) -> tuple[float, float] | None:
    """Prints POST latency and recorded -> first attempt; returns the latter's (p50, p99) in ms, if any."""
    database = folder / f"latency-{time.time_ns()}.db"
    config = folder / "latency.yaml"
    config.write_text(json.dumps(_settings(database, destinations, timeout="2s")))
    port = _free_port()
    log = folder / "latency.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--port", str(port)],
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        ingest._wait_ready(port, server, log)
        posted = asyncio.run(_paced(port, rate, seconds))
        conn = sqlite3.connect(database)
        deadline = time.monotonic() + 60
        while (
            conn.execute("SELECT count(*) FROM deliveries WHERE destination = 'crm' AND attempts = 0").fetchone()[0]
            or conn.execute("SELECT count(*) FROM jobs WHERE status != 'done'").fetchone()[0]
        ):
            if time.monotonic() > deadline:
                raise SystemExit("latency: deliveries still waiting after 60 s")
            time.sleep(0.2)
        first = conn.execute(
            "SELECT (min(a.at) - e.occurred_at) / 1000.0 FROM deliveries AS d JOIN events AS e ON e.id = d.event_id"
            " JOIN delivery_attempts AS a ON a.delivery_id = d.id WHERE d.destination = 'crm' GROUP BY d.id"
        ).fetchall()
        conn.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    p50, p99 = _percentiles(posted)
    line = f"  {label:<34} ingest p50 {p50:6.2f} ms  p99 {p99:7.2f} ms"
    found = None
    if first:
        found = d50, d99 = _percentiles([row[0] for row in first])
        line += f"   recorded -> first attempt p50 {d50:6.1f} ms  p99 {d99:6.1f} ms ({len(first):,} deliveries)"
    print(line, flush=True)
    return found


# -- 3. worker --------------------------------------------------------------------------------------------------
def worker_drain(folder: Path, orders: int, url: str | None) -> tuple[float, float]:
    """(orders/s, orders per CPU-second of the worker's thread)."""
    database = folder / f"worker-{time.time_ns()}.db"
    config = Config.model_validate(_settings(database, {"crm": url} if url else {}))
    conn = connect(database)
    migrate(conn)
    sync_destinations(conn, config)
    process.queue_orders(conn, orders, process.random.Random(0))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    # As `serve` builds them: the worker and the sender share the write turns; the worker wakes the sender after
    # each commit (`Worker.run` does; this loop calls `run_once` as bench/process.py does).
    turns = WriteTurns()
    engine = build_engine(config)
    worker = Worker(config, {}, engine, turns)
    sender = Sender(config, engine.revenue_attributes, turns) if url else None
    if sender is not None:
        sender.yield_to(worker)
    runtime.prepare(serving=True)
    runtime.freeze_heap()
    if sender is not None:
        sender.start()
    started, cpu = time.perf_counter(), time.thread_time()
    total = 0
    try:
        with worker.checkpointer:
            while processed := worker.run_once():
                total += processed
                if sender is not None:
                    sender.wake()
        elapsed, cpu = time.perf_counter() - started, time.thread_time() - cpu
        with sqlite3.connect(database) as check:
            sent, deliveries = check.execute(
                "SELECT count(*) FILTER (WHERE attempts > 0), count(*) FROM deliveries"
            ).fetchone()
    finally:
        worker.close()
        if sender is not None:
            sender.stop()
    rate, cpu_rate = total / elapsed, total / cpu
    meanwhile = f"; {sent:,} of {deliveries:,} deliveries sent meanwhile" if url else ""
    print(
        f"  worker, {'one destination' if url else 'no destination '}: {total:,} orders at {rate:,.0f}/s"
        f" ({cpu_rate:,.0f} per CPU-second of its thread){meanwhile}",
        flush=True,
    )
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    return rate, cpu_rate


# -- 4. ingest --------------------------------------------------------------------------------------------------
def ingest_ratios(folder: Path, url: str, seconds: float) -> tuple[float, float]:
    args = argparse.Namespace(
        duration=seconds,
        connections=32,
        threads=2,
        generator="wrk" if shutil.which("wrk") else "httpx",
    )
    script = folder / "orders.lua"
    script.write_text(ingest._lua(ingest._order_template().replace("]]", "] ]")))
    bare = ingest.run_target("bare", args, folder, script)
    ingest._report(bare)
    none = ingest.run_target("full", args, folder, script)
    ingest._report(none)
    destination = {
        k: v for k, v in _settings(Path(), {"crm": url}).items() if k in ("destinations", "delivery", "lifecycle")
    }
    one = ingest.run_target("full", args, folder, script, " +dest", settings=destination)
    ingest._report(one)
    return none.rate / bare.rate, one.rate / bare.rate


def _load() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def _target(what: str, figure: str, met: bool, target: str) -> None:
    print(f"  {what:<50} {figure:<28} {'met' if met else 'NOT MET'} ({target})", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=200, help="events offered per second in the latency phase")
    parser.add_argument("--seconds", type=float, default=10, help="seconds of paced load per latency run")
    parser.add_argument("--orders", type=int, default=20_000, help="orders per worker drain")
    parser.add_argument("--repeat", type=int, default=3, help="throughput runs and worker drain pairs (medians)")
    parser.add_argument("--ingest-seconds", type=float, default=5)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--receiver", type=int, nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.receiver:
        receive(args.receiver)
        return 0
    if args.quick:
        args.deliveries, args.seconds, args.orders, args.repeat, args.ingest_seconds = 3000, 4, 5000, 3, 2
    receiver, ok_url, silent_url = start_receiver()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-deliver-") as tmp:
            folder = Path(tmp)
            print(f"deliver: {os.cpu_count()} CPUs, receiver in process {receiver.pid}", flush=True)
            print(f"load average at start: {_load()}", flush=True)
            print("1. throughput: one destination answering 200, keep-alive", flush=True)
            sent = statistics.median(throughput(folder, ok_url, args.deliveries) for _ in range(args.repeat))
            print(f"2. latency: {args.rate:g} orders/s offered for {args.seconds:g} s", flush=True)
            latency(folder, "no destination", {}, args.rate, args.seconds)
            alone = latency(folder, "one destination", {"crm": ok_url}, args.rate, args.seconds)
            stuck = {"crm": ok_url, "stuck": silent_url}
            beside = latency(folder, "one + one timing out (2 s)", stuck, args.rate, args.seconds)
            print(f"3. worker: {args.orders:,} orders, serve's worker, alternating", flush=True)
            ratios, cpu_ratios = [], []
            for _ in range(args.repeat):
                none, none_cpu = worker_drain(folder, args.orders, None)
                one, one_cpu = worker_drain(folder, args.orders, ok_url)
                ratios.append(one / none)
                cpu_ratios.append(one_cpu / none_cpu)
            print(
                f"  worker, one destination / none: orders/s median {statistics.median(ratios):.2f},"
                f" orders per CPU-second of its thread median {statistics.median(cpu_ratios):.2f}",
                flush=True,
            )
            print(f"4. ingest: saturated, {args.ingest_seconds:g} s per target", flush=True)
            none_ratio, one_ratio = ingest_ratios(folder, ok_url, args.ingest_seconds)
            print(
                f"  ingest ratio gateway/bare: no destination {none_ratio:.2f}, one destination {one_ratio:.2f}"
                f" ({one_ratio / none_ratio:.2f}x)",
                flush=True,
            )
            print(f"targets (load average at the end: {_load()}):", flush=True)
            _target("deliveries/s, one destination (median)", f"{sent:,.0f}/s", sent >= 2000, ">= 2,000/s")
            for label, found in (("alone", alone), ("beside one timing out", beside)):
                d50, d99 = found or (float("inf"), float("inf"))
                figure = f"p50 {d50:.1f} ms, p99 {d99:.1f} ms"
                _target(f"recorded -> first attempt, {label}", figure, d50 < 50 and d99 < 250, "p50 < 50, p99 < 250")
            worker = statistics.median(ratios)
            _target("worker orders/s, one destination / none (median)", f"{worker:.2f}", worker >= 0.85, ">= 0.85")
            ingested = one_ratio / none_ratio
            _target("ingest, one destination / none", f"{ingested:.2f}", ingested >= 0.85, ">= 0.85")
    finally:
        stop_receiver(receiver)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
