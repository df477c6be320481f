"""DATABASE arguments of the fleet commands: paths, glob patterns expanded by schemalog, @FILE."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from schemalog.engine.base.errors import UsageError
from schemalog.engine.shell.fleet_targets import expand_databases, is_sidecar


@pytest.fixture
def tenants(tmp_path):
    """Three databases with every kind of file schemalog and SQLite keep next to them."""
    directory = tmp_path / "tenants"
    (directory / "eu").mkdir(parents=True)
    for name in ("b.db", "a.db", "eu/c.db"):
        (directory / name).write_bytes(b"")
    for suffix in (".journal.jsonl", ".lock", "-wal", "-shm", "-journal", ".journal.jsonl.torn-1"):
        (directory / f"a.db{suffix}").write_bytes(b"x")
    (directory / "a.db.backups").mkdir()
    (directory / "schemalog-fleet.journal.jsonl").write_bytes(b"")
    return directory


class TestExpandDatabases:
    def test_a_quoted_glob_is_expanded_without_sidecar_files(self, tenants):
        """`*` matches the databases only, never their journals, locks or SQLite's files."""
        found = expand_databases(["tenants/*"], tenants.parent)
        assert found == [tenants / "a.db", tenants / "b.db"]

    def test_recursive_glob(self, tenants):
        """`**` reaches sub-directories; the result is sorted."""
        found = expand_databases(["tenants/**/*.db"], tenants.parent)
        assert found == [tenants / "a.db", tenants / "b.db", tenants / "eu" / "c.db"]

    def test_at_file_lists_paths_and_patterns(self, tenants, tmp_path):
        """@FILE: one path or pattern per line; blank lines and # comments are skipped."""
        listing = tmp_path / "list.txt"
        listing.write_text(
            "# tenants\n\ntenants/eu/*.db\n  tenants/b.db  \n/elsewhere/missing.db\n"
        )
        found = expand_databases(["@list.txt"], tmp_path)
        assert found == [Path("/elsewhere/missing.db"), tenants / "b.db", tenants / "eu" / "c.db"]

    def test_each_database_once(self, tenants):
        """A database named twice, or through a symlink, counts once."""
        os.symlink(tenants / "a.db", tenants / "link.db")
        found = expand_databases(["tenants/a.db", "tenants/*.db", "tenants/a.db"], tenants.parent)
        assert found == [tenants / "a.db", tenants / "b.db"]

    def test_a_missing_plain_path_is_kept(self, tmp_path):
        """A path that does not exist here is kept (it is that database's error, or a remote one)."""
        assert expand_databases(["nowhere.db"], tmp_path) == [tmp_path / "nowhere.db"]

    @pytest.mark.parametrize(
        ("arguments", "match"),
        [
            (["nothing/*.db"], "matches no database file"),
            (["@absent.txt"], "cannot read the list of databases"),
            ([], "no databases were given"),
        ],
    )
    def test_usage_errors(self, tmp_path, arguments, match):
        """An empty pattern, an unreadable list or no argument at all is a usage error."""
        with pytest.raises(UsageError, match=match):
            expand_databases(arguments, tmp_path)

    def test_an_empty_list_file(self, tmp_path):
        """A list with only comments names no database."""
        (tmp_path / "l.txt").write_text("# none\n")
        with pytest.raises(UsageError, match="no databases"):
            expand_databases(["@l.txt"], tmp_path)


class TestIsSidecar:
    def test_only_next_to_an_existing_database(self, tmp_path):
        """`x.lock` is a sidecar only when `x` exists; a database may end in -journal otherwise."""
        (tmp_path / "app.db").write_bytes(b"")
        assert is_sidecar(tmp_path / "app.db.lock")
        assert not is_sidecar(tmp_path / "other.db.lock")
        assert is_sidecar(tmp_path / "schemalog-fleet.journal.jsonl.lock")
