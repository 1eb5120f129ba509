"""A deleted or replaced database never takes orders into the void: once the file the process opened is no
longer the one at the configured path, writes answer 503 `unavailable` and /healthz 503 until a restart. A
database that cannot be written at start (a read-only file system) stops the start with one clear line."""

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from tests.conftest import order, write_config
from tests.gateway._server import STARTUP_LIMIT_SECONDS, Server, cli, wait_done


def _database(config: Path) -> Path:
    return Path(yaml.safe_load(config.read_text())["database"])


def _refused(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "unavailable"
    assert "deleted or replaced" in error["message"]
    assert int(response.headers["retry-after"]) > 0


def _wait_unhealthy(client: httpx.Client) -> httpx.Response:
    """/healthz compares the files at most once a second by itself: poll it until it says 503 (bounded)."""
    deadline = time.monotonic() + STARTUP_LIMIT_SECONDS
    while (response := client.get("/healthz")).status_code == 200:
        assert time.monotonic() < deadline, "/healthz never noticed that the database file was replaced"
        time.sleep(0.05)
    return response


def test_a_deleted_database_refuses_orders_until_restarted(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with Server(config) as server, server.client() as client:
        accepted = client.post("/api/v1/orders", json=order("kept"))
        assert accepted.status_code == 202
        assert wait_done(client, accepted.json()["jobId"])["status"] == "done"

        shutil.rmtree(_database(config).parent)  # `rm -rf data/` while serving
        for number in range(5):  # the very first write after it already knows
            _refused(client.post("/api/v1/orders", json=order(f"void-{number}")))
        # The operator's writes too: a replay or a destination enabled is refused, never written to a new file.
        _refused(client.post(f"/api/v1/jobs/{accepted.json()['jobId']}/replay"))
        _refused(client.post("/api/v1/deliveries/msg_0/replay"))
        _refused(client.post("/api/v1/destinations/crm/enable"))
        _refused(client.get("/healthz"))
        server.terminate()

    with Server(config) as server, server.client() as client:  # a restart opens (creates) the file at the path
        assert client.get("/healthz").status_code == 200
        assert client.post("/api/v1/orders", json=order("fresh")).status_code == 202


def test_a_replaced_database_is_noticed_by_healthz_and_refuses_orders(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    path = _database(config)
    with Server(config) as server, server.client() as client:
        assert client.post("/api/v1/orders", json=order("first")).status_code == 202
        other = tmp_path / "restored.db"
        sqlite3.connect(other).close()
        os.replace(other, path)  # a backup moved over the live file
        _refused(_wait_unhealthy(client))
        _refused(client.post("/api/v1/orders", json=order("second")))


def _start_read_only(config: Path) -> subprocess.CompletedProcess[str]:
    """`serve` with the database's folder on a read-only file system: as root, a read-only bind mount in a
    mount namespace of the command's own (nothing outside it changes); otherwise the folder's permissions."""
    folder = _database(config).parent
    serve = [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--port", "1"]
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            return subprocess.run(serve, capture_output=True, text=True, timeout=STARTUP_LIMIT_SECONDS, check=False)
        finally:
            folder.chmod(0o755)
    script = f'mount --bind -o ro "{folder}" "{folder}" && exec "$@"'
    command = ["unshare", "--mount", "sh", "-c", script, "sh", *serve]
    return subprocess.run(command, capture_output=True, text=True, timeout=STARTUP_LIMIT_SECONDS, check=False)


def test_a_read_only_file_system_at_start_is_one_clear_line_and_a_failed_exit(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    assert cli("replay", "--all-dead", "--config", str(config)).returncode == 0  # the database exists
    result = _start_read_only(config)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"commerce-gateway: cannot open the database {_database(config)} for writing: ")
    assert "not writable" in line


def test_a_database_folder_that_cannot_be_created_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("a file where the data folder should be\n")
    config = write_config(tmp_path)
    result = cli("worker", "--config", str(config))
    # Known from the path alone, so it is a config error: check-config says it too, before anything starts.
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line == (
        f"commerce-gateway: config error: database: {tmp_path / 'data'} is a file, so no folder can be created"
        f" under it for {_database(config)}"
    )
