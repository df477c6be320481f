"""Tests for schemalog.engine.commands.check and schemalog.testing: migrations tested on scratch databases only."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
import structlog

from schemalog.engine.base.errors import MigrationFileError, NeedsHuman, RegistryError
from schemalog.engine.base.settings import Settings
from schemalog.engine.commands.check import (
    FAILED,
    OK,
    SKIPPED,
    CheckReport,
    MigrationCheck,
    check,
    check_copy,
    check_from_empty,
    copy_database,
    scratch_settings,
)
from schemalog.engine.migrator import Migrator
from schemalog.testing import (
    assert_migrations_roundtrip,
    assert_upgrade_from_scratch,
    scratch_migrator,
)

REPO = Path(__file__).resolve().parents[3]

GOOD = {
    "001_create_users.sql": (
        "-- Users.\n-- migrate:up\nCREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);\n"
        "-- migrate:down\nDROP TABLE users;\n"
        "-- migrate:verify\nSELECT COUNT(*) = 1 FROM sqlite_master WHERE name = 'users';\n"
    ),
    "002_add_email.sql": (
        "-- Email.\n-- migrate:up\nALTER TABLE users ADD COLUMN email TEXT;\n"
        "-- migrate:down\nALTER TABLE users DROP COLUMN email;\n"
    ),
}

# `down` leaves the index behind: the schema after down differs from the one before up.
LEAKY_DOWN = (
    "-- Leaky.\n-- migrate:up\nCREATE TABLE notes (id INTEGER);\n"
    "CREATE INDEX idx_notes ON notes (id);\n"
    "-- migrate:down\nDROP INDEX idx_notes;\nCREATE INDEX idx_other ON users (name);\n"
    "DROP TABLE notes;\n"
)

BAD_VERIFY = (
    "-- Bad verify.\n-- migrate:up\nCREATE TABLE things (id INTEGER);\n"
    "-- migrate:down\nDROP TABLE things;\n"
    "-- migrate:verify\nSELECT COUNT(*) = 1 FROM sqlite_master WHERE name = 'nothing';\n"
)

NO_DOWN = "-- No down.\n-- migrate:up\nCREATE TABLE logs (id INTEGER);\n"


@pytest.fixture(autouse=True)
def _quiet_logs():
    """Leave structlog as found."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


def write_migrations(directory: Path, files: dict[str, str]) -> Path:
    """Write `files` into `directory` (created) and return it."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def digest(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def settings(tmp_path) -> Settings:
    """Settings for tmp_path/app.db (not created) and the GOOD migrations."""
    return Settings(
        database=tmp_path / "app.db", migrations=write_migrations(tmp_path / "migrations", GOOD)
    )


class TestCheckFromEmpty:
    def test_all_ok(self, settings):
        """Every good migration passes up, verify, down, schema, up again."""
        report = check_from_empty(settings)
        assert report.ok
        assert report.source == "empty"
        assert [r.outcome for r in report.results] == [OK, OK]
        assert report.results[0].steps == ("up", "verify", "down", "schema", "up again")
        assert not settings.database.exists()

    def test_leaky_down_fails_and_later_ones_are_skipped(self, settings):
        """A down that does not restore the schema fails; the migrations after it are skipped."""
        write_migrations(
            settings.migrations, {"003_leaky.sql": LEAKY_DOWN, "004_logs.sql": NO_DOWN}
        )
        report = check_from_empty(settings)
        assert not report.ok
        by_version = {r.version: r for r in report.results}
        assert by_version[3].outcome == FAILED
        assert by_version[3].detail.startswith("down:")
        assert by_version[4].outcome == SKIPPED
        assert "003_leaky.sql" in by_version[4].detail
        assert report.failed == (by_version[3],)

    def test_failing_verify(self, settings):
        """A verify query that fails is reported as an `up` failure with the query's reason."""
        write_migrations(settings.migrations, {"003_bad_verify.sql": BAD_VERIFY})
        report = check_from_empty(settings)
        result = report.results[-1]
        assert result.outcome == FAILED
        assert result.detail.startswith("up:")
        assert "verify query 1 failed" in result.detail

    def test_no_down_is_ok_with_a_note(self, settings):
        """A migration without down is ok; the round trip is skipped and said so."""
        write_migrations(settings.migrations, {"003_logs.sql": NO_DOWN})
        result = check_from_empty(settings).results[-1]
        assert result.outcome == OK
        assert "no down" in result.detail
        assert result.steps == ("up", "verify")

    def test_malformed_file_raises_before_anything(self, settings):
        """A malformed migration file raises its MigrationFileError (exit 2)."""
        write_migrations(settings.migrations, {"003_broken.py": "up = (\n"})
        with pytest.raises(MigrationFileError) as info:
            check_from_empty(settings)
        assert info.value.exit_code == 2
        assert "003_broken.py" in info.value.message

    def test_on_result_is_called_per_migration(self, settings):
        """on_result sees each migration as it finishes."""
        seen: list[MigrationCheck] = []
        check_from_empty(settings, on_result=seen.append)
        assert [r.version for r in seen] == [1, 2]

    def test_repo_migrations(self, tmp_path):
        """The example application's migrations all pass the check."""
        report = check_from_empty(Settings(migrations=REPO / "migrations"))
        assert report.ok, report.text()
        assert len(report.results) >= 8


