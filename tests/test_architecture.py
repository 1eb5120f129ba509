"""STYLE rule 1: the top-level folders are the architecture and imports point one way.
gateway -> adapters -> normalizer; gateway -> store -> normalizer; nothing imports gateway; adapters never touch
SQL."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
ALLOWED = {
    "gateway": {"gateway", "adapters", "normalizer", "store"},
    "adapters": {"adapters", "normalizer"},
    "store": {"store", "normalizer"},
    "normalizer": {"normalizer"},
}
PACKAGES = set(ALLOWED)


def imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_point_one_way(package: str) -> None:
    for path in sorted((ROOT / package).rglob("*.py")):
        wrong = (imported_packages(path) & PACKAGES) - ALLOWED[package]
        assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"


def test_adapters_never_touch_sql() -> None:
    for path in sorted((ROOT / "adapters").rglob("*.py")):
        assert not {"sqlite3", "sqlite_utils"} & imported_packages(path), f"{path.relative_to(ROOT)} uses SQL"
