"""Test harness: the real app (Starlette TestClient, lifespan run), a real SQLite file in a temp folder, and a
worker drained synchronously so every test sees its jobs processed before it asserts."""

import json
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from starlette.testclient import TestClient

from gateway.config import Config, build_adapters, load
from gateway.engine import build_engine
from gateway.pipeline.worker import Worker
from gateway.pipeline.write_turns import WriteTurns
from gateway.web.app import create_app

API_KEY = "test-key-0123456789abcdef"
FIXTURES = Path(__file__).parent / "fixtures"
RAM_FOLDER = "/dev/shm"
RAM_FOLDER_MIN_FREE_BYTES = 2 * 1024**3


def _temp_files_in_ram() -> None:
    """Test folders (tmp_path, tempfile, the servers the tests start) go to RAM where the system has enough of it,
    unless TMPDIR says where. Every commit of a real SQLite file fsyncs (durability: full); on disk those fsyncs
    were about half of the suite's time, and no test is about a power cut (a SIGKILL keeps the page cache)."""
    if "TMPDIR" in os.environ or not os.path.isdir(RAM_FOLDER) or not os.access(RAM_FOLDER, os.W_OK):
        return
    stat = os.statvfs(RAM_FOLDER)
    if stat.f_bavail * stat.f_frsize >= RAM_FOLDER_MIN_FREE_BYTES:
        os.environ["TMPDIR"] = RAM_FOLDER  # inherited by subprocesses and pytest-xdist's workers
        tempfile.tempdir = None  # gettempdir() reads TMPDIR again


_temp_files_in_ram()


def write_config(folder: Path, **overrides: Any) -> Path:
    """A config.yaml in `folder` with its database in `folder/data`; keys given as None are left out."""
    settings: dict[str, Any] = {
        "database": str(folder / "data" / "gateway.db"),
        "currency": "USD",
        "fx_rates": {"EUR": 1.08},
        "api_keys": [API_KEY],
        "sources": {},
        # The fixtures' orders are dated mid-2026: nothing is historical by its age unless a test says so.
        "lifecycle": {"historical_after": "36500d"},
    }
    settings.update(overrides)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in settings.items() if v is not None}))
    return path


class Harness:
    """The app without its own worker thread, and a worker run by hand (`drain`): `serve`'s worker, or with
    `standalone` the `worker` command's (leases, short chunks)."""

    def __init__(self, client: TestClient, config: Config, standalone: bool = False) -> None:
        self.client = client
        self.config = config
        turns = None if standalone else WriteTurns()
        engine = build_engine(config)
        gateway = client.app.state.gateway
        self.worker = Worker(config, gateway.adapters, engine, turns, gateway.job_metrics)
        self.headers = {"Authorization": f"Bearer {API_KEY}"}

    def post_order(self, body: Any, **kwargs: Any) -> Any:
        if isinstance(body, dict | list):
            body = json.dumps(body)
        return self.client.post("/api/v1/orders", content=body, headers={**self.headers, **kwargs})

    def drain(self) -> int:
        """Process every runnable job and fire every timer due now; returns how many jobs were taken."""
        total = 0
        while True:
            processed = self.worker.run_once()
            total += processed
            if not processed and not self.worker.fire_timers():
                return total

    def make_retries_due(self) -> None:
        with self.db() as conn:
            conn.execute("UPDATE jobs SET run_at = 0 WHERE status = 'failed'")

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(path, headers=self.headers, params=params)

    def subscriber(self, email: str) -> dict[str, Any]:
        response = self.get(f"/api/v1/subscribers/{email}")
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def attributes(self, email: str) -> dict[str, Any]:
        attributes: dict[str, Any] = self.subscriber(email)["attributes"]
        return attributes

    def events(self, email: str) -> list[dict[str, Any]]:
        response = self.get(f"/api/v1/subscribers/{email}/events")
        assert response.status_code == 200, response.text
        events: list[dict[str, Any]] = response.json()["events"]
        return events

    def job(self, job_id: str) -> dict[str, Any]:
        response = self.get(f"/api/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        return job

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.config.database)


@pytest.fixture
def make_harness(tmp_path: Path) -> Iterator[Any]:
    """Build a harness with config overrides (sources, fx_rates, …); closed at the end of the test."""
    stack: list[TestClient] = []

    def build(standalone: bool = False, **overrides: Any) -> Harness:
        config = load(write_config(tmp_path, **overrides))
        app = create_app(config, build_adapters(config), list(config.api_keys), run_worker=False)
        client = TestClient(app)
        client.__enter__()
        stack.append(client)
        return Harness(client, config, standalone)

    yield build
    for client in stack:
        client.__exit__(None, None, None)


@pytest.fixture
def harness(make_harness: Any) -> Harness:
    built: Harness = make_harness()
    return built


def order(order_id: str = "order-1001", **fields: Any) -> dict[str, Any]:
    """The seed's Push Order example, with any field replaced."""
    body: dict[str, Any] = json.loads((FIXTURES / "api" / "seed-order.json").read_text())
    body["orderId"] = order_id
    body.update(fields)
    return body
