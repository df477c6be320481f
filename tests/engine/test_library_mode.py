"""Library mode: a Migrator uses only its arguments (no config file, no SCHEMALOG_* variable);
`Migrator.from_config` reads them as the CLI does; a data directory moved as a whole (database,
journal, backups) keeps every backup listable and restorable, also with the absolute backup
paths older versions recorded."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import attrs
import pytest

import schemalog.engine.shell.backup as backup_module
from schemalog.engine.base.errors import ConfigError
from schemalog.engine.migrator import Migrator
from schemalog.journal.chain import GENESIS, find_break, seal
from schemalog.journal.codec import encode
from schemalog.journal.events import Draft, Event
from schemalog.journal.jsonl import JsonlStore
from schemalog.journal.table import TABLE, TableStore
from tests.engine.conftest import (
    BASIC,
    assert_journals_identical,
    jsonl_events,
    of_kind,
    user_version,
    write_migrations,
)

BOGUS_PYPROJECT = """
[project]
name = "the-application"

[tool.schemalog]
database = "from-pyproject.db"
transaction = "step"
not_a_setting = true
"""

HOSTILE_ENV = {
    "SCHEMALOG_DATABASE": "from-env.db",
    "SCHEMALOG_MIGRATIONS": "no-such-dir",
    "SCHEMALOG_TRANSACTION": "step",
    "SCHEMALOG_LOCK_TIMEOUT": "not a number",
    "SCHEMALOG_BACKUP_DIR": "from-env-backups",
    "SCHEMALOG_RETENTION_COUNT": "1",
}


@pytest.fixture
def application(tmp_path: Path, monkeypatch) -> Path:
    """A working directory as an application has it: its own pyproject.toml with a stray
    `[tool.schemalog]` key, a schemalog.toml, and SCHEMALOG_* variables in the environment."""
    (tmp_path / "pyproject.toml").write_text(BOGUS_PYPROJECT, encoding="utf-8")
    (tmp_path / "schemalog.toml").write_text('database = "from-toml.db"\n', encoding="utf-8")
    write_migrations(tmp_path / "migrations", BASIC)
    monkeypatch.chdir(tmp_path)
    for name, value in HOSTILE_ENV.items():
        monkeypatch.setenv(name, value)
    return tmp_path


class TestMigratorUsesOnlyItsArguments:
    def test_ignores_config_files_and_environment(self, application: Path):
        """Migrator(database=, migrations=) runs with defaults for everything else, whatever
        the working directory's files and the environment say."""
        m = Migrator(database="app.db", migrations="migrations")
        assert m.settings.transaction == "run"
        assert m.settings.lock_timeout == 30.0
        assert m.settings.retention_count == 10
        assert m.paths.backup_dir == application / "app.db.backups"
        m.upgrade()
        m.backup_create()
        assert user_version(application / "app.db") == 3
        assert len(m.backup_list()) == 2  # the env's retention_count=1 was not applied
        for other in ("from-pyproject.db", "from-toml.db", "from-env.db", "from-env-backups"):
            assert not (application / other).exists()
        started = of_kind(assert_journals_identical(application / "app.db"), "run_started")
        assert started[0].data.get("transaction", "run") == "run"

    def test_from_config_reads_them_as_the_cli_does(self, application: Path, monkeypatch):
        """from_config reports a bad variable and the stray key, as the CLI does (exit 2);
        once they are fixed, the environment wins over the file and flags over both."""
        with pytest.raises(ConfigError, match="SCHEMALOG_LOCK_TIMEOUT"):
            Migrator.from_config()
        monkeypatch.delenv("SCHEMALOG_LOCK_TIMEOUT")
        (application / "schemalog.toml").unlink()  # pyproject.toml is read when it is alone
        with pytest.raises(ConfigError, match="not_a_setting"):
            Migrator.from_config()
        cli = subprocess.run(
            [sys.executable, "-m", "schemalog", "status"],
            cwd=application,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert cli.returncode == 2 and "not_a_setting" in cli.stderr, cli.stderr

        (application / "pyproject.toml").write_text(
            '[tool.schemalog]\ndatabase = "from-pyproject.db"\nlock_timeout = 7\n',
            encoding="utf-8",
        )
        monkeypatch.delenv("SCHEMALOG_MIGRATIONS")
        m = Migrator.from_config()
        assert m.paths.database == application / "from-env.db"
        assert m.settings.lock_timeout == 7
        assert m.settings.transaction == "step"
        assert m.settings.retention_count == 1
        flagged = Migrator.from_config(database="flag.db", transaction="run")
        assert flagged.paths.database == application / "flag.db"
        assert flagged.settings.transaction == "run"

    def test_relative_paths_are_anchored_when_made(self, application: Path, monkeypatch):
        """A later chdir changes nothing: the paths were anchored when the Migrator was made."""
        m = Migrator(database="app.db", migrations="migrations")
        elsewhere = application / "elsewhere"
        elsewhere.mkdir()
        monkeypatch.chdir(elsewhere)
        m.upgrade()
        assert user_version(application / "app.db") == 3
        assert list(elsewhere.iterdir()) == []


def build_data_dir(directory: Path, migrations: Path, backup_dir: str | None) -> Migrator:
    """A data directory with three backups (v0 and v1 from runs, v1 by hand), at version 3."""
    directory.mkdir()
    extra = {"backup_dir": directory / backup_dir} if backup_dir else {}
    m = Migrator(database=directory / "app.db", migrations=migrations, **extra)
    m.upgrade(1)
    m.backup_create()
    m.upgrade()
    assert [b.version for b in m.backup_list()] == [0, 1, 1]
    return m


def moved(old: Path, new: Path, migrations: Path, backup_dir: str | None) -> Migrator:
    """Move the whole data directory `old` to `new`; a Migrator on the moved database."""
    shutil.move(old, new)
    extra = {"backup_dir": new / backup_dir} if backup_dir else {}
    return Migrator(database=new / "app.db", migrations=migrations, **extra)


def restore_each(m: Migrator) -> None:
    """List the backups, assert every file is found, restore each one in turn."""
    backups = m.backup_list()
    assert len(backups) == 3
    for record in backups:
        assert m.paths.backup_file(record.path).is_file(), record.path
    for record in backups:
        m.backup_restore(record.id)
        assert user_version(m.paths.database) == record.version
        assert m.status().needs_recovery is False
    assert_journals_identical(m.paths.database)
    m.upgrade()
    assert user_version(m.paths.database) == 3


@pytest.mark.parametrize("backup_dir", [None, "backups"], ids=["default-dir", "configured-dir"])
class TestMovedDataDirectory:
    def test_relative_records(self, tmp_path: Path, backup_dir):
        """Backups recorded relative to the backup directory survive the move."""
        migrations = write_migrations(tmp_path / "migrations", BASIC)
        m = build_data_dir(tmp_path / "data", migrations, backup_dir)
        assert all(not Path(b.path).is_absolute() for b in m.backup_list())
        restore_each(moved(tmp_path / "data", tmp_path / "moved", migrations, backup_dir))

    def test_absolute_records_of_an_older_version(self, tmp_path: Path, monkeypatch, backup_dir):
        """A journal written by a version that recorded absolute paths (in both journals and
        in the journal table inside every backup) still lists and restores after the move."""
        migrations = write_migrations(tmp_path / "migrations", BASIC)
        relative = backup_module._Job.record

        def absolute(self, backup, final, *args):
            return attrs.evolve(relative(self, backup, final, *args), path=str(final))

        monkeypatch.setattr(backup_module._Job, "record", absolute)
        m = build_data_dir(tmp_path / "data", migrations, backup_dir)
        monkeypatch.undo()
        recorded = [e.data["path"] for e in of_kind(jsonl_events(m.paths.database), "backup_taken")]
        assert all(Path(p).is_absolute() and "data" in Path(p).parts for p in recorded)
        restore_each(moved(tmp_path / "data", tmp_path / "moved", migrations, backup_dir))


def rewritten(events: tuple[Event, ...], seq: int, path: str) -> list[Event]:
    """`events` with the `backup_taken` at `seq` recording `path`, and every event from there
    on sealed again: a valid hash chain, as if it had been written that way."""
    out: list[Event] = []
    prev = GENESIS
    for event in events:
        if event.seq < seq:
            out.append(event)
        else:
            data = {**event.data, "path": path} if event.seq == seq else dict(event.data)
            draft = Draft(event.run_id, event.kind, event.version, data)
            out.append(seal(draft, seq=event.seq, prev=prev, ts=event.ts, id=event.id))
        prev = out[-1].hash
    return out


def replace_journals(database: Path, events: list[Event]) -> None:
    """Write `events` as both journals of `database` (the table's triggers lifted meanwhile)."""
    with closing(sqlite3.connect(database, isolation_level=None)) as conn:
        sql = conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?",
            (f"{TABLE}_no_delete",),
        ).fetchone()[0]
        conn.execute(f"DROP TRIGGER {TABLE}_no_delete")
        conn.execute(f"DELETE FROM {TABLE}")
        conn.execute(sql)
        TableStore(conn).append(events)
    jsonl = database.with_name(database.name + ".journal.jsonl")
    jsonl.write_text("".join(encode(e) + "\n" for e in events), encoding="utf-8")


