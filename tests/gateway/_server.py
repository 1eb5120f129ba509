"""Real processes for process-level tests: `python -m gateway …` as a subprocess on a free loopback port, with
its stderr kept in a file (the log stream), plus a read-only look into its SQLite file."""

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import httpx2
import yaml

from tests.conftest import API_KEY

HOST = "127.0.0.1"
STARTUP_LIMIT_SECONDS = 60.0  # a safety net against a hung start, not a timing assertion


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run one short CLI command to completion."""
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=STARTUP_LIMIT_SECONDS,
        check=False,
    )


class Process:
    """One long-running `python -m gateway <command>`; stdout and stderr go to files next to the config."""

    def __init__(self, config: Path, command: str, *args: str, name: str | None = None) -> None:
        self.config = config
        folder = config.parent
        label = name or command
        self.stdout_path = folder / f"{label}.stdout"
        self.stderr_path = folder / f"{label}.stderr"
        with self.stdout_path.open("ab") as out, self.stderr_path.open("ab") as err:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "gateway", command, "--config", str(config), *args],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                cwd=folder,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def __enter__(self) -> "Process":
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()  # whatever the test did, no process outlives it

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stdout(self) -> str:
        return self.stdout_path.read_text()

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def log_lines(self) -> list[dict[str, Any]]:
        """Every line of stderr parsed as one JSON object (fails on a line that is not)."""
        return [json.loads(line) for line in self.stderr().splitlines() if line.strip()]

    def wait_for_log(self, message: str) -> None:
        deadline = time.monotonic() + STARTUP_LIMIT_SECONDS
        while not any(entry.get("message") == message for entry in self.log_lines()):
            self.check_alive()
            if time.monotonic() > deadline:
                raise AssertionError(f"no log line {message!r}; stderr:\n{self.stderr()}")
            time.sleep(0.05)

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            raise AssertionError(f"process exited with {self.popen.returncode}; stderr:\n{self.stderr()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, like a power cut of the process."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=STARTUP_LIMIT_SECONDS)

    def terminate(self) -> int:
        """SIGTERM and wait for a clean exit; returns the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout=STARTUP_LIMIT_SECONDS)


class Server(Process):
    """`serve` on a free loopback port, started and waited for until GET /healthz answers 200."""

    def __init__(self, config: Path, *args: str, name: str = "serve", api_key: str = API_KEY) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.headers = {"Authorization": f"Bearer {api_key}"}
        super().__init__(config, "serve", "--host", HOST, "--port", str(self.port), *args, name=name)
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_LIMIT_SECONDS
        while True:
            self.check_alive()
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"serve did not become healthy; stderr:\n{self.stderr()}")
            time.sleep(0.05)

    def __enter__(self) -> "Server":
        return self

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=30)

    def async_client(self, connections: int = 8) -> httpx2.AsyncClient:
        # httpx2 (httpx's API): httpx 0.28's async pool retries a failing `import sniffio` on every request,
        # which caps a load client near 150 requests/s here; httpx2 does not.
        return httpx2.AsyncClient(
            base_url=self.url,
            headers=self.headers,
            timeout=30,
            limits=httpx2.Limits(max_connections=connections, max_keepalive_connections=connections),
        )


def database(config: Path) -> sqlite3.Connection:
    """A read-only connection to the config's database, for looking at jobs, events and the ledger."""
    path = yaml.safe_load(config.read_text())["database"]
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, timeout=30)
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def job_counts(conn: sqlite3.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT status, count(*) FROM jobs GROUP BY status").fetchall())


def wait_done(client: httpx.Client, job_id: str) -> dict[str, Any]:
    """Poll GET /api/v1/jobs/{jobId} until the job is finished (done or dead); returns its last state."""
    deadline = time.monotonic() + STARTUP_LIMIT_SECONDS
    while True:
        response = client.get(f"/api/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        if job["status"] in ("done", "dead"):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job['status']}")
        time.sleep(0.02)


def wait_all_done(conn: sqlite3.Connection, job_ids: set[str], process: Process | None = None) -> None:
    """Wait until every job in the database is done, and every id in `job_ids` is among them."""
    deadline = time.monotonic() + STARTUP_LIMIT_SECONDS
    while True:
        counts = job_counts(conn)
        if set(counts) <= {"done"}:
            break
        if process is not None:
            process.check_alive()
        if time.monotonic() > deadline:
            raise AssertionError(f"jobs not finished: {counts}")
        time.sleep(0.05)
    done = {row[0] for row in conn.execute("SELECT job_id FROM jobs WHERE status = 'done'")}
    assert job_ids <= done, f"{len(job_ids - done)} accepted jobs are missing"
