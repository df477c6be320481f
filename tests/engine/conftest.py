"""Shared fixtures and helpers for the engine tests: a database in a tmp dir, migration files,
a `Migrator` on them, and read-only probes of both journals and of the database itself.

The probes open their own plain sqlite3 connection (never schemalog's), so what they see is
what an application would see after a command returned.
"""

from __future__ import annotations

import hashlib
import sqlite3
import textwrap
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from schemalog.engine.base.settings import Settings
from schemalog.engine.core.fingerprint import schema_fingerprint
from schemalog.engine.migrator import Migrator
from schemalog.journal.chain import find_break
from schemalog.journal.events import Event
from schemalog.journal.jsonl import JsonlStore
from schemalog.journal.table import TableStore

REPO = Path(__file__).resolve().parents[2]
DEMO_MIGRATIONS = REPO / "migrations"
DEMO_SEED = REPO / "demo" / "seed.sql"
DB_NAME = "app.db"

# A small application used by most tests: three reversible migrations, SQL only.
BASIC: dict[str, str] = {
    "001_create_items.sql": """
        -- Items.
        -- migrate:up
        CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
        INSERT INTO items (name) VALUES ('alpha'), ('beta');
        -- migrate:down
        DROP TABLE items;
        -- migrate:verify
        SELECT COUNT(*) = 1 FROM sqlite_master WHERE type = 'table' AND name = 'items';
        """,
    "002_create_tags.sql": """
        -- Tags of items.
        -- migrate:up
        CREATE TABLE tags (
            id INTEGER PRIMARY KEY,
            item_id INTEGER NOT NULL REFERENCES items (id),
            label TEXT NOT NULL
        );
        CREATE INDEX idx_tags_item ON tags (item_id);
        INSERT INTO tags (item_id, label) VALUES (1, 'red'), (2, 'blue');
        -- migrate:down
        DROP TABLE tags;
        """,
    "003_add_item_note.sql": """
        -- A note per item.
        -- migrate:up
        ALTER TABLE items ADD COLUMN note TEXT;
        -- migrate:down
        ALTER TABLE items DROP COLUMN note;
        -- migrate:verify
        SELECT COUNT(*) = 1 FROM pragma_table_info('items') WHERE name = 'note';
        """,
}


# --- writing migrations and building migrators ------------------------------------------


def write_migrations(directory: Path, files: Mapping[str, str]) -> Path:
    """Write each `name -> text` (dedented) into `directory` (created if needed); return it."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(textwrap.dedent(text).strip() + "\n", encoding="utf-8")
    return directory


def make_migrator(tmp_path: Path, migrations_dir: Path, **settings: Any) -> Migrator:
    """A Migrator on `tmp_path/app.db` with backups in `tmp_path/backups`; `settings` override."""
    values: dict[str, Any] = {
        "database": tmp_path / DB_NAME,
        "migrations": migrations_dir,
        "backup_dir": tmp_path / "backups",
        "lock_timeout": 5.0,
    }
    values.update(settings)
    return Migrator(Settings(**values))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where the test database lives (it does not exist yet)."""
    return tmp_path / DB_NAME


@pytest.fixture
def migrations_dir(tmp_path: Path) -> Path:
    """An empty migrations directory."""
    path = tmp_path / "migrations"
    path.mkdir()
    return path


@pytest.fixture
def basic_dir(migrations_dir: Path) -> Path:
    """The migrations directory holding the three `BASIC` migrations."""
    return write_migrations(migrations_dir, BASIC)


# --- probes: read-only, through a connection of their own --------------------------------


def connect(db: Path) -> sqlite3.Connection:
    """A plain autocommit connection to `db`, as an application would open it."""
    return sqlite3.connect(db, isolation_level=None)


def user_version(db: Path) -> int:
    """`PRAGMA user_version` of `db`."""
    with closing(connect(db)) as conn:
        return conn.execute("PRAGMA user_version").fetchone()[0]


def live_fingerprint(db: Path) -> str:
    """The schema fingerprint of `db` as schemalog computes it."""
    with closing(connect(db)) as conn:
        return schema_fingerprint(conn)


def table_events(db: Path) -> tuple[Event, ...]:
    """Every event of the journal table of `db` (empty when it has none)."""
    if not db.exists():
        return ()
    with closing(connect(db)) as conn:
        return TableStore(conn).read().events


def jsonl_events(db: Path) -> tuple[Event, ...]:
    """Every event of the JSONL journal next to `db` (empty when it does not exist)."""
    store = JsonlStore(db.with_name(db.name + ".journal.jsonl"))
    try:
        return store.read().events
    finally:
        store.close()


def assert_journals_identical(db: Path) -> tuple[Event, ...]:
    """Assert both journals hold the same valid hash chain; return its events."""
    table, jsonl = table_events(db), jsonl_events(db)
    assert [e.hash for e in table] == [e.hash for e in jsonl], "table and JSONL differ"
    assert find_break(table) is None
    assert find_break(jsonl) is None
    return table


def kinds(events: tuple[Event, ...] | list[Event], version: int | None = None) -> list[str]:
    """The kinds of `events` in order, only those of `version` when given."""
    return [e.kind.value for e in events if version is None or e.version == version]


def of_kind(events: tuple[Event, ...] | list[Event], kind: str) -> list[Event]:
    """The events of one kind, in order."""
    return [e for e in events if e.kind.value == kind]


def schema_rows(db: Path) -> list[tuple[str, str, str, str | None]]:
    """The application's rows of `sqlite_master` (type, name, tbl_name, sql), sorted.

    schemalog's own objects and SQLite's internal ones are left out; `rootpage` is too,
    since a rebuild moves tables to other pages without changing them.
    """
    with closing(connect(db)) as conn:
        return conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master "
            "WHERE name NOT LIKE 'schemalog%' AND name NOT LIKE 'sqlite%' "
            "ORDER BY type, name"
        ).fetchall()


def table_names(db: Path) -> set[str]:
    """The application's table names."""
    return {name for kind, name, _, _ in schema_rows(db) if kind == "table"}


def rows(db: Path, table: str) -> list[tuple]:
    """Every row of `table`, sorted."""
    with closing(connect(db)) as conn:
        return sorted(conn.execute(f'SELECT * FROM "{table}"').fetchall(), key=repr)


def execute(db: Path, *statements: str) -> None:
    """Run `statements` on `db` behind schemalog's back (a plain connection)."""
    with closing(connect(db)) as conn:
        for statement in statements:
            conn.execute(statement)


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def seed_demo(db: Path) -> None:
    """Load `demo/seed.sql` (valid at version 1 of the demo app) into `db`."""
    with closing(connect(db)) as conn:
        conn.executescript(DEMO_SEED.read_text(encoding="utf-8"))