class TestCheckCopy:
    def test_pending_only_and_real_database_untouched(self, settings):
        """On a copy, only the pending migrations are tested; the real files stay byte-identical."""
        Migrator(settings).upgrade(1)
        write_migrations(settings.migrations, {"003_logs.sql": NO_DOWN})
        paths = settings.paths
        before = (digest(paths.database), digest(paths.jsonl), sorted(paths.backup_dir.iterdir()))
        report = check_copy(settings)
        assert report.ok, report.text()
        assert report.source == "copy"
        assert report.start_version == 1
        assert [r.version for r in report.results] == [2, 3]
        after = (digest(paths.database), digest(paths.jsonl), sorted(paths.backup_dir.iterdir()))
        assert after == before

    def test_real_backups_survive_small_retention(self, settings):
        """The copied journal names the real backups; retention in the scratch never deletes them."""
        real = Migrator(settings)
        real.upgrade(1)
        real.backup_create()
        backups = sorted(settings.paths.backup_dir.iterdir())
        assert len(backups) == 2
        import attrs

        tight = attrs.evolve(settings, retention_count=1)
        assert check_copy(tight).ok
        assert sorted(settings.paths.backup_dir.iterdir()) == backups

    def test_edited_applied_file_raises(self, settings):
        """An applied migration edited afterwards raises RegistryError (exit 2), not a report."""
        Migrator(settings).upgrade()
        path = settings.migrations / "001_create_users.sql"
        path.write_text(path.read_text() + "\n-- edited\n")
        write_migrations(settings.migrations, {"003_logs.sql": NO_DOWN})
        with pytest.raises(RegistryError):
            check_copy(settings)

    def test_unreadable_database(self, settings):
        """A file that is not a database cannot be copied: NeedsHuman (exit 4)."""
        settings.database.write_bytes(b"not a database at all" * 100)
        with pytest.raises(NeedsHuman):
            check_copy(settings)

    def test_check_combines(self, settings):
        """check: a copy when the database exists, plus from empty on request."""
        assert [r.source for r in check(settings)] == ["empty"]
        Migrator(settings).upgrade(1)
        assert [r.source for r in check(settings)] == ["copy"]
        reports = check(settings, from_scratch=True)
        assert [r.source for r in reports] == ["copy", "empty"]

    def test_workdir_is_cleaned(self, settings, tmp_path):
        """The scratch directory under `workdir` is removed afterwards."""
        work = tmp_path / "work"
        work.mkdir()
        check_from_empty(settings, workdir=work)
        assert list(work.iterdir()) == []


class TestReport:
    def test_text(self):
        """text() gives one line per migration with its steps and detail."""
        report = CheckReport(
            source="empty",
            description="from an empty database",
            start_version=0,
            results=(
                MigrationCheck(1, "001_a.sql", OK, "", ("up", "verify")),
                MigrationCheck(2, "002_b.sql", FAILED, "up: boom"),
            ),
        )
        text = report.text()
        assert "from an empty database (version 0):" in text
        assert "ok      001_a.sql [up, verify]" in text
        assert "failed  002_b.sql: up: boom" in text
        assert not report.ok

    def test_text_empty(self):
        """An empty report says there was nothing to test."""
        assert "nothing to test" in CheckReport("copy", "on a copy", 3, ()).text()

    def test_scratch_settings(self, settings, tmp_path):
        """Scratch settings point into the work directory and switch retention off."""
        scratch = scratch_settings(settings, tmp_path / "w")
        assert scratch.database == tmp_path / "w" / "scratch.db"
        assert scratch.backup_dir == tmp_path / "w" / "backups"
        assert scratch.retention_count is None and scratch.retention_bytes is None
        assert scratch.migrations == settings.migrations

    def test_copy_database(self, settings, tmp_path):
        """copy_database copies the database and its JSONL journal."""
        Migrator(settings).upgrade()
        dst = tmp_path / "copy.db"
        copy_database(settings.paths.database, settings.paths.jsonl, dst, tmp_path / "copy.jsonl")
        conn = sqlite3.connect(dst)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
        conn.close()
        assert (tmp_path / "copy.jsonl").read_bytes() == settings.paths.jsonl.read_bytes()


