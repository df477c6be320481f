"""Tests for `schema` (print, --output, --diff, --json), `assert_schema_matches`, and
`status --exit-code`."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from click.testing import CliRunner

from schemalog.engine.base.errors import CheckFailed, UsageError
from schemalog.engine.cli import cli
from schemalog.journal.errors import PlantedSymlink
from schemalog.testing import assert_schema_matches
from tests.engine.conftest import BASIC, execute, make_migrator, write_migrations


@pytest.fixture
def migrator(tmp_path):
    """BASIC, fully applied."""
    m = make_migrator(tmp_path, write_migrations(tmp_path / "migrations", BASIC))
    m.upgrade()
    return m


def invoke(migrator, *args: str):
    """The CLI on `migrator`'s database and migrations."""
    return CliRunner().invoke(
        cli,
        [
            "--database",
            str(migrator.paths.database),
            "--migrations",
            str(migrator.settings.migrations),
            *args,
        ],
    )


class TestSchema:
    """`schema` prints, writes and compares; it never writes the database."""

    def test_print_is_the_canonical_text(self, migrator):
        """The text lists the objects by type then name, and leaves schemalog's tables out."""
        result = invoke(migrator, "schema")
        assert result.exit_code == 0
        kinds = ("-- index ", "-- table ", "-- trigger ", "-- view ")
        headers = [line for line in result.stdout.splitlines() if line.startswith(kinds)]
        assert headers == ["-- index idx_tags_item on tags", "-- table items", "-- table tags"]
        assert "schemalog_journal" not in result.stdout

    def test_json(self, migrator):
        """--json gives the fingerprint and the objects."""
        doc = json.loads(invoke(migrator, "schema", "--json").stdout)
        assert doc["fingerprint"] == migrator.replay().fingerprint
        assert [(o["type"], o["name"]) for o in doc["objects"]] == [
            ("index", "idx_tags_item"),
            ("table", "items"),
            ("table", "tags"),
        ]

    def test_output_then_diff(self, migrator, tmp_path):
        """--output writes a 0600 file that --diff then matches (exit 0)."""
        target = tmp_path / "schema.sql"
        assert invoke(migrator, "schema", "--output", str(target)).exit_code == 0
        assert target.stat().st_mode & 0o777 == 0o600
        same = invoke(migrator, "schema", "--diff", str(target))
        assert same.exit_code == 0 and "matches" in same.stdout

    def test_diff_names_the_objects(self, migrator, tmp_path):
        """After a change, --diff exits 1 naming each object and how it differs (text, JSON)."""
        target = tmp_path / "schema.sql"
        migrator.schema(output=target)
        execute(
            migrator.paths.database,
            "ALTER TABLE items ADD COLUMN color TEXT",
            "DROP INDEX idx_tags_item",
        )
        result = invoke(migrator, "schema", "--diff", str(target))
        assert result.exit_code == 1
        assert "index idx_tags_item: removed" in result.stdout
        assert "table items: column color added" in result.stdout
        doc = json.loads(invoke(migrator, "schema", "--diff", str(target), "--json").stdout)
        assert doc["differs"] is True
        assert [(o["name"], o["change"]) for o in doc["diff"]] == [
            ("idx_tags_item", "removed"),
            ("items", "changed"),
        ]
        with pytest.raises(CheckFailed, match="2 objects differ"):
            migrator.schema(diff=target)

    def test_read_only(self, migrator, tmp_path):
        """The database and its journal are byte-identical after `schema`."""
        files = [migrator.paths.database, migrator.paths.jsonl]
        before = [hashlib.sha256(p.read_bytes()).hexdigest() for p in files]
        migrator.schema()
        migrator.schema(output=tmp_path / "s.sql")
        assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in files] == before

    def test_refusals(self, migrator, tmp_path):
        """Both options, a bad file, a symlink and a missing database are refused."""
        with pytest.raises(UsageError, match="both given"):
            migrator.schema(output=tmp_path / "a", diff=tmp_path / "b")
        bad = tmp_path / "bad.sql"
        bad.write_text("CREATE TABLE t (x);\n")
        assert invoke(migrator, "schema", "--diff", str(bad)).exit_code == 2
        assert invoke(migrator, "schema", "--diff", str(tmp_path / "missing.sql")).exit_code == 2
        link = tmp_path / "link.sql"
        os.symlink(tmp_path / "elsewhere.sql", link)
        with pytest.raises(PlantedSymlink):
            migrator.schema(output=link)
        assert not (tmp_path / "elsewhere.sql").exists()
        empty = make_migrator(tmp_path / "none", migrator.settings.migrations)
        with pytest.raises(UsageError, match="does not exist"):
            empty.schema()


class TestAssertSchemaMatches:
    """The pytest helper compares the migrations' schema with a committed file."""

    def test_matches(self, migrator, tmp_path):
        """The file written from the upgraded database matches the migrations' schema."""
        target = tmp_path / "schema.sql"
        migrator.schema(output=target)
        built = assert_schema_matches(migrator.settings.migrations, target)
        assert built.fingerprint == migrator.replay().fingerprint

    def test_failure_shows_the_diff(self, migrator, tmp_path):
        """A stale file fails with the objects that differ."""
        target = tmp_path / "schema.sql"
        migrator.schema(output=target)
        write_migrations(
            migrator.settings.migrations,
            {
                "004_more.sql": "-- migrate:up\nCREATE TABLE more (x);\n-- migrate:down\nDROP TABLE more;\n"
            },
        )
        with pytest.raises(AssertionError, match="table more: added") as info:
            assert_schema_matches(migrator.settings.migrations, target)
        assert "schemalog schema --output" in str(info.value)


class TestStatusExitCode:
    """`status --exit-code` for health checks."""

    def test_current_database_exits_0(self, migrator):
        """Nothing pending, no drift: exit 0."""
        assert invoke(migrator, "status", "--exit-code").exit_code == 0
        assert invoke(migrator, "status", "--exit-code", "--json").exit_code == 0

    def test_pending_exits_1(self, migrator):
        """A pending migration: exit 1 (0 without the option); JSON still printed."""
        write_migrations(
            migrator.settings.migrations,
            {"004_more.sql": "-- migrate:up\nCREATE TABLE more (x);\n"},
        )
        assert invoke(migrator, "status").exit_code == 0
        result = invoke(migrator, "status", "--exit-code", "--json")
        assert result.exit_code == 1 and json.loads(result.stdout)["pending"] == [4]
        text = invoke(migrator, "status", "--exit-code")
        assert text.exit_code == 1 and "1 migration(s) pending" in text.stderr

    def test_file_error_drift_and_missing_database(self, migrator, tmp_path):
        """A gap in the files, drift, and a database not created yet each exit 1."""
        execute(migrator.paths.database, "CREATE TABLE sneaky (x)")
        drift = invoke(migrator, "status", "--exit-code")
        assert drift.exit_code == 1 and "drifted" in drift.stderr
        execute(migrator.paths.database, "DROP TABLE sneaky")
        write_migrations(
            migrator.settings.migrations, {"009_gap.sql": "-- migrate:up\nSELECT 1;\n"}
        )
        assert invoke(migrator, "status", "--exit-code").exit_code == 1
        fresh = CliRunner().invoke(
            cli,
            [
                "--database",
                str(tmp_path / "new.db"),
                "--migrations",
                str(tmp_path / "migrations"),
                "status",
                "--exit-code",
            ],
        )
        assert fresh.exit_code == 1
