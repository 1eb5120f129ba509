"""How fast the operator page and the job lists answer over a big database: 1,000,000 jobs by default.

Setup (not timed): a fresh SQLite file with the gateway's schema and `--jobs` job rows written with direct SQL in
large transactions: 99% done, 0.5% dead, 0.2% failed, 0.3% queued, over three sources (api 60%, shop 35%,
woo 5%); failed attempts (three per dead job, one per failed job and per 50th done job); 100,000 events
recorded by the newest done jobs; one subscriber with 50 orders and 200 events. No ANALYZE (a gateway's
database has no statistics either).

Timed: the real app (Starlette's TestClient, no worker) after an API-key login, each page `--repeat` times;
it prints the median and the slowest answer of each, in milliseconds.

    python bench/admin.py                 # 1,000,000 jobs (about a minute to build)
    python bench/admin.py --jobs 20000    # a smoke run
"""

import argparse
import json
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from starlette.testclient import TestClient

from gateway.config import Config
from gateway.web.app import create_app
from store.db import connect
from store.schema import migrate

API_KEY = "bench-key-0123456789abcdef"
EMAIL = "busy.buyer@example.com"
_SOURCES = (("api", 0.60), ("shop", 0.95), ("woo", 1.0))
_STATUSES = (("dead", 0.005), ("failed", 0.007), ("queued", 0.010))


def _pick(value: float, table: tuple[tuple[str, float], ...], default: str) -> str:
    return next((name for name, edge in table if value < edge), default)


def build(database: Path, jobs: int) -> None:
    rng = random.Random(0)
    conn = connect(database)
    migrate(conn)
    started = time.perf_counter()
    now = time.time_ns() // 1000
    first = now - jobs * 1000
    rows = []
    for i in range(jobs):
        source = _pick(rng.random(), _SOURCES, "woo")
        status = _pick(rng.random(), _STATUSES, "done")
        received = first + i * 1000
        body = json.dumps({"orderId": f"o-{i}"}).encode() if source == "api" else b'{"id": 1}'
        rows.append(
            (
                f"commerce-order-{received:013x}{i:06x}",
                "order" if source == "api" else "webhook",
                source,
                None if source == "api" else "orders/create",
                body,
                received,
                status,
                3 if status == "dead" else 0 if status == "queued" else 1,
                received if status in ("queued", "done", "dead") else now + 60_000_000,
                "TranslationError: unexpected shape" if status in ("dead", "failed") else None,
                received + 5000 if status in ("done", "dead") else None,
            )
        )
        if len(rows) == 50_000 or i == jobs - 1:
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT INTO jobs (job_id, kind, source, topic, body, received_at, status, attempts, run_at, error,"
                " finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            conn.execute("COMMIT")
            rows = []
    conn.execute("BEGIN")
    conn.execute(
        "INSERT INTO subscribers (email, attributes, orders_count, total_spent_cents, created_at, updated_at)"
        " VALUES (?, '{}', 50, 500000, ?, ?)",
        (EMAIL, now, now),
    )
    subscriber = conn.execute("SELECT id FROM subscribers WHERE email = ?", (EMAIL,)).fetchone()[0]
    for n in range(50):
        conn.execute(
            "INSERT INTO orders (source, order_id, provider, email, total_cents, currency, ordered_at, statuses,"
            " cancelled, fulfilled, refunded_cents, version, created_at, updated_at)"
            " VALUES ('api', ?, 'api', ?, 10000, 'USD', '2026-06-01T12:00:00.000Z', '[\"placed\"]', 0, 0, 0, 1, ?, ?)",
            (f"busy-{n}", EMAIL, now, now),
        )
    done = conn.execute(
        "SELECT job_id, source FROM jobs WHERE status = 'done' ORDER BY id DESC LIMIT 100000"
    ).fetchall()
    conn.executemany(
        "INSERT INTO events (subscriber_id, name, properties, occurred_at, dedup_key, source, order_id, job_id)"
        " VALUES (?, 'ecommerce.order_placed', '{}', ?, ?, ?, ?, ?)",
        [(subscriber, now, f"k-{n}", source, f"o-{n}", job_id) for n, (job_id, source) in enumerate(done)],
    )
    # Failed attempts: three for each dead job, one for each failed one and for one done job in 50.
    conn.execute(
        "INSERT INTO job_attempts (job, attempt, at, error, next_attempt_at)"
        " SELECT j.id, n.value, j.received_at + n.value * 1000, 'TranslationError: unexpected shape',"
        " CASE WHEN j.status = 'dead' AND n.value = 3 THEN NULL ELSE j.received_at + n.value * 1000 + 500 END"
        " FROM jobs AS j JOIN json_each('[1, 2, 3]') AS n ON n.value <= CASE WHEN j.status = 'dead' THEN 3 ELSE 1 END"
        " WHERE j.status IN ('dead', 'failed') OR (j.status = 'done' AND j.id % 50 = 0) ORDER BY j.id, n.value"
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    print(f"built {jobs:,} jobs in {time.perf_counter() - started:.1f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20, help="answers timed per page (default 20)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-admin-") as tmp:
        database = Path(tmp) / "gateway.db"
        build(database, args.jobs)
        config = Config.model_validate({"database": str(database), "api_keys": [API_KEY]})
        app = create_app(config, {}, [API_KEY], run_worker=False)
        with TestClient(app, client=("127.0.0.1", 50000)) as client:
            form = client.get("/admin/login").text
            token = re.search(r'name="csrf" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
            assert client.post("/admin/login", data={"csrf": token, "key": API_KEY}).status_code == 200
            dead = client.get("/api/v1/jobs?status=dead&limit=1", headers={"Authorization": f"Bearer {API_KEY}"})
            dead_id = dead.json()["jobs"][0]["jobId"]
            newest = client.get("/api/v1/jobs?limit=1", headers={"Authorization": f"Bearer {API_KEY}"})
            cursor = newest.json()["nextCursor"]
            done = client.get("/api/v1/jobs?status=done&limit=1", headers={"Authorization": f"Bearer {API_KEY}"})
            done_id = done.json()["jobs"][0]["jobId"]
            pages = [
                "/admin",
                "/admin/jobs",
                "/admin/jobs?status=dead",
                "/admin/jobs?status=failed&source=api",
                "/admin/jobs?status=done&source=woo",
                "/admin/jobs?source=woo",
                f"/admin/jobs?cursor={cursor}",
                f"/admin/jobs/{dead_id}",
                f"/admin/jobs/{done_id}",
                f"/admin/subscribers?email={EMAIL}",
                "/api/v1/jobs?status=queued&limit=100",
                "/api/v1/jobs?source=shop&limit=100",
                "/metrics",
            ]
            print(f"{'page':<45} {'median ms':>10} {'max ms':>8}", flush=True)
            for page in pages:
                times = []
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    response = client.get(
                        page, headers={"Authorization": f"Bearer {API_KEY}"} if "/api/" in page else {}
                    )
                    times.append((time.perf_counter() - started) * 1000)
                    assert response.status_code == 200, (page, response.status_code, response.text[:200])
                print(f"{page[:45]:<45} {statistics.median(times):>10.1f} {max(times):>8.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