class TestRewrittenAbsoluteRecord:
    def test_an_absolute_record_with_a_valid_chain_restores_after_the_move(self, tmp_path: Path):
        """The newest backup's `backup_taken` rewritten to the absolute path of the time (the
        chain sealed again, so nothing looks tampered): listed, found and restored after the
        data directory moved."""
        migrations = write_migrations(tmp_path / "migrations", BASIC)
        m = Migrator(database=tmp_path / "data" / "app.db", migrations=migrations)
        (tmp_path / "data").mkdir()
        m.upgrade(2)
        newest = m.backup_create()
        events = jsonl_events(m.paths.database)
        taken = next(e for e in of_kind(events, "backup_taken") if e.data["id"] == newest.id)
        old_path = str(m.paths.backup_dir / newest.path)
        new_events = rewritten(events, taken.seq, old_path)
        assert find_break(new_events) is None
        replace_journals(m.paths.database, new_events)
        assert assert_journals_identical(m.paths.database)[taken.seq - 1].data["path"] == old_path
        store = JsonlStore(m.paths.jsonl)
        assert store.read().events == tuple(new_events)
        store.close()

        shutil.move(tmp_path / "data", tmp_path / "moved")
        m2 = Migrator(database=tmp_path / "moved" / "app.db", migrations=migrations)
        listed = {b.id: b for b in m2.backup_list()}
        assert listed[newest.id].path == old_path
        assert not Path(old_path).exists()
        assert m2.paths.backup_file(old_path) == m2.paths.backup_dir / newest.path
        m2.upgrade()
        m2.backup_restore(newest.id)
        assert user_version(m2.paths.database) == 2
        assert m2.status().needs_recovery is False
        assert_journals_identical(m2.paths.database)
