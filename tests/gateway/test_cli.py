"""The `commerce-gateway` command as an operator runs it: check-config, replay, the generated API key, and
the log stream (JSON lines on stderr, no secrets, no customer data)."""

import base64
import hashlib
import hmac
import json
import os
import re
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.cli import main
from store import queue
from tests.conftest import API_KEY, write_config
from tests.gateway._server import STARTUP_LIMIT_SECONDS, Process, Server, cli, wait_done

REPO = Path(__file__).resolve().parents[2]


def test_check_config_accepts_the_shipped_config(tmp_path: Path) -> None:
    result = cli("--config", str(REPO / "config.yaml"), "check-config", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    # The console script is the same command.
    script = Path(sys.executable).parent / "commerce-gateway"
    same = subprocess.run(
        [script, "check-config", "--config", str(REPO / "config.yaml")], capture_output=True, text=True, check=False
    )
    assert (same.returncode, same.stdout, same.stderr) == (0, result.stdout, "")
    assert result.stdout.startswith(
        f"{REPO / 'config.yaml'}: OK (0 source(s), database {REPO / 'data' / 'gateway.db'})"
    )


BROKEN = [
    ({"databse": "./data/gateway.db"}, "databse: unknown key"),
    ({"worker": {"lease_secs": 1}}, "worker.lease_secs: unknown key"),
    ({"api_keys": ["${CG_TEST_UNSET_KEY}"]}, "api_keys[0]: environment variable CG_TEST_UNSET_KEY is not set"),
    ({"currency": "XYZ"}, "currency: 'XYZ' is not an ISO 4217 currency code"),
    ({"fx_rates": {"EURO": 1.08}}, "fx_rates: 'EURO' is not an ISO 4217 currency code"),
    ({"api_keys": ["too-short"]}, "api_keys: each API key must be at least 16 characters"),
    (
        {"sources": {"my-shop": {"type": "no-such-platform", "secrets": ["s"]}}},
        "sources.my-shop.type: 'no-such-platform' is not a known source type",
    ),
]


def test_every_command_refuses_a_broken_config(tmp_path: Path) -> None:
    config = write_config(tmp_path, databse="./data/gateway.db")
    for command in ("check-config", "serve", "worker", "replay"):
        result = cli("--config", str(config), command, *(["--all-dead"] if command == "replay" else []))
        assert (result.returncode, result.stdout) == (2, ""), command
        assert result.stderr == "commerce-gateway: config error: databse: unknown key\n"
    for settings, message in BROKEN[2:4]:  # a missing ${ENV} variable, an unknown currency
        result = cli("--config", str(write_config(tmp_path, **settings)), "check-config", env=_without_test_env())
        assert (result.returncode, result.stdout) == (2, "")
        assert result.stderr == f"commerce-gateway: config error: {message}\n"
    assert not (tmp_path / "data").exists()


def _without_test_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "CG_TEST_UNSET_KEY"}


