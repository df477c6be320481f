"""Read commands while a run holds the database (issue 12): with the migration lock held and
SQLite's lock taken by the writer, `status`, `replay`, `events` and `history` answer at once
from the JSONL and the lock file's record, and never wait for the run. Without the migration
lock, the same busy database is the application's doing and is reported as busy (exit 3).

The "run" here is played by this process: a `MigrationLock` noting the step, and a plain
connection holding an EXCLUSIVE transaction (rollback journal mode: readers get SQLITE_BUSY).
"""

from __future__ import annotations

import os
import socket
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

from schemalog.engine.base.errors import DatabaseBusy, NeedsHuman
from schemalog.engine.base.settings import Settings
from schemalog.engine.commands import inspect as inspect_module
from schemalog.engine.migrator import Migrator
from schemalog.engine.shell.lock import Holder, MigrationLock
from tests.engine.conftest import (
    BASIC,
    DB_NAME,
    jsonl_events,
    make_migrator,
    write_migrations,
)

FOURTH = {
    "004_create_notes.sql": """
        -- Notes.
        -- migrate:up
        CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
        -- migrate:down
        DROP TABLE notes;
        """
}


@pytest.fixture
def migrator(tmp_path: Path) -> Migrator:
    """Three migrations applied, a fourth pending."""
    migrations = write_migrations(tmp_path / "migrations", BASIC)
    m = make_migrator(tmp_path, migrations)
    m.upgrade()
    write_migrations(migrations, FOURTH)
    return make_migrator(tmp_path, migrations)


@contextmanager
def busy(db: Path) -> Iterator[None]:
    """SQLite's lock held by another connection: readers get SQLITE_BUSY."""
    with closing(sqlite3.connect(db, isolation_level=None)) as conn:
        conn.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")


@contextmanager
def running(settings: Settings, run_id: str, version: int) -> Iterator[MigrationLock]:
    """The migration lock held as a run holds it, noting that it runs `version`."""
    lock = MigrationLock(settings.paths.lock)
    holder = Holder(os.getpid(), socket.gethostname(), run_id, "up", "2026-12-01T00:00:00Z")
    lock.acquire(holder, timeout=0)
    try:
        lock.note(f"up {version} (004_create_notes.sql)", version)
        yield lock
    finally:
        lock.release()


def last_run_id(m: Migrator) -> str:
    state = m.replay()
    assert state.last_run is not None
    return state.last_run.run_id


def test_status_answers_from_the_jsonl_and_names_the_step(migrator: Migrator, tmp_path: Path):
    run_id = last_run_id(migrator)
    with running(migrator.settings, run_id, 4), busy(tmp_path / DB_NAME):
        st = migrator.status()
    assert st.read_from == "jsonl"
    assert st.version == 3 and st.user_version == 3
    assert st.pending == [4]
    assert [a["version"] for a in st.applied] == [1, 2, 3]
    assert st.running is not None and st.running["doing_version"] == 4
    assert st.journal["jsonl_events"] == len(jsonl_events(tmp_path / DB_NAME))
    assert st.journal["table_events"] is None and st.journal["consistent"] is None
    assert st.last_run is not None and st.last_run["run_id"] == run_id


def test_replay_events_and_history_answer_during_the_run(migrator: Migrator, tmp_path: Path):
    run_id = last_run_id(migrator)
    before = jsonl_events(tmp_path / DB_NAME)
    with running(migrator.settings, run_id, 4), busy(tmp_path / DB_NAME):
        state = migrator.replay()
        events = migrator.events()
        history = migrator.history()
    assert state.version == 3
    assert [e.seq for e in events] == [e.seq for e in before]
    step = history[-1]
    assert (step.version, step.outcome, step.run_id) == (4, "running", run_id)
    assert step.name == "create_notes"


def test_a_tampered_jsonl_is_refused_even_while_running(migrator: Migrator, tmp_path: Path):
    jsonl = tmp_path / f"{DB_NAME}.journal.jsonl"
    lines = jsonl.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"ts":"20', b'"ts":"19', 1)  # canonical still: the chain breaks
    assert lines[1] != jsonl.read_bytes().splitlines(keepends=True)[1]
    jsonl.write_bytes(b"".join(lines))
    with running(migrator.settings, "r-x", 4), busy(tmp_path / DB_NAME):
        with pytest.raises(NeedsHuman):
            migrator.replay()
        with pytest.raises(NeedsHuman):
            migrator.events()


def test_without_a_run_a_busy_database_is_reported_busy(
    migrator: Migrator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(inspect_module, "_READ_S", 0.2)  # a reader's wait; 5 s otherwise
    with busy(tmp_path / DB_NAME):
        for read in (migrator.status, migrator.replay, migrator.events):
            with pytest.raises(DatabaseBusy) as caught:
                read()
            assert caught.value.exit_code == 3
