"""Ingest throughput: `POST /api/v1/orders` with 32 concurrent connections against the real gateway
(`python -m gateway serve`, in-process worker on, temp SQLite file) in both durability modes (`full`, the
default: synchronous=FULL; `normal`) and, in the same run, against a bare Starlette endpoint under the same
uvicorn settings that only answers the same 202 body. Loopback only.

Reports accepted orders/s, p50 and p99 latency for each, each mode's ratio to the bare endpoint, and the
gateway's RSS under load; then checks that every accepted order has a committed job row. Uses wrk (Debian
package) when present, else an httpx load generator (slower: it competes with the server for the same two cores).

    python bench/ingest.py                 # 10 s per target, twice
    python bench/ingest.py --duration 3 --repeat 1
"""

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "bench-key-0123456789abcdef"
CUSTOMERS = 100_000  # emails are drawn from this many customers
MODES = ("full", "normal")  # the gateway's durability settings, the default first
# The README's Push Order example, shared with the tests.
SEED: dict[str, Any] = json.loads((ROOT / "tests" / "fixtures" / "api" / "seed-order.json").read_text())

# Each wrk thread numbers its own orders; `done` prints one JSON line the script parses.
_LUA = """
local counter = 0
local tid = 0
local threads = {}
local template = [[%(template)s]]
local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer %(key)s"}

function setup(thread)
  tid = tid + 1
  thread:set("tid", tid)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(tid * 7919)
end

function request()
  counter = counter + 1
  local body = string.format(template, tid, counter, math.random(0, %(customers)d - 1))
  return wrk.format("POST", "/api/v1/orders", headers, body)
end

%(pacing)s

function done(summary, latency, requests)
  io.write(string.format(
    'WRK {"requests": %%d, "duration_us": %%d, "non2xx": %%d, "socket_errors": %%d, "p50_us": %%d, "p99_us": %%d}\\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass
class Result:
    name: str
    requests: int
    accepted: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    rss_mb: float = 0.0
    hwm_mb: float = 0.0
    breakdown: str = ""  # the gateway's own figures of the run: requests per commit and per WAL sync

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds


def _order_template() -> str:
    """The seed order as a format string: orderId and customer email vary per request."""
    body = json.dumps({**SEED, "orderId": "@ID@", "customer": {**SEED["customer"], "email": "@EMAIL@"}})
    body = body.replace("%", "%%")
    return body.replace("@ID@", "bench-%d-%d").replace("@EMAIL@", "buyer-%d@example.com")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


_SERIES = ("commerce_gateway_ingest_commit", "commerce_gateway_wal_sync_seconds")


def _scrape(port: int) -> dict[str, float]:
    """The gateway's group-commit series from its /metrics (loopback clients may scrape without a token)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    found: dict[str, float] = {}
    for line in data.decode().splitlines():
        if line.startswith(_SERIES):
            name, _, value = line.rpartition(" ")
            found[name] = float(value)
    return found


def _breakdown(before: dict[str, float], after: dict[str, float]) -> str:
    """Requests per group commit; under `full`, requests per WAL sync and the syncs' mean and p99 (the bucket
    bound it falls under)."""
    delta = {name: value - before.get(name, 0.0) for name, value in after.items()}
    sync = _SERIES[1]
    commits = delta.get("commerce_gateway_ingest_commits_total", 0.0)
    requests = delta.get("commerce_gateway_ingest_committed_requests_total", 0.0)
    text = f"{requests / commits:.1f} requests per commit" if commits else "no commits"
    syncs = delta.get(f"{sync}_count", 0.0)
    if syncs:
        bounds = sorted(
            (float(name.split('le="')[1].rstrip('"}')), count)
            for name, count in delta.items()
            if name.startswith(f"{sync}_bucket") and "+Inf" not in name
        )
        p99 = next((bound for bound, count in bounds if count >= 0.99 * syncs), float("inf"))
        mean = delta.get(f"{sync}_sum", 0.0) / syncs
        text += f", {requests / syncs:.1f} per WAL sync (sync mean {mean * 1000:.2f} ms, p99 <= {p99 * 1000:g} ms)"
    return text


