"""Fixtures for the journal tests: a database connection, the two stores, a journal."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from schemalog.journal.journal import Journal
from schemalog.journal.jsonl import JsonlStore
from schemalog.journal.table import TableStore


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode, as the journal requires."""
    return sqlite3.connect(path, isolation_level=None)


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """A connection to a fresh database `app.db`."""
    c = connect(tmp_path / "app.db")
    yield c
    c.close()


@pytest.fixture
def jsonl_path(tmp_path: Path) -> Path:
    """Where the sidecar journal of `app.db` lives."""
    return tmp_path / "app.db.journal.jsonl"


@pytest.fixture
def jsonl(jsonl_path: Path) -> Iterator[JsonlStore]:
    """A JSONL store (durability normal) that does not exist yet."""
    store = JsonlStore(jsonl_path)
    yield store
    store.close()


@pytest.fixture
def table(conn: sqlite3.Connection) -> TableStore:
    """A table store over `conn`, its table not created yet."""
    return TableStore(conn)


@pytest.fixture
def journal(conn: sqlite3.Connection, jsonl: JsonlStore) -> Journal:
    """A journal over `conn` and `jsonl`, both empty."""
    return Journal(conn, jsonl)
