"""The README is true (STYLE rule 9): its two commands are the Makefile targets CI runs, and what it says they
do is what they do."""

import configparser
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from gateway import cli
from gateway.config import load
from store import queue
from store.db import connect
from store.schema import migrate

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def _commands(text: str) -> list[str]:
    """Command lines of the README's shell blocks (comments after `#` dropped)."""
    blocks = re.findall(r"```(?:sh|bash|shell)\n(.*?)```", text, flags=re.DOTALL)
    return [line.split("#")[0].strip() for block in blocks for line in block.splitlines() if line.strip()]


def _dry_run(target: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", target], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    return result.stdout.splitlines()


def test_ci_runs_the_readme_test_command() -> None:
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert "make test" in [line for line in ci if not line.startswith("#")]
    assert "make run" in _commands(README)
    assert "make test" in _commands(README)
    targets = re.findall(r"^([a-z][a-z-]*):", (REPO / "Makefile").read_text(), flags=re.MULTILINE)
    assert {"run", "test"} <= set(targets)


def test_make_test_runs_ruff_mypy_and_pytest() -> None:
    steps = _dry_run("test")
    for tool in ("ruff format --check", "ruff check", "mypy", "pytest"):
        assert any(f"/bin/{tool}" in step for step in steps), (tool, steps)


def test_make_run_serves_what_the_readme_says() -> None:
    # README: "serves ./config.yaml on http://127.0.0.1:8000 (SQLite under ./data)", key in data/api-key.
    serve = _dry_run("run")[-1].split()
    assert serve[0].endswith("/bin/commerce-gateway")
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["commerce-gateway"] == "gateway.cli:main"
    options = dict(zip(serve[2::2], serve[3::2], strict=True))
    assert serve[1] == "serve"
    assert options == {"--config": "config.yaml", "--host": "127.0.0.1", "--port": "8000"}
    urls = set(re.findall(r"https?://[^/\s\"]+", "\n".join(_commands(README))))
    assert urls == {"http://127.0.0.1:8000"}
    config = load(REPO / "config.yaml")
    assert config.database == REPO / "data" / "gateway.db"
    assert "export GATEWAY_API_KEY=$(cat data/api-key)" in _commands(README)
    assert config.api_keys == []  # so make run generates the key the README reads from data/api-key


def _block(language: str) -> str:
    [block] = re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)
    return str(block)


def test_make_run_takes_port_host_and_config() -> None:
    line = "make run PORT=8080 HOST=0.0.0.0 CONFIG=/etc/commerce-gateway/config.yaml"
    assert line in _commands(README)
    serve = _dry_run_with(line.split()[2:])[-1].split()
    assert dict(zip(serve[2::2], serve[3::2], strict=True)) == {
        "--config": "/etc/commerce-gateway/config.yaml",
        "--host": "0.0.0.0",
        "--port": "8080",
    }


def _dry_run_with(variables: list[str]) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    command = ["make", "--no-print-directory", "-n", "run", *variables]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=True).stdout.splitlines()


@pytest.mark.skipif(shutil.which("caddy") is None, reason="Caddy is not installed (.ci/run installs it)")
def test_the_caddyfile_is_valid(tmp_path: Path) -> None:
    caddyfile = tmp_path / "Caddyfile"
    caddyfile.write_text(_block("caddyfile"))
    env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    command = ["caddy", "validate", "--config", str(caddyfile), "--adapter", "caddyfile"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    # And a broken one is refused: the check is real.
    caddyfile.write_text(_block("caddyfile").replace("reverse_proxy", "reverse_proxi"))
    broken = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert broken.returncode != 0


def test_the_systemd_unit_runs_the_gateway_as_documented(tmp_path: Path) -> None:
    unit = configparser.ConfigParser(strict=True, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(_block("ini"))
    service = unit["Service"]
    program, *args = shlex.split(service["ExecStart"])
    assert program == "/opt/commerce-gateway/bin/commerce-gateway"
    parsed = cli._parser().parse_args(args)
    assert (parsed.command, parsed.config, parsed.host, parsed.port) == (
        "serve",
        f"{service['WorkingDirectory']}/config.yaml",
        "127.0.0.1",
        8000,
    )
    assert _block("caddyfile").split("reverse_proxy ")[1].split()[0] == f"{parsed.host}:{parsed.port}"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    # What `init` writes there is what the unit serves: check-config passes on it.
    init = subprocess.run(
        [sys.executable, "-m", "gateway", "init", str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert "Wrote" in init.stdout
    checked = subprocess.run(
        [sys.executable, "-m", "gateway", "check-config", "--config", str(tmp_path / "config.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr


@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="the sqlite3 shell is not installed (.ci/run installs it)")
def test_the_backup_command_copies_a_live_database(tmp_path: Path) -> None:
    [command] = [line for line in _commands(README) if line.startswith("sqlite3 ")]
    database, backup = tmp_path / "data" / "gateway.db", tmp_path / "backup.db"
    command = command.replace("/srv/commerce-gateway/data/gateway.db", str(database))
    command = command.replace("/var/backups/commerce-gateway.db", str(backup))
    conn = connect(database)
    migrate(conn)
    conn.execute("BEGIN")
    queue.insert(conn, queue.NewJob("commerce-order-backup", "order", "api", b"{}", 1))
    conn.execute("COMMIT")  # in the WAL, not yet checkpointed: the backup must still see it
    subprocess.run(shlex.split(command), check=True, capture_output=True, timeout=60)
    conn.close()
    copy = sqlite3.connect(backup)
    assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert copy.execute("SELECT job_id FROM jobs").fetchall() == [("commerce-order-backup",)]
    copy.close()
