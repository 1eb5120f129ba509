"""The README is true (STYLE rule 9): its two commands are the Makefile targets CI runs, and what it says they
do is what they do."""

import os
import re
import subprocess
import tomllib
from pathlib import Path

from gateway.config import load

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
