"""The repository is self-contained: the docs carry the contract, so no file cites a specification document or
its numbered sections, which a user of the repository does not have."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Spelled with escapes so that this file does not match its own patterns.
CITATION = re.compile("\\bS\u0050EC\\b|\u00a7")
# Version control, the environment and what tools generate are not the repository's files.
SKIPPED = {
    ".git",
    ".venv",
    "data",
    "bench/out",
    "__pycache__",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
}


def _files(root: Path) -> list[Path]:
    found = []
    for path in root.iterdir():
        relative = path.relative_to(REPO).as_posix()
        if path.name in SKIPPED or relative in SKIPPED or path.name.endswith(".egg-info"):
            continue
        if path.is_dir():
            found.extend(_files(path))
        elif path.is_file():
            found.append(path)
    return found


def test_no_file_cites_a_specification_or_its_sections() -> None:
    citing = []
    for path in _files(REPO):
        text = path.read_bytes().decode("utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), start=1):
            if CITATION.search(line):
                citing.append(f"{path.relative_to(REPO)}:{number}: {line.strip()[:100]}")
    assert citing == [], "cite docs/ or state the rule instead:\n" + "\n".join(citing)


def test_the_check_sees_a_citation() -> None:
    assert CITATION.search("as the " + "SP" + "EC says")
    assert CITATION.search("rule " + chr(0xA7) + "4.1")
    assert not CITATION.search("importlib.util.spec_from_file_location, INSPECTED")