class TestTestingHelpers:
    def test_roundtrip_passes(self, settings):
        """assert_migrations_roundtrip returns the report when every migration passes."""
        report = assert_migrations_roundtrip(settings.migrations)
        assert report.ok

    def test_roundtrip_raises_assertion_with_report(self, settings):
        """A failing migration raises AssertionError carrying the per-migration report."""
        write_migrations(settings.migrations, {"003_leaky.sql": LEAKY_DOWN})
        with pytest.raises(AssertionError) as info:
            assert_migrations_roundtrip(settings.migrations)
        assert "003_leaky.sql" in str(info.value)
        assert "failed" in str(info.value)

    def test_roundtrip_on_a_database_copy(self, settings):
        """With `database`, only the pending migrations are tested on a copy of it."""
        Migrator(settings).upgrade(1)
        report = assert_migrations_roundtrip(settings.migrations, database=settings.database)
        assert [r.version for r in report.results] == [2]
        assert Migrator(settings).status().version == 1

    def test_upgrade_from_scratch(self, settings):
        """assert_upgrade_from_scratch returns the replayed state at the head."""
        state = assert_upgrade_from_scratch(settings.migrations)
        assert state.version == 2
        assert assert_upgrade_from_scratch(settings.migrations, to=1).version == 1

    def test_upgrade_from_scratch_failure(self, settings):
        """A failing migration becomes an AssertionError naming it."""
        write_migrations(settings.migrations, {"003_bad_verify.sql": BAD_VERIFY})
        with pytest.raises(AssertionError, match=r"003_bad_verify\.sql"):
            assert_upgrade_from_scratch(settings.migrations)

    def test_upgrade_from_scratch_file_error(self, settings):
        """A malformed file is not an assertion: its MigrationFileError propagates."""
        write_migrations(settings.migrations, {"003_broken.py": "up = (\n"})
        with pytest.raises(MigrationFileError):
            assert_upgrade_from_scratch(settings.migrations)

    def test_scratch_migrator_for_data_migrations(self, settings):
        """scratch_migrator lets a test insert rows between versions, then upgrade."""
        with scratch_migrator(settings.migrations) as migrator:
            migrator.upgrade(1)
            conn = sqlite3.connect(migrator.paths.database)
            conn.execute("INSERT INTO users (name) VALUES ('ada')")
            conn.commit()
            conn.close()
            migrator.upgrade()
            conn = sqlite3.connect(migrator.paths.database)
            rows = conn.execute("SELECT name, email FROM users").fetchall()
            conn.close()
            assert rows == [("ada", None)]
            scratch = migrator.paths.database
        assert not scratch.exists()

    def test_scratch_migrator_from_a_copy(self, settings):
        """scratch_migrator(database=...) starts from a copy of that database."""
        Migrator(settings).upgrade(1)
        with scratch_migrator(settings.migrations, database=settings.database) as migrator:
            assert migrator.status().version == 1
            migrator.upgrade()
            assert migrator.status().version == 2
        assert Migrator(settings).status().version == 1


class TestDefensiveSchemaCheck:
    def test_schema_mismatch_after_a_successful_down(self, settings, monkeypatch):
        """If a down passes the engine's own check but the schema still differs, check fails it."""
        import schemalog.engine.commands.check as check_module
        from schemalog.engine.core.schema import Schema, SchemaObject

        extra = Schema((SchemaObject("table", "leftover", "leftover", "CREATE TABLE leftover(x)"),))
        prints = iter([Schema(), extra, Schema(), Schema(), Schema(), Schema()])
        monkeypatch.setattr(check_module, "_schema", lambda db: next(prints))
        report = check_from_empty(settings)
        assert report.results[0].outcome == FAILED
        assert report.results[0].detail.startswith("schema:")
        assert report.results[0].detail.endswith("table leftover: added")
