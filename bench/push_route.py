"""What the Push Order endpoint would cost inside Starlette's route table rather than in front of it.

Drives the same signed-in seed order through `PushOrders` two ways, in one process, alternating: in front of
the app's middleware and routing (`GatewayApp`, how `serve` runs it) and as the ASGI endpoint of a `Route` in
the app's table (routing, Starlette's error middleware, the router's method check). The committer is replaced
by one that accepts at once, so the figure is the HTTP layer's CPU alone: microseconds per request, and the
extra cost as a share of a whole request at the gateway's measured ingest rate.

    python bench/push_route.py                 # 20,000 requests per pass, 5 passes each
    python bench/push_route.py --requests 2000
"""

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from starlette.applications import Starlette
from starlette.routing import Route

from gateway.pipeline.ingest import Committer
from gateway.web import app as web_app
from gateway.web.auth import ApiKeys
from gateway.web.delivery_counts import DeliveryCounts
from gateway.web.push_orders import PATH, PushOrders
from gateway.web.request_bodies import BodyReader
from store import queue

ROOT = Path(__file__).resolve().parent.parent
BODY = (ROOT / "tests" / "fixtures" / "api" / "seed-order.json").read_bytes()
KEY = "bench-key"


class _Accepting:
    async def submit(self, job: queue.NewJob) -> bool:
        return True


def _push_orders() -> PushOrders:
    committer: Committer = _Accepting()  # type: ignore[assignment]
    return PushOrders(ApiKeys([KEY]), committer, 5 * 1024 * 1024, DeliveryCounts(), BodyReader(30.0, 64 << 20))


def in_front() -> Any:
    return web_app.GatewayApp(_push_orders(), routes=web_app.ROUTES, exception_handlers=web_app.exception_handlers())


def in_table() -> Any:
    handlers = web_app.exception_handlers()
    return Starlette(
        routes=[Route(PATH, _push_orders(), methods=["POST"]), *web_app.ROUTES], exception_handlers=handlers
    )


async def _drive(app: Any, requests: int) -> float:
    scope = {
        "type": "http",
        "method": "POST",
        "path": PATH,
        "raw_path": PATH.encode(),
        "root_path": "",
        "query_string": b"",
        "scheme": "http",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "http_version": "1.1",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"authorization", f"Bearer {KEY}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(BODY)).encode()),
        ],
    }
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    started = time.process_time()
    for _ in range(requests):
        await app(dict(scope, state={}), receive, send)
    elapsed = time.process_time() - started
    if set(statuses) != {202}:
        raise SystemExit(f"unexpected answers: {sorted(set(statuses))}")
    return elapsed / requests * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--passes", type=int, default=5)
    # 0.57 x the bare endpoint's 13,600/s: the lower of the saturated ingest figures in docs/PERFORMANCE.md.
    parser.add_argument("--gateway-rate", type=float, default=7_750, help="the gateway's saturated ingest rate/s")
    args = parser.parse_args(argv)
    front, table = in_front(), in_table()
    runs: tuple[list[float], list[float]] = ([], [])
    asyncio.run(_drive(front, 1_000))  # warm both: imports, caches
    asyncio.run(_drive(table, 1_000))
    for _ in range(args.passes):
        for app, found in ((front, runs[0]), (table, runs[1])):
            found.append(asyncio.run(_drive(app, args.requests)))
    front_us, table_us = statistics.median(runs[0]), statistics.median(runs[1])
    extra = table_us - front_us
    whole = 1e6 / args.gateway_rate
    print(f"in front of the app: {front_us:.1f} µs CPU a request (passes: {', '.join(f'{v:.1f}' for v in runs[0])})")
    print(f"in the route table:  {table_us:.1f} µs CPU a request (passes: {', '.join(f'{v:.1f}' for v in runs[1])})")
    share = f"{extra / whole:.1%} of a whole request at {args.gateway_rate:,.0f}/s"
    print(f"route table extra: {extra:.1f} µs a request = {share}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
