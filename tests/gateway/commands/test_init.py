"""`commerce-gateway init [DIR]`: the way in for `pip install` without a clone. It writes the config the
repository ships (one file: gateway/default_config.yaml, copied to ./config.yaml) and the data folder."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.gateway._server import cli

REPO = Path(__file__).resolve().parents[3]
TEMPLATE = REPO / "gateway" / "default_config.yaml"


def test_the_shipped_config_is_the_package_template() -> None:
    assert (REPO / "config.yaml").read_text() == TEMPLATE.read_text(), (
        "config.yaml and gateway/default_config.yaml (what `init` writes) must be the same file: copy the one "
        "you edited onto the other"
    )


def test_init_writes_the_commented_config_and_the_data_folder(tmp_path: Path) -> None:
    target = tmp_path / "shop-gateway"
    result = cli("init", str(target), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (target / "config.yaml").read_text() == TEMPLATE.read_text()
    assert (target / "data").is_dir()
    assert f"commerce-gateway serve --config {target / 'config.yaml'}" in result.stdout
    # The written config runs as it is, with its database in the new data folder.
    check = cli("--config", str(target / "config.yaml"), "check-config")
    assert (check.returncode, check.stderr) == (0, "")
    assert f"database {target / 'data' / 'gateway.db'}" in check.stdout


def test_init_never_overwrites_a_config(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("currency: EUR\n")
    result = cli("init", cwd=tmp_path)  # DIR defaults to the current folder
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"commerce-gateway init: {Path('config.yaml')} already exists; it was left as it is\n"
    assert (tmp_path / "config.yaml").read_text() == "currency: EUR\n"


def test_init_into_a_path_that_is_a_file_is_one_error_line(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("")
    result = cli("init", str(tmp_path / "taken"))
    assert result.returncode == 1
    assert result.stderr.startswith(f"commerce-gateway init: cannot set up {tmp_path / 'taken'}:")
    assert len(result.stderr.splitlines()) == 1


def test_the_wheel_carries_the_template(tmp_path: Path) -> None:
    """What `pip install commerce-gateway` installs: the template is package data."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    for package in ("gateway", "adapters", "normalizer", "store"):
        shutil.copytree(REPO / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), "."],
        cwd=source,
        check=True,
        capture_output=True,
    )
    [wheel] = tmp_path.glob("commerce_gateway-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read("gateway/default_config.yaml").decode() == TEMPLATE.read_text()
