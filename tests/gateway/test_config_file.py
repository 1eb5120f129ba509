"""The shipped config.yaml is a working start: every commented example in it loads when uncommented (alone or
all together), the way its header says to uncomment one."""

import re
from pathlib import Path

from gateway.config import build_adapters, load

REPO = Path(__file__).resolve().parents[2]
SHIPPED = (REPO / "config.yaml").read_text()
# `#` directly followed by a setting or by its indentation marks an example; `# ` and text is prose.
EXAMPLE = re.compile(r"^#(?=\S|  )")


def _example_groups(lines: list[str]) -> list[list[int]]:
    """Runs of consecutive example lines: each is one thing a merchant would uncomment."""
    groups: list[list[int]] = []
    for index, line in enumerate(lines):
        if EXAMPLE.match(line):
            if groups and groups[-1][-1] == index - 1:
                groups[-1].append(index)
            else:
                groups.append([index])
    return groups


def _uncommented(lines: list[str], indexes: set[int]) -> str:
    return "\n".join(line[1:] if index in indexes else line for index, line in enumerate(lines)) + "\n"


def _env() -> dict[str, str]:
    env = {name: f"{name.lower()}-test-value-0123456789" for name in re.findall(r"\$\{(\w+)\}", SHIPPED)}
    env["CRM_WEBHOOK_SECRET"] = (
        "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="  # a destination's secret has a format
    )
    return env


def test_every_commented_example_loads_when_uncommented(tmp_path: Path) -> None:
    lines = SHIPPED.splitlines()
    groups = _example_groups(lines)
    assert len(groups) >= 7, groups  # api_keys, settings, two platforms, woo api, three custom platforms
    for group in [*groups, [i for g in groups for i in g]]:
        path = tmp_path / "config.yaml"
        path.write_text(_uncommented(lines, set(group)))
        config = load(path, env=_env())  # raises ConfigError naming the key if an example is wrong
        build_adapters(config)
    assert sorted(config.sources) == [
        "lemon-squeezy",
        "my-shop",
        "my-woo",
        "my-woo-api",
        "paddle",
        "stripe-checkout",
    ]
    assert config.api_keys == ["gateway_api_key-test-value-0123456789"]
    assert config.worker.keep_done_jobs_days == 30
    assert sorted(config.destinations) == ["crm"]


def test_prose_comments_are_not_mistaken_for_examples() -> None:
    prose = [line for line in SHIPPED.splitlines() if line.startswith("#") and not EXAMPLE.match(line)]
    assert prose and all(line.startswith("# ") and line[2] != " " for line in prose), prose
