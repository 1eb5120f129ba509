"""A real SQLite file at the newest schema for the store's own tests."""

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from store.db import connect
from store.schema import migrate


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    connection = connect(tmp_path / "gateway.db")
    migrate(connection)
    yield connection
    connection.close()
