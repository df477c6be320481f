"""Tests for migration files read from their bytes: no code runs until a migration must,
`verify` read without running a `.py` file, Traversable directories (a zip), the read cache."""

from __future__ import annotations

import importlib
import importlib.resources
import os
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from schemalog.engine.base.errors import MigrationFileError
from schemalog.engine.files import listing as listing_module
from schemalog.engine.files import registry as registry_module
from schemalog.engine.files.migration import compute_checksum, load_migration
from schemalog.engine.files.registry import load_registry

FILES = {
    "001_users.sql": (
        "-- Users.\n-- migrate:up\nCREATE TABLE users (id INTEGER PRIMARY KEY);\n"
        "-- migrate:down\nDROP TABLE users;\n"
        "-- migrate:verify\nSELECT COUNT(*) = 1 FROM sqlite_master WHERE name = 'users';\n"
    ),
    "002_email.py": (
        '"""Email."""\n'
        "import pathlib\n"
        "pathlib.Path(__file__).with_name('ran').touch() if False else None\n"
        'up = "ALTER TABLE users ADD COLUMN email TEXT;"\n'
        'down = "ALTER TABLE users DROP COLUMN email;"\n'
        "verify = [\"SELECT COUNT(*) = 1 FROM pragma_table_info('users') WHERE name = 'email'\"]\n"
    ),
}


def marker_file(directory: Path, marker: Path, name: str = "003_marker.py") -> Path:
    """A `.py` migration whose top level appends a line to `marker` each time it runs."""
    path = directory / name
    path.write_text(
        f"open({str(marker)!r}, 'a').write('ran\\n')\n"
        'up = "CREATE TABLE marked (id INTEGER);"\n'
        'down = "DROP TABLE marked;"\n'
        "verify = \"SELECT COUNT(*) = 1 FROM sqlite_master WHERE name = 'marked'\"\n"
    )
    return path


def runs(marker: Path) -> int:
    """How many times the marker migration's top level ran."""
    return len(marker.read_text().splitlines()) if marker.exists() else 0


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A migrations directory holding FILES."""
    directory = tmp_path / "migrations"
    directory.mkdir()
    for name, text in FILES.items():
        (directory / name).write_text(text)
    return directory


class TestNoCodeUntilNeeded:
    def test_listing_runs_no_code(self, folder: Path, tmp_path: Path) -> None:
        """load_registry reads names and checksums; no `.py` top level runs."""
        marker = tmp_path / "marker"
        path = marker_file(folder, marker)
        registry = load_registry(folder)
        assert runs(marker) == 0
        assert registry.get(3).checksum == compute_checksum(path.read_bytes())
        assert registry.head == 3

    def test_code_is_loaded_once_per_registry(self, folder: Path, tmp_path: Path) -> None:
        """Registry.migration runs a file's top level the first time only."""
        marker = tmp_path / "marker"
        marker_file(folder, marker)
        registry = load_registry(folder)
        first = registry.migration(3)
        assert registry.migration(3) is first
        assert runs(marker) == 1
        assert first == load_migration(folder / "003_marker.py")

    def test_loaded_value_equals_the_file_loaded_alone(self, folder: Path) -> None:
        """A migration loaded through the registry is the one load_migration gives."""
        registry = load_registry(folder)
        for entry in registry:
            assert registry.migration(entry.version) == load_migration(entry.path)


class TestVerifyWithoutRunning:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ('up = "x"\nverify = "SELECT 1"\n', ("SELECT 1",)),
            ('up = "x"\nverify = ["SELECT 1", "SELECT 2"]\n', ("SELECT 1", "SELECT 2")),
            ('up = "x"\nverify: tuple = ("SELECT 1",)\n', ("SELECT 1",)),
            ('up = "x"\nverify = "SELECT 1"\nverify = "SELECT 2"\n', ("SELECT 2",)),
            ('up = "x"\n', ()),
            ('up = "x"\nverify = None\n', ()),
        ],
    )
    def test_literal_verify_is_read(self, tmp_path: Path, text: str, expected: tuple) -> None:
        """A module-level literal `verify` gives the same queries as running the file."""
        (tmp_path / "001_a.py").write_text(text)
        registry = load_registry(tmp_path)
        assert registry.verify_queries(1) == expected
        assert load_migration(tmp_path / "001_a.py").verify == expected

    @pytest.mark.parametrize(
        "text",
        [
            'up = "x"\nverify = ["SELECT " + "1"]\n',
            'up = "x"\nQ = "SELECT 1"\nverify = [Q]\n',
            'up = "x"\nif True:\n    verify = "SELECT 1"\n',
            'up = "x"\ndef verify():\n    pass\n',
            'up = "x"\nfrom os import path as verify\n',
            'up = "x"\nverify = "SELECT 1"\nverify += ""\n',
            'up = "x"\nfor verify in ["SELECT 1"]:\n    pass\n',
            'up = "x"\nverify = 3\n',
            'up = "x"\nverify =\n',
        ],
    )
    def test_anything_else_is_unknown(self, tmp_path: Path, text: str) -> None:
        """A `verify` that only running the file could tell is None (the caller skips it)."""
        (tmp_path / "001_a.py").write_text(text)
        assert load_registry(tmp_path).verify_queries(1) is None

    def test_reading_verify_runs_nothing(self, folder: Path, tmp_path: Path) -> None:
        """Reading the verify queries of a `.py` file does not run its top level."""
        marker = tmp_path / "marker"
        marker_file(folder, marker)
        registry = load_registry(folder)
        assert registry.verify_queries(3) == (
            "SELECT COUNT(*) = 1 FROM sqlite_master WHERE name = 'marked'",
        )
        assert registry.verify_queries(1) == (
            "SELECT COUNT(*) = 1 FROM sqlite_master WHERE name = 'users';",
        )
        assert runs(marker) == 0


