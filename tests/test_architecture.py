"""The top-level folders are the architecture and imports point one way:
gateway -> adapters -> normalizer; gateway -> store -> normalizer; nothing imports gateway; adapters never touch
SQL. Inside gateway/, stages stack the same way: engine < pipeline < web and commands < cli."""

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
# What each part of gateway/ may import of gateway/ (the modules at gateway/'s top are listed by name).
BASE = {"gateway.config", "gateway.logs", "gateway.metrics", "gateway.signing"}
GATEWAY_ALLOWED = {
    "gateway.signing": set(),
    "gateway.config": {"gateway.config", "gateway.signing"},
    "gateway.logs": set(),
    "gateway.runtime": set(),
    "gateway.metrics": set(),  # the process's Prometheus series: the worker observes, web and cli serve them
    "gateway.engine": {"gateway.engine"} | BASE,
    "gateway.pipeline": {"gateway.pipeline", "gateway.engine"} | BASE,
    "gateway.outbound": {"gateway.outbound", "gateway.pipeline"} | BASE,
    "gateway.web": {"gateway.web", "gateway.outbound", "gateway.pipeline", "gateway.engine"} | BASE,
    "gateway.commands": {"gateway.commands", "gateway.outbound", "gateway.pipeline", "gateway.engine"} | BASE,
}


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def imported_packages(path: Path) -> set[str]:
    return {name.split(".")[0] for name in imported_modules(path)}


def gateway_part(module: str) -> str | None:
    """`gateway.web.app.create_app` -> `gateway.web`; `gateway.config.load` -> `gateway.config`."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "gateway" and len(parts) > 1 else None


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_point_one_way(package: str) -> None:
    for path in sorted((ROOT / package).rglob("*.py")):
        wrong = (imported_packages(path) & PACKAGES) - ALLOWED[package]
        assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"


@pytest.mark.parametrize("part", sorted(GATEWAY_ALLOWED))
def test_gateway_stages_stack(part: str) -> None:
    where = ROOT / part.replace(".", "/")
    paths = sorted(where.rglob("*.py")) if where.is_dir() else [where.with_suffix(".py")]
    assert paths and all(path.exists() for path in paths), f"{part} is gone: update the layout here"
    for path in paths:
        used = {gateway_part(name) for name in imported_modules(path)} - {None}
        wrong = {name for name in used if name not in GATEWAY_ALLOWED[part] and name in GATEWAY_ALLOWED}
        assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(n for n in wrong if n)}"


def test_every_gateway_part_has_a_place() -> None:
    """A new package or top-level module in gateway/ gets its row above, so the stacking stays checked."""
    tops = {f"gateway.{p.stem}" for p in (ROOT / "gateway").glob("*.py")} | {
        f"gateway.{p.name}" for p in (ROOT / "gateway").iterdir() if (p / "__init__.py").exists()
    }
    unplaced = tops - set(GATEWAY_ALLOWED) - {"gateway.__init__", "gateway.__main__", "gateway.cli"}
    assert not unplaced, f"place {sorted(unplaced)} in GATEWAY_ALLOWED"


def test_adapters_never_touch_sql() -> None:
    for path in sorted((ROOT / "adapters").rglob("*.py")):
        assert not {"sqlite3", "sqlite_utils"} & imported_packages(path), f"{path.relative_to(ROOT)} uses SQL"
