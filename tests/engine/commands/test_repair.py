"""Tests for `repair`: after a comment is fixed in an applied migration, `up` refuses it until the
edited file is accepted; the acceptance is journaled, replayed and shown by `history`."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from schemalog.engine.base.errors import RegistryError, UsageError
from schemalog.engine.cli import cli
from schemalog.journal.replay import replay
from tests.engine.conftest import (
    BASIC,
    assert_journals_identical,
    make_migrator,
    of_kind,
    write_migrations,
)


@pytest.fixture
def edited(tmp_path):
    """BASIC applied up to 2, then a comment fixed in 001, and 003 still pending."""
    migrations = write_migrations(tmp_path / "migrations", BASIC)
    migrator = make_migrator(tmp_path, migrations)
    migrator.upgrade(2)
    path = migrations / "001_create_items.sql"
    path.write_text(path.read_text().replace("-- Items.", "-- The items (typo fixed)."))
    return migrator


class TestRepair:
    """`repair` unblocks `up` after a comment edit."""

    def test_unblocks_up(self, edited):
        """up refuses the edited file; after repair it applies the pending migration."""
        with pytest.raises(RegistryError, match=r"001_create_items\.sql was changed"):
            edited.upgrade()
        result = edited.repair(1, "fixed a typo in the description")
        assert result.accepted and result.old != result.new
        edited.upgrade()
        assert edited.status().version == 3
        edited.verify()

    def test_journaled_and_replayed(self, edited):
        """`checksum_accepted` {version, old, new, reason} is in both journals; replay uses it."""
        before = edited.status().applied[0]["checksum"]
        edited.repair(1, "typo")
        events = assert_journals_identical(edited.paths.database)
        (event,) = of_kind(events, "checksum_accepted")
        assert event.version == 1
        assert event.data == {
            "version": 1,
            "old": before,
            "new": event.data["new"],
            "reason": "typo",
        }
        state = replay(events)
        assert state.applied_by_version[1].checksum == event.data["new"]
        assert [r.reason for r in state.repairs] == ["typo"]
        assert [e.kind.value for e in events if e.run_id == event.run_id] == [
            "run_started",
            "lock_acquired",
            "checksum_accepted",
            "run_finished",
            "lock_released",
        ]

    def test_history_shows_both_checksums(self, edited):
        """history (text and --json) lists the repair with its old and new checksums."""
        result = edited.repair(1, "typo")
        (entry,) = [e for e in edited.history() if e.direction == "repair"]
        assert (entry.version, entry.outcome, entry.reason) == (1, "accepted", "typo")
        assert (entry.old_checksum, entry.new_checksum) == (result.old, result.new)
        args = [
            "--database",
            str(edited.paths.database),
            "--migrations",
            str(edited.settings.migrations),
        ]
        doc = json.loads(CliRunner().invoke(cli, [*args, "history", "--json"]).stdout)
        (shown,) = [e for e in doc if e["direction"] == "repair"]
        assert shown["old_checksum"] == result.old and shown["new_checksum"] == result.new
        text = CliRunner().invoke(cli, [*args, "history"]).stdout
        assert result.old[:12] in text and result.new[:12] in text and "typo" in text

    def test_a_restore_keeps_the_acceptance(self, edited):
        """A backup taken before the repair, restored after it, still accepts the edited file."""
        backup = edited.backup_create()
        edited.repair(1, "typo")
        edited.backup_restore(backup.id)
        edited.upgrade()
        assert edited.status().version == 3

    def test_nothing_to_repair(self, edited):
        """A file that matches the journal records nothing."""
        assert not edited.repair(2, "no change").accepted
        assert not of_kind(assert_journals_identical(edited.paths.database), "checksum_accepted")


class TestRefusals:
    """What `repair` refuses (exit 2, nothing recorded)."""

    def test_never_applied(self, edited):
        """A pending migration is refused."""
        with pytest.raises(UsageError, match="never applied"):
            edited.repair(3, "why not")

    def test_no_reason(self, edited):
        """A blank reason is refused."""
        with pytest.raises(UsageError, match="needs a reason"):
            edited.repair(1, "  ")

    def test_unknown_version_and_missing_database(self, edited, tmp_path):
        """A version without a file, and a database that does not exist, are refused."""
        with pytest.raises(UsageError, match="no migration file has version 9"):
            edited.repair(9, "x")
        other = make_migrator(tmp_path / "x", edited.settings.migrations)
        (tmp_path / "x").mkdir()
        with pytest.raises(UsageError, match="does not exist"):
            other.repair(1, "x")
        assert not other.paths.database.exists()

    def test_another_migration_in_the_file(self, edited):
        """A file that now holds another migration (another name) is refused."""
        migrations = edited.settings.migrations
        (migrations / "001_create_items.sql").rename(migrations / "001_other.sql")
        with pytest.raises(UsageError, match="holds another migration"):
            edited.repair(1, "x")

    def test_cli(self, edited):
        """The CLI prints the checksums; exit 2 for a never-applied migration."""
        args = [
            "--database",
            str(edited.paths.database),
            "--migrations",
            str(edited.settings.migrations),
        ]
        ok = CliRunner().invoke(cli, [*args, "repair", "1", "--reason", "typo"])
        assert ok.exit_code == 0 and "accepted 001_create_items.sql" in ok.stdout
        refused = CliRunner().invoke(cli, [*args, "repair", "3", "--reason", "x"])
        assert refused.exit_code == 2 and "never applied" in refused.stderr
