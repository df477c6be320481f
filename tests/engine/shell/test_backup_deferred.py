"""The run's backup is checked in the background and confirmed before the first COMMIT."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from schemalog.engine.base.errors import BackupError, BackupVerificationFailed
from schemalog.engine.shell import backup as backup_module
from schemalog.engine.shell.backup import take_backup_deferred
from schemalog.journal.replay import replay
from tests.engine.conftest import (
    assert_journals_identical,
    make_migrator,
    of_kind,
    table_names,
    user_version,
)
from tests.engine.shell.test_backup import make_db


def _fail_check(conn, path, integrity, label):
    conn.close()
    msg = f"{label} fails PRAGMA quick_check: page 2 is never used"
    raise BackupVerificationFailed(msg, path=str(path))


class TestTakeBackupDeferred:
    def test_wait_returns_when_the_copy_is_sound(self, tmp_path: Path):
        """The copy is published unchecked; wait() returns once its check passed."""
        db = make_db(tmp_path / "app.db")
        info, wait = take_backup_deferred(db, tmp_path / "b")
        assert info.verified is False and (tmp_path / "b" / info.path).is_file()
        wait()
        assert (tmp_path / "b" / info.path).is_file()

    def test_a_failed_check_deletes_the_copy(self, tmp_path: Path, monkeypatch):
        """When the background check fails, wait() deletes the file and raises."""
        db = make_db(tmp_path / "app.db")
        monkeypatch.setattr(backup_module, "check_connection", _fail_check)
        info, wait = take_backup_deferred(db, tmp_path / "b")
        with pytest.raises(BackupVerificationFailed):
            wait()
        assert not (tmp_path / "b" / info.path).exists()

    def test_an_unreadable_copy_fails_at_wait(self, tmp_path: Path, monkeypatch):
        """A copy SQLite cannot even open is reported by wait(), and deleted."""

        def unreadable(path, functions=None, **_kw):
            raise sqlite3.DatabaseError("file is not a database")

        db = make_db(tmp_path / "app.db")
        monkeypatch.setattr(backup_module, "open_for_check", unreadable)
        info, wait = take_backup_deferred(db, tmp_path / "b")
        with pytest.raises(BackupVerificationFailed, match="not a readable SQLite database"):
            wait()
        assert not (tmp_path / "b" / info.path).exists()

    def test_integrity_off_has_nothing_to_wait_for(self, tmp_path: Path):
        """With integrity off the backup is final at once."""
        db = make_db(tmp_path / "app.db")
        info, wait = take_backup_deferred(db, tmp_path / "b", integrity="off")
        wait()
        assert (tmp_path / "b" / info.path).is_file() and info.verified is False

    def test_missing_database(self, tmp_path: Path):
        """A missing database is a BackupError, as for take_backup."""
        with pytest.raises(BackupError):
            take_backup_deferred(tmp_path / "nope.db", tmp_path / "b")


class TestRunBackupConfirmation:
    def test_run_records_backup_verified(self, tmp_path: Path, basic_dir: Path):
        """A run journals its backup unchecked, then backup_verified before its COMMIT."""
        m = make_migrator(tmp_path, basic_dir)
        report = m.upgrade()
        events = assert_journals_identical(tmp_path / "app.db")
        taken = [e for e in of_kind(events, "backup_taken") if e.run_id == report.run_id]
        verified = [e for e in of_kind(events, "backup_verified") if e.run_id == report.run_id]
        assert taken[0].data["verified"] is False
        assert [e.data["id"] for e in verified] == [taken[0].data["id"]]
        assert replay(events).backup_by_id[taken[0].data["id"]].verified is True

    @pytest.mark.parametrize("transaction", ["run", "step"])
    def test_bad_backup_rolls_the_whole_run_back(
        self, tmp_path: Path, basic_dir: Path, monkeypatch, transaction: str
    ):
        """A backup failing its background check undoes the run: nothing of it stays."""
        m = make_migrator(tmp_path, basic_dir, transaction=transaction)
        m.upgrade(target=1)
        db = tmp_path / "app.db"
        monkeypatch.setattr(backup_module, "check_connection", _fail_check)
        with pytest.raises(BackupVerificationFailed) as info:
            m.upgrade()
        assert info.value.exit_code == 1
        assert user_version(db) == 1
        assert "tags" not in table_names(db)
        events = assert_journals_identical(db)
        state = replay(events)
        assert state.version == 1 and state.open_runs == () and state.lock is None
        removed = of_kind(events, "backup_removed")
        assert removed and removed[-1].data["reason"] == "failed check"
        assert all((tmp_path / "backups" / b.path).is_file() for b in state.backups)
        assert state.last_run is not None and state.last_run.outcome == "failed"


class TestRetentionAfterDeferredCheck:
    def test_keep_one_keeps_the_runs_own_backup(self, tmp_path: Path, basic_dir: Path):
        """With retention_count=1 a successful run keeps its own (now verified) backup."""
        m = make_migrator(tmp_path, basic_dir, retention_count=1)
        m.upgrade(target=1)
        report = m.upgrade()
        assert report.backup is not None
        kept = m.backup_list()
        assert [b.id for b in kept] == [report.backup.id]
        assert kept[0].verified is True and (tmp_path / "backups" / kept[0].path).is_file()
