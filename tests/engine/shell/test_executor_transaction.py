"""The executor owns the transaction (issue 10): what it does when SQLite ends the run's
transaction by itself before COMMIT, and when the application keeps SQLite's write lock.

The subprocess campaigns (tests/faults, tests/live) reach these paths through real I/O errors
and real application writers; here they run in-process, so each claim is checked on the
journal and the database directly.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from schemalog.engine.base.errors import DatabaseBusy, MigrationFailed
from schemalog.engine.shell.executor import Executor
from tests.engine.conftest import (
    BASIC,
    DB_NAME,
    assert_journals_identical,
    kinds,
    make_migrator,
    of_kind,
    table_names,
    user_version,
    write_migrations,
)


@pytest.fixture
def migrations(migrations_dir: Path) -> Path:
    return write_migrations(migrations_dir, BASIC)


def lose_the_transaction_before_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite rolls the whole transaction back right before COMMIT (as an I/O error or
    SQLITE_FULL can make it do): COMMIT then fails with "no transaction is active"."""
    confirm = Executor._confirm_backup

    def confirm_then_lose(self: Executor) -> None:
        confirm(self)
        self.conn.execute("ROLLBACK")

    monkeypatch.setattr(Executor, "_confirm_backup", confirm_then_lose)


class TestTransactionLostAtCommit:
    def test_the_run_fails_naming_every_undone_step(
        self, tmp_path: Path, migrations: Path, monkeypatch: pytest.MonkeyPatch
    ):
        lose_the_transaction_before_commit(monkeypatch)
        with pytest.raises(MigrationFailed) as caught:
            make_migrator(tmp_path, migrations).upgrade()
        error = caught.value
        assert "COMMIT failed" in str(error)
        assert "SQLite rolled back the whole transaction" in str(error)
        assert "steps 1, 2, 3 of this run were undone with it" in error.state
        assert "no step of this run stays applied" in error.state

    def test_journal_and_database_agree_on_nothing_applied(
        self, tmp_path: Path, migrations: Path, monkeypatch: pytest.MonkeyPatch
    ):
        lose_the_transaction_before_commit(monkeypatch)
        with pytest.raises(MigrationFailed):
            make_migrator(tmp_path, migrations).upgrade()
        db = tmp_path / DB_NAME
        events = assert_journals_identical(db)
        assert user_version(db) == 0
        assert "items" not in table_names(db)
        assert "step_applied" not in kinds(events)  # they went with the transaction
        (rolled_back,) = of_kind(events, "rolled_back")
        assert rolled_back.data["method"] == "transaction"
        assert rolled_back.data["undone"] == [1, 2, 3]
        assert "COMMIT failed" in rolled_back.data["error"]

    def test_the_next_run_applies_everything(
        self, tmp_path: Path, migrations: Path, monkeypatch: pytest.MonkeyPatch
    ):
        with monkeypatch.context() as patch:
            lose_the_transaction_before_commit(patch)
            with pytest.raises(MigrationFailed):
                make_migrator(tmp_path, migrations).upgrade()
        make_migrator(tmp_path, migrations).upgrade()
        db = tmp_path / DB_NAME
        assert user_version(db) == 3
        assert make_migrator(tmp_path, migrations).status().version == 3
        assert_journals_identical(db)

    def test_per_step_transactions_keep_what_committed_earlier(
        self, tmp_path: Path, migrations: Path, monkeypatch: pytest.MonkeyPatch
    ):
        confirm, commits = Executor._confirm_backup, []

        def lose_the_third(self: Executor) -> None:  # called right before each COMMIT
            confirm(self)
            commits.append(1)
            if len(commits) == 3:
                self.conn.execute("ROLLBACK")

        monkeypatch.setattr(Executor, "_confirm_backup", lose_the_third)
        with pytest.raises(MigrationFailed) as caught:
            make_migrator(tmp_path, migrations, transaction="step").upgrade()
        db = tmp_path / DB_NAME
        assert user_version(db) == 2
        assert "steps 1, 2 stay applied" in caught.value.state
        events = assert_journals_identical(db)
        assert [e.version for e in of_kind(events, "step_applied")] == [1, 2]


class TestApplicationHoldsTheWriteLock:
    def test_busy_database_fails_fast_with_nothing_applied(self, tmp_path: Path, migrations: Path):
        m = make_migrator(tmp_path, migrations, lock_timeout=0.3)
        db = tmp_path / DB_NAME
        # The application opens (and so creates) the database and holds its write lock.
        with closing(sqlite3.connect(db, isolation_level=None)) as app:
            app.execute("BEGIN IMMEDIATE")
            with pytest.raises(DatabaseBusy) as caught:
                m.upgrade()
            app.execute("ROLLBACK")
        assert caught.value.exit_code == 3
        assert "the database is busy" in str(caught.value)
        assert caught.value.state == "nothing of this run was applied"
        assert user_version(db) == 0
        assert_journals_identical(db)
        m.upgrade()  # once the application's transaction ends
        assert user_version(db) == 3