def _wait_ready(port: int, process: subprocess.Popen[bytes], log: Path, seconds: float = 30) -> None:
    """Until the server on `port` answers /healthz 200, at most `seconds`; its log's end if it exits first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited at start:\n{log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"server did not become ready in {seconds:g} s")


def _memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields.get("VmRSS", 0.0), fields.get("VmHWM", 0.0)


def _lua(template: str, pause_ms: float = 0) -> str:
    """The wrk script; with `pause_ms`, each connection waits that long between requests (a paced load)."""
    # Exponential pauses: the connections drift apart like independent clients instead of firing in step.
    pacing = f"function delay()\n  return -math.log(1 - math.random()) * {pause_ms:.3f}\nend" if pause_ms else ""
    return _LUA % {"template": template, "key": API_KEY, "customers": CUSTOMERS, "pacing": pacing}


def _wrk_command(port: int, seconds: float, args: argparse.Namespace, script: Path) -> list[str]:
    return [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}/api/v1/orders",
    ]


def _wrk_stats(output: str) -> dict[str, int]:
    line = next(line for line in output.splitlines() if line.startswith("WRK "))
    parsed: dict[str, int] = json.loads(line[4:])
    return parsed


async def _httpx_load(port: int, seconds: float, connections: int) -> dict[str, int]:
    """Fallback when wrk is missing: `connections` clients posting back to back for `seconds`."""
    import httpx

    template = _order_template()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"}
    latencies: list[float] = []
    counts = {"requests": 0, "non2xx": 0, "socket_errors": 0}
    stop_at = time.perf_counter() + seconds

    async def client(number: int) -> None:
        rng = random.Random(number)
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=5) as http:
            sent = 0
            while time.perf_counter() < stop_at:
                sent += 1
                body = template % (number, sent, rng.randrange(CUSTOMERS))
                started = time.perf_counter()
                try:
                    response = await http.post("/api/v1/orders", content=body, headers=headers)
                except httpx.HTTPError:
                    counts["socket_errors"] += 1
                    continue
                latencies.append(time.perf_counter() - started)
                counts["requests"] += 1
                counts["non2xx"] += not 200 <= response.status_code < 300

    started = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(connections)))
    latencies.sort()
    return {
        **counts,
        "duration_us": int((time.perf_counter() - started) * 1e6),
        "p50_us": int(latencies[len(latencies) // 2] * 1e6) if latencies else 0,
        "p99_us": int(latencies[int(len(latencies) * 0.99)] * 1e6) if latencies else 0,
    }


def _load(port: int, args: argparse.Namespace, script: Path, seconds: float) -> dict[str, int]:
    if args.generator == "wrk":
        command = _wrk_command(port, seconds, args, script)
        return _wrk_stats(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    return asyncio.run(_httpx_load(port, seconds, args.connections))


def _job_rows(database: Path) -> dict[str, int]:
    with sqlite3.connect(database) as conn:
        return dict(conn.execute("SELECT status, count(*) FROM jobs GROUP BY status").fetchall())


def run_target(
    name: str,
    args: argparse.Namespace,
    folder: Path,
    script: Path,
    label: str = "",
    settings: dict[str, Any] | None = None,
) -> Result:
    """`name` is "bare", or the gateway's durability mode: "full" or "normal"; `settings` override its config."""
    port = _free_port()
    log = folder / f"{name}.log"
    database = folder / f"gateway-{name}-{time.monotonic_ns()}.db"
    gateway = name != "bare"
    if gateway:
        config = folder / "config.yaml"
        settings = {"database": str(database), "durability": name, "api_keys": [API_KEY], "log_level": "warning"} | (
            settings or {}
        )
        config.write_text(json.dumps(settings))
        command = [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--port", str(port)]
    else:
        command = [sys.executable, str(Path(__file__).resolve()), "--bare-server", str(port)]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT)
    try:
        _wait_ready(port, process, log)
        _load(port, args, script, 1)  # warm-up: imports, first connections, SQLite cache
        before = sum(_job_rows(database).values()) if gateway else 0
        scraped = _scrape(port) if gateway else {}
        peak = [0.0, 0.0]
        if args.generator == "wrk":
            # Sample memory while wrk runs, from this thread: wrk is a separate process.
            loader = subprocess.Popen(
                _wrk_command(port, args.duration, args, script), stdout=subprocess.PIPE, text=True
            )
            while loader.poll() is None:
                rss, hwm = _memory_mb(process.pid)
                peak = [max(peak[0], rss), max(peak[1], hwm)]
                time.sleep(0.2)
            assert loader.stdout is not None
            stats = _wrk_stats(loader.stdout.read())
        else:
            stats = _load(port, args, script, args.duration)
            peak = list(_memory_mb(process.pid))
        _, hwm = _memory_mb(process.pid)
        breakdown = _breakdown(scraped, _scrape(port)) if gateway else ""
        accepted = stats["requests"] - stats["non2xx"]
        result = Result(
            name=f"{name}{label}",
            requests=stats["requests"],
            accepted=accepted,
            seconds=stats["duration_us"] / 1e6,
            p50_ms=stats["p50_us"] / 1000,
            p99_ms=stats["p99_us"] / 1000,
            errors=stats["non2xx"] + stats["socket_errors"],
            rss_mb=peak[0],
            hwm_mb=max(peak[1], hwm),
            breakdown=breakdown,
        )
        if gateway:
            rows = _job_rows(database)
            stored = sum(rows.values()) - before
            # wrk stops with requests in flight: those may be committed without being counted, never the reverse.
            if stored < accepted:
                raise SystemExit(f"LOST ORDERS: {accepted} accepted, only {stored} job rows committed ({rows})")
            print(
                f"    durability check: {accepted:,} accepted, {stored:,} job rows committed"
                f" ({rows.get('done', 0):,} done by the in-process worker during the run,"
                f" {rows.get('queued', 0):,} still queued)",
                flush=True,
            )
        return result
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def disk_sync_ms(folder: Path, samples: int = 200) -> tuple[float, float]:
    """(p50, p99) in ms of writing 16 KiB to a file in `folder` and fdatasync-ing it: what `full` waits for
    the disk once per group commit, on the disk the databases are on."""
    path = folder / "sync-probe"
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    took = []
    try:
        for n in range(samples):
            os.pwrite(fd, os.urandom(16384), (n % 64) * 16384)
            started = time.perf_counter()
            os.fdatasync(fd)
            took.append((time.perf_counter() - started) * 1000)
    finally:
        os.close(fd)
        path.unlink()
    took.sort()
    return took[len(took) // 2], took[int(len(took) * 0.99)]


def _report(result: Result) -> None:
    memory = f", RSS {result.rss_mb:.0f} MB (peak {result.hwm_mb:.0f} MB)" if result.hwm_mb else ""
    print(
        f"  {result.name:<12} {result.rate:9,.0f} accepted/s  p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms"
        f"  ({result.accepted:,} accepted, {result.errors} errors{memory})",
        flush=True,
    )
    if result.breakdown:
        print(f"  {'':<12} {result.breakdown}", flush=True)


def serve_bare(port: int) -> None:
    """The reference: same uvicorn settings as `serve`, an endpoint that reads the body and answers 202."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    sys.path.insert(0, str(ROOT))
    from gateway import logs
    from normalizer.timefmt import now_us
    from store.queue import new_job_id

    async def orders(request: Request) -> Response:
        await request.body()
        return JSONResponse(
            {
                "success": True,
                "queued": True,
                "jobId": new_job_id("commerce-order", now_us()),  # the same id as the gateway's
                "orderId": "bench-1-1",
                "status": "placed",
            },
            status_code=202,
        )

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    app = Starlette(routes=[Route("/api/v1/orders", orders, methods=["POST"]), Route("/healthz", healthz)])
    logs.setup("warning")
    uvicorn.run(
        app, host="127.0.0.1", port=port, log_config=logs.UVICORN_LOG_CONFIG, access_log=False, server_header=False
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10, help="seconds of load per target (default 10)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--repeat", type=int, default=2, help="run the pair this many times (default 2)")
    parser.add_argument("--paced-ratio", type=float, default=0.4, help="paced phase rate, times bare (default 0.4)")
    parser.add_argument("--generator", choices=("wrk", "httpx"), default="wrk" if shutil.which("wrk") else "httpx")
    parser.add_argument("--bare-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bare_server:
        serve_bare(args.bare_server)
        return 0
    print(
        f"ingest: POST /api/v1/orders, {args.connections} connections, {args.duration:g} s per target,"
        f" load by {args.generator}, {os.cpu_count()} CPUs",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        folder = Path(tmp)
        template = _order_template().replace("]]", "] ]")
        script = folder / "orders.lua"
        script.write_text(_lua(template))
        p50, p99 = disk_sync_ms(folder)
        print(f"disk: fdatasync of 16 KiB p50 {p50:.2f} ms, p99 {p99:.2f} ms", flush=True)
        for attempt in range(1, args.repeat + 1):
            print(f"run {attempt}: saturated ({args.connections} connections back to back)", flush=True)
            bare = run_target("bare", args, folder, script)
            _report(bare)
            for mode in MODES:
                gateway = run_target(mode, args, folder, script)
                _report(gateway)
                print(f"  ratio {mode}/bare: {gateway.rate / bare.rate:.2f}", flush=True)
            # Saturated, latency is connections / throughput (Little's law); the p99 target is about a server
            # that keeps up, so measure it again at the target throughput, 0.4x the bare endpoint's.
            rate = args.paced_ratio * bare.rate
            paced = folder / "paced.lua"
            paced.write_text(_lua(template, pause_ms=args.connections / rate * 1000))
            print(f"run {attempt}: paced (offered {rate:,.0f}/s = {args.paced_ratio:g}x bare)", flush=True)
            # Each connection waits for its answer before its pause: a slower server is offered less. Said beside
            # each figure, so that targets are compared at the rate they actually ran at.
            for name in ("bare", *MODES):
                result = run_target(name, args, folder, paced, " paced")
                _report(result)
                print(f"  {'':<12} achieved {result.rate / rate:.2f} of the offered rate", flush=True)
            for leftover in folder.glob("gateway-*.db*"):
                leftover.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