@pytest.fixture
def zipped(folder: Path, tmp_path: Path) -> Iterator[object]:
    """The FILES shipped in package `shipped_app` inside a zip on sys.path, as a Traversable."""
    archive = tmp_path / "app.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("shipped_app/__init__.py", "")
        for path in sorted(folder.iterdir()):
            zf.writestr(f"shipped_app/migrations/{path.name}", path.read_bytes())
    sys.path.insert(0, str(archive))
    importlib.invalidate_caches()
    try:
        yield importlib.resources.files("shipped_app") / "migrations"
    finally:
        sys.path.remove(str(archive))
        sys.modules.pop("shipped_app", None)
        importlib.invalidate_caches()


class TestTraversable:
    def test_checksums_equal_those_on_disk(self, zipped: object, folder: Path) -> None:
        """Files read from a zip (zipimport) have the checksums of the same files on disk."""
        in_zip, on_disk = load_registry(zipped), load_registry(folder)
        assert type(in_zip.directory).__name__ == "Path"  # zipfile.Path, not pathlib
        assert [(m.filename, m.checksum) for m in in_zip] == [
            (m.filename, m.checksum) for m in on_disk
        ]

    def test_code_loads_from_the_zip(self, zipped: object, folder: Path) -> None:
        """A `.py` migration inside the zip loads to the same value but for its path."""
        in_zip, on_disk = load_registry(zipped), load_registry(folder)
        a, b = in_zip.migration(2), on_disk.migration(2)
        assert (a.up, a.down, a.verify, a.description) == (b.up, b.down, b.verify, b.description)
        assert a.filename == "002_email.py"

    def test_a_migrator_runs_from_the_zip(self, zipped: object, tmp_path: Path) -> None:
        """Migrator(migrations=<Traversable>) applies, reports and verifies as from a directory."""
        from schemalog import Migrator

        migrator = Migrator(database=tmp_path / "app.db", migrations=zipped)
        assert migrator.upgrade().result is not None
        status = migrator.status()
        assert (status.version, status.pending) == (2, [])
        assert all(c["ok"] for c in migrator.verify())

    def test_a_traversable_that_is_no_directory(self, zipped: object) -> None:
        """A Traversable that is not a directory is refused like a path."""
        with pytest.raises(Exception, match="is not a directory"):
            load_registry(zipped / "001_users.sql")


class TestReadCache:
    def test_a_settled_file_is_read_once(self, folder: Path, monkeypatch) -> None:
        """A file last changed well before it was read is not read again while unchanged."""
        reads = []
        real = listing_module._bytes
        monkeypatch.setattr(listing_module, "_bytes", lambda p: reads.append(p) or real(p))
        clock = listing_module.time.time() + 60
        monkeypatch.setattr(listing_module.time, "time", lambda: clock)
        listing_module.READ_CACHE.clear()
        registry_module._REGISTRY_CACHE.clear()
        first = load_registry(folder)
        assert load_registry(folder).migrations == first.migrations
        assert len(reads) == len(FILES)

    def test_an_unchanged_directory_gives_back_its_registry(self, folder: Path, monkeypatch):
        """The same registry comes back while nothing changed; a new file makes a new one."""
        clock = listing_module.time.time() + 60
        monkeypatch.setattr(listing_module.time, "time", lambda: clock)
        listing_module.READ_CACHE.clear()
        registry_module._REGISTRY_CACHE.clear()
        first = load_registry(folder)
        assert load_registry(folder) is first
        (folder / "003_more.sql").write_text("-- migrate:up\nSELECT 1;\n")
        again = load_registry(folder)
        assert again is not first
        assert again.head == 3

    def test_a_change_of_size_or_mtime_is_read_again(self, folder: Path, monkeypatch) -> None:
        """Editing a file (its size, or only its mtime) makes the next load read it again."""
        clock = listing_module.time.time() + 60
        monkeypatch.setattr(listing_module.time, "time", lambda: clock)
        listing_module.READ_CACHE.clear()
        load_registry(folder)
        path = folder / "001_users.sql"
        path.write_text(FILES["001_users.sql"].replace("Users", "Usrs"))  # same size
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
        assert load_registry(folder).get(1).checksum == compute_checksum(path.read_bytes())

    def test_a_recent_file_is_not_cached(self, folder: Path) -> None:
        """A file changed within the settle time is read again on every load."""
        listing_module.READ_CACHE.clear()
        load_registry(folder)
        assert str(folder / "001_users.sql") not in listing_module.READ_CACHE

    def test_an_unreadable_file_names_itself(self, folder: Path) -> None:
        """A file that cannot be read is a MigrationFileError naming it."""
        path = folder / "001_users.sql"
        path.chmod(0)
        try:
            if os.access(path, os.R_OK):
                pytest.skip("running as a user who reads everything")
            with pytest.raises(MigrationFileError, match=r"001_users\.sql: cannot be read"):
                load_registry(folder)
        finally:
            path.chmod(0o600)