@pytest.mark.parametrize(("settings", "message"), BROKEN)
def test_check_config_names_the_bad_key(
    tmp_path: Path,
    settings: dict[str, Any],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The same entry point as the process (python -m gateway), run in-process to keep the table fast.
    monkeypatch.delenv("CG_TEST_UNSET_KEY", raising=False)
    assert main(["--config", str(write_config(tmp_path, **settings)), "check-config"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"commerce-gateway: config error: {message}"), err
    assert "too-short" not in err  # a rejected secret is named by its key, never shown


def test_env_reference_resolves(tmp_path: Path) -> None:
    config = write_config(tmp_path, api_keys=["${CG_TEST_API_KEY}"])
    result = cli("--config", str(config), "check-config", env={**os.environ, "CG_TEST_API_KEY": API_KEY})
    assert (result.returncode, result.stderr) == (0, "")
    assert API_KEY not in result.stdout


def _insert(conn: sqlite3.Connection, job_id: str, body: dict[str, Any]) -> None:
    with conn:
        queue.insert(conn, queue.NewJob(job_id, "order", "api", json.dumps(body).encode(), time.time_ns() // 1000))


def _order(order_id: str, email: str, **fields: Any) -> dict[str, Any]:
    return {"orderId": order_id, "totalCents": 1250, "currency": "USD", "customer": {"email": email}, **fields}


def _jobs(conn: sqlite3.Connection) -> dict[str, tuple[str, int, str | None]]:
    return {
        row[0]: (row[1], row[2], row[3]) for row in conn.execute("SELECT job_id, status, attempts, error FROM jobs")
    }


def _wait(conn: sqlite3.Connection, worker: Process, job_id: str, status: str) -> None:
    deadline = time.monotonic() + STARTUP_LIMIT_SECONDS
    while _jobs(conn).get(job_id, ("",))[0] != status:
        worker.check_alive()
        assert time.monotonic() < deadline, _jobs(conn)
        time.sleep(0.02)


def test_replay_one_dead_job_and_all_dead(tmp_path: Path) -> None:
    config = write_config(tmp_path, worker={"max_attempts": 1, "poll_seconds": 0.02})
    # On a fresh database replay creates the schema and finds nothing to do.
    result = cli("--config", str(config), "replay", "--all-dead")
    assert (result.returncode, result.stdout) == (0, "nothing to replay\n")

    # Canonical jobs whose stored body is not a valid order (as an older, buggier gateway might have queued):
    # retrying cannot help, so they go dead at once, with the reason kept, while the valid one is done.
    conn = sqlite3.connect(yaml.safe_load(config.read_text())["database"], isolation_level=None)
    _insert(conn, "commerce-order-dead-1", _order("o-1", "first@example.com", totalCents="12.50"))
    _insert(conn, "commerce-order-dead-2", _order("o-2", "second@example.com", items=[{"productId": "p"}]))
    _insert(conn, "commerce-order-fine", _order("o-3", "third@example.com"))
    with Process(config, "worker") as worker:
        for job_id, status in (("commerce-order-dead-1", "dead"), ("commerce-order-dead-2", "dead")):
            _wait(conn, worker, job_id, status)
        _wait(conn, worker, "commerce-order-fine", "done")
        jobs = _jobs(conn)
        assert jobs["commerce-order-fine"] == ("done", 1, None)
        assert jobs["commerce-order-dead-1"] == (
            "dead",
            1,
            "invalid canonical order: totalCents: Input should be a valid integer",
        )
        assert jobs["commerce-order-dead-2"][:2] == ("dead", 1)
        assert str(jobs["commerce-order-dead-2"][2]).startswith("invalid canonical order: items.0.title:")

        # The fix (here: the stored body repaired by hand), then replay while the worker runs: the job finishes.
        with conn:
            conn.execute(
                "UPDATE jobs SET body = ? WHERE job_id = 'commerce-order-dead-1'",
                (json.dumps(_order("o-1", "first@example.com")).encode(),),
            )
        result = cli("--config", str(config), "replay", "commerce-order-dead-1")
        assert (result.returncode, result.stdout) == (0, "re-queued 1 job(s)\n")
        _wait(conn, worker, "commerce-order-dead-1", "done")
        assert _jobs(conn)["commerce-order-dead-1"] == ("done", 1, None)
        assert _jobs(conn)["commerce-order-dead-2"][:2] == ("dead", 1)  # one job replayed, not all
        # A job that is not dead says what it is; a job id that does not exist says so (a typo, a pruned job).
        result = cli("--config", str(config), "replay", "commerce-order-dead-1")
        assert (result.returncode, result.stdout, result.stderr) == (
            1,
            "",
            "commerce-gateway replay: job commerce-order-dead-1 is done; only dead or failed jobs are replayed\n",
        )
        result = cli("--config", str(config), "replay", "commerce-order-unknown")
        assert (result.returncode, result.stdout, result.stderr) == (
            1,
            "",
            "commerce-gateway replay: no job 'commerce-order-unknown' exists\n",
        )

        finished = conn.execute("SELECT finished_at FROM jobs WHERE job_id = 'commerce-order-dead-2'").fetchone()
        result = cli("--config", str(config), "replay", "--all-dead")
        assert (result.returncode, result.stdout) == (0, "re-queued 1 job(s)\n")
        _wait(conn, worker, "commerce-order-dead-2", "dead")  # ran again, failed the same way
        assert conn.execute("SELECT finished_at FROM jobs WHERE job_id = 'commerce-order-dead-2'").fetchone() > finished
        assert _jobs(conn)["commerce-order-dead-2"][:2] == ("dead", 1)
        assert worker.terminate() == 0
    assert conn.execute("SELECT email, orders_count, total_spent_cents FROM subscribers ORDER BY email").fetchall() == [
        ("first@example.com", 1, 1250),
        ("third@example.com", 1, 1250),
    ]
    conn.close()
    logs = worker.log_lines()
    assert [line["job"] for line in logs if line["message"] == "job dead"] == [
        "commerce-order-dead-1",
        "commerce-order-dead-2",
        "commerce-order-dead-2",
    ]
    assert [line["message"] for line in logs][-1] == "worker stopped"
    assert "@example.com" not in worker.stderr() and "12.50" not in worker.stderr()


def test_generated_api_key_printed_once_and_logs_carry_no_secret_or_customer(tmp_path: Path) -> None:
    config = write_config(tmp_path, api_keys=None)
    key_file = tmp_path / "data" / "api-key"
    with Server(config, api_key="unknown-yet", name="first") as first:
        printed = re.findall(r"^    (cg_\S+)$", first.stdout(), flags=re.MULTILINE)
    assert len(printed) == 1
    key = printed[0]
    assert key_file.read_text() == key + "\n"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert "shown only this once" in first.stdout()

    emails = ["alice.private@example.com", "bob.private@example.org"]
    with Server(config, api_key=key, name="second") as second, second.client() as client:
        assert second.stdout() == ""  # reused, not printed again
        job_ids = []
        for index, email in enumerate(emails):
            response = client.post("/api/v1/orders", json=_order(f"o-{index}", email, customer={"email": email}))
            assert response.status_code == 202, response.text
            job_ids.append(response.json()["jobId"])
        assert [wait_done(client, job_id)["status"] for job_id in job_ids] == ["done", "done"]
        rejected = client.post(
            "/api/v1/orders",
            json=_order("o-9", "carol.private@example.net"),
            headers={"Authorization": f"Bearer {key}x"},
        )
        assert rejected.status_code == 401
        invalid = client.post("/api/v1/orders", json=_order("o-8", "dave.private@@example.net"))
        assert invalid.status_code == 422
        assert client.get(f"/api/v1/subscribers/{emails[0]}").status_code == 200
        # uvicorn shuts down cleanly on SIGTERM, then exits by that signal, as service managers expect.
        assert second.terminate() == -signal.SIGTERM

    for server in (first, second):
        stderr = server.stderr()
        lines = server.log_lines()  # each line parses as one JSON object
        assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
        assert key not in stderr
        assert "@example" not in stderr and "private" not in stderr
        assert "Traceback" not in stderr
    assert "gateway stopped" in [line["message"] for line in second.log_lines()]


def test_webhook_of_a_removed_source_goes_dead_and_replays_once_it_is_back(tmp_path: Path) -> None:
    secret = "shpss_process-test-secret"
    shop = {"my-shop": {"type": "shopify", "secrets": [secret]}}
    body = (REPO / "tests" / "fixtures" / "shopify" / "orders_create.json").read_bytes()
    signed = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "X-Shopify-Hmac-Sha256": base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode(),
    }
    config = write_config(tmp_path, sources=shop, worker={"poll_seconds": 0.02})
    with Server(config, "--no-worker", name="accepting") as server, server.client() as client:
        response = client.post("/webhooks/my-shop", content=body, headers=signed)
        assert response.status_code == 200, response.text
        job_id = response.json()["jobId"]

    # The merchant removes the source while its delivery waits: the worker cannot translate it, so it is dead,
    # with its raw body kept.
    write_config(tmp_path, sources={}, worker={"poll_seconds": 0.02})
    conn = sqlite3.connect(yaml.safe_load(config.read_text())["database"], isolation_level=None)
    with Process(config, "worker") as worker:
        _wait(conn, worker, job_id, "dead")
        assert worker.terminate() == 0
    assert _jobs(conn)[job_id] == ("dead", 1, "Permanent: source 'my-shop' is no longer configured")
    assert conn.execute("SELECT body FROM jobs WHERE job_id = ?", (job_id,)).fetchone()[0] == body

    # Configured again, replayed: processed exactly as if it had never failed.
    write_config(tmp_path, sources=shop)
    result = cli("replay", job_id, "--config", str(config))
    assert (result.returncode, result.stdout) == (0, "re-queued 1 job(s)\n")
    with Server(config, name="restarted") as server, server.client() as client:
        assert wait_done(client, job_id)["status"] == "done"
        assert client.get("/api/v1/subscribers/jane.buyer@example.com").json()["attributes"] == {
            "ltv": 88.5,
            "totalSpent": 88.5,
            "ordersCount": 1,
            "aov": 88.5,
        }
        order = client.get("/api/v1/orders/9007199254740993", params={"source": "my-shop"}).json()
        assert (order["status"], order["totalCents"], order["currency"]) == ("placed", 8850, "USD")
        # The platform retrying the same delivery changes nothing.
        assert client.post("/webhooks/my-shop", content=body, headers=signed).json() == {
            "success": True,
            "duplicate": True,
        }
    conn.close()
    for process in ("accepting", "worker", "restarted"):
        stderr = (tmp_path / f"{process}.stderr").read_text()
        assert all(json.loads(line) for line in stderr.splitlines())
        assert secret not in stderr and "jane" not in stderr.lower() and "Traceback" not in stderr


def test_serve_runs_the_engine_it_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`serve` builds the engine once, when it checks the config (every segment compiled at start, once), and
    the app it serves runs that engine."""
    import uvicorn

    from gateway import engine, runtime
    from gateway.web import service

    built: list[object] = []

    def counted(config: Any) -> Any:
        built.append(engine_build(config))
        return built[-1]

    engine_build = engine.build_engine
    monkeypatch.setattr(engine, "build_engine", counted)
    monkeypatch.setattr(service, "build_engine", counted)
    served: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **settings: served.append(app))
    monkeypatch.setattr(runtime, "prepare", lambda serving: None)  # the test process keeps its own settings
    monkeypatch.setattr(runtime, "freeze_heap", lambda: None)
    config = write_config(tmp_path, segments={"vip": {"attribute": "totalSpent", "gte": 500}})
    assert main(["--config", str(config), "serve", "--port", "1"]) == 0
    assert len(built) == 1
    assert served[0].state.gateway.engine is built[0]
