"""Tests for schemalog.engine.files.registry: loading a migrations directory and checking it against the journal."""

from __future__ import annotations

import tempfile
from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemalog.engine.base.errors import ConfigError, MigrationFileError, RegistryError
from schemalog.engine.files.registry import Registry, check_against_journal, load_registry


@attrs.frozen
class Applied:
    """A stand-in for the journal's record of an applied migration."""

    version: int
    name: str
    checksum: str
    baselined: bool = False


def write(directory: Path, name: str, up: str = "SELECT 1;") -> Path:
    """Write a migration file with an `up` and return its path."""
    path = directory / name
    if name.endswith(".sql"):
        path.write_text(f"-- migrate:up\n{up}\n")
    else:
        path.write_text(f"up = {up!r}\n")
    return path


def registry_error(directory: Path) -> RegistryError:
    """Load `directory`, expecting a RegistryError; return it."""
    with pytest.raises(RegistryError) as info:
        load_registry(directory)
    assert info.value.exit_code == 2
    return info.value


def applied_from(registry: Registry, *versions: int) -> dict[int, Applied]:
    """Journal records matching the registry's files for `versions`."""
    records = {}
    for version in versions:
        migration = registry.get(version)
        assert migration is not None
        records[version] = Applied(version, migration.name, migration.checksum)
    return records


def journal_error(registry: Registry, applied: dict[int, Applied], current: int) -> RegistryError:
    """Check against the journal, expecting a RegistryError; return it."""
    with pytest.raises(RegistryError) as info:
        check_against_journal(registry, applied, current)
    return info.value


@pytest.fixture
def three(tmp_path: Path) -> Registry:
    """A registry of three migrations, 001 .. 003."""
    write(tmp_path, "001_initial.py", "CREATE TABLE users (id INTEGER PRIMARY KEY);")
    write(tmp_path, "002_add_name.sql", "ALTER TABLE users ADD COLUMN name TEXT;")
    write(tmp_path, "003_add_email.py", "ALTER TABLE users ADD COLUMN email TEXT;")
    return load_registry(tmp_path)


class TestRegistryValue:
    def test_accessors(self, three: Registry) -> None:
        """head, versions, get, len and iteration describe the migrations in order."""
        assert three.head == 3
        assert three.versions == (1, 2, 3)
        assert len(three) == 3
        assert [m.name for m in three] == ["initial", "add_name", "add_email"]
        migration = three.get(2)
        assert migration is not None
        assert migration.filename == "002_add_name.sql"
        assert three.get(4) is None

    def test_sorted_by_version(self, three: Registry) -> None:
        """A registry built from unsorted migrations holds them sorted."""
        reversed_registry = Registry(three.directory, tuple(reversed(three.migrations)))
        assert reversed_registry.versions == (1, 2, 3)
        assert reversed_registry == three
        assert reversed_registry.get(3) == three.get(3)

    def test_empty(self, tmp_path: Path) -> None:
        """An empty registry has head 0 and no versions."""
        registry = Registry(tmp_path, ())
        assert (registry.head, registry.versions, len(registry)) == (0, (), 0)
        assert list(registry) == []


class TestLoadRegistry:
    def test_empty_directory(self, tmp_path: Path) -> None:
        """An empty directory is a valid empty registry."""
        registry = load_registry(tmp_path)
        assert registry.directory == tmp_path
        assert registry.migrations == ()
        assert registry.head == 0

    def test_loads_py_and_sql(self, three: Registry, tmp_path: Path) -> None:
        """Both kinds of files are loaded, in version order."""
        assert [m.kind for m in three] == ["py", "sql", "py"]
        assert three.directory == tmp_path

    def test_zero_padding_is_free(self, tmp_path: Path) -> None:
        """Versions may be padded differently; their integer values count."""
        write(tmp_path, "1_a.py")
        write(tmp_path, "002_b.py")
        write(tmp_path, "00003_c.sql")
        assert load_registry(tmp_path).versions == (1, 2, 3)

    def test_versions_sort_numerically(self, tmp_path: Path) -> None:
        """Version 10 comes after 9 even without padding."""
        for version in range(1, 11):
            write(tmp_path, f"{version}_m{version}.py")
        assert load_registry(tmp_path).versions == tuple(range(1, 11))

    def test_ignored_entries(self, tmp_path: Path) -> None:
        """Private, hidden, cache, other-suffix files and sub-directories are ignored."""
        write(tmp_path, "001_a.py")
        (tmp_path / "__init__.py").write_text("raise SystemExit('never run')\n")
        (tmp_path / "_helpers.py").write_text("raise SystemExit('never run')\n")
        (tmp_path / ".002_hidden.py").write_text("x\n")
        (tmp_path / ".#001_a.py").write_text("x\n")
        (tmp_path / "__pycache__").mkdir()
        (tmp_path / "__pycache__" / "001_a.cpython-311.pyc").write_bytes(b"\0")
        (tmp_path / "README.md").write_text("notes\n")
        (tmp_path / "001_a.py~").write_text("x\n")
        (tmp_path / "002_old.sql.bak").write_text("x\n")
        (tmp_path / "002_dir.py").mkdir()
        assert load_registry(tmp_path).versions == (1,)

    def test_accepts_str_directory(self, tmp_path: Path) -> None:
        """A string directory is accepted and stored as a Path."""
        write(tmp_path, "001_a.py")
        assert load_registry(str(tmp_path)).directory == tmp_path  # type: ignore[arg-type]

    def test_missing_directory(self, tmp_path: Path) -> None:
        """A missing directory is a configuration error pointing at `schemalog init`."""
        missing = tmp_path / "migrations"
        with pytest.raises(ConfigError) as info:
            load_registry(missing)
        assert info.value.exit_code == 2
        assert info.value.path == str(missing)
        assert "does not exist" in info.value.what
        assert "schemalog init" in (info.value.hint or "")
        assert "--migrations" in (info.value.hint or "")

    def test_not_a_directory(self, tmp_path: Path) -> None:
        """A file given as the directory is a configuration error."""
        file = tmp_path / "migrations"
        file.write_text("")
        with pytest.raises(ConfigError) as info:
            load_registry(file)
        assert "is not a directory" in info.value.what
        assert "--migrations" in (info.value.hint or "")

    def test_bad_name(self, tmp_path: Path) -> None:
        """A .py or .sql file not named NNN_name is refused, naming it."""
        write(tmp_path, "001_a.py")
        write(tmp_path, "add-email.py")
        error = registry_error(tmp_path)
        assert error.what.startswith("add-email.py is not named like a migration")
        assert error.path == str(tmp_path / "add-email.py")
        assert "rename it to NNN_name.py" in (error.hint or "")

    @pytest.mark.parametrize("name", ["002_AddEmail.py", "002_x.SQL", "2-x.sql", "v2_x.py"])
    def test_bad_names(self, tmp_path: Path, name: str) -> None:
        """Upper case, other separators and prefixes are refused by name."""
        write(tmp_path, "001_a.py")
        (tmp_path / name).write_text("up = 'SELECT 1'\n")
        assert name in registry_error(tmp_path).what

    def test_duplicate_version(self, tmp_path: Path) -> None:
        """Two files with one version (.py and .sql) are refused, naming both."""
        write(tmp_path, "001_a.py")
        write(tmp_path, "002_b.py")
        write(tmp_path, "003_a.py")
        write(tmp_path, "003_b.sql")
        error = registry_error(tmp_path)
        assert error.what == "version 3 is used by more than one file: 003_a.py and 003_b.sql"
        assert error.path == str(tmp_path / "003_a.py")

    def test_duplicate_version_with_other_padding(self, tmp_path: Path) -> None:
        """3_a.py and 003_b.py share version 3."""
        write(tmp_path, "1_x.py")
        write(tmp_path, "2_y.py")
        write(tmp_path, "3_a.py")
        write(tmp_path, "003_b.py")
        error = registry_error(tmp_path)
        assert "version 3 is used by more than one file" in error.what
        assert "3_a.py" in error.what
        assert "003_b.py" in error.what

    def test_version_zero(self, tmp_path: Path) -> None:
        """Version 0 is refused, naming the file."""
        write(tmp_path, "000_init.py")
        write(tmp_path, "001_a.py")
        error = registry_error(tmp_path)
        assert error.what.startswith("000_init.py has version 0; versions start at 1")
        assert "001_init.py" in (error.hint or "")

    def test_gap(self, tmp_path: Path) -> None:
        """A missing version is refused, naming it and its neighbours."""
        write(tmp_path, "001_a.py")
        write(tmp_path, "002_b.py")
        write(tmp_path, "004_d.sql")
        error = registry_error(tmp_path)
        assert error.what == "version 3 is missing between 002_b.py and 004_d.sql"
        assert error.path == str(tmp_path / "004_d.sql")

    def test_gap_of_several(self, tmp_path: Path) -> None:
        """A run of missing versions is named as a range."""
        write(tmp_path, "001_a.py")
        write(tmp_path, "005_e.py")
        error = registry_error(tmp_path)
        assert error.what == "versions 2-4 are missing between 001_a.py and 005_e.py"

    def test_gap_at_start(self, tmp_path: Path) -> None:
        """Versions not starting at 1 are refused."""
        write(tmp_path, "002_b.py")
        write(tmp_path, "003_c.py")
        error = registry_error(tmp_path)
        assert error.what.startswith("version 1 is missing before 002_b.py")

    def test_all_problems_in_one_error(self, tmp_path: Path) -> None:
        """Every name problem is listed, the first on a line of its own."""
        write(tmp_path, "000_zero.py")
        write(tmp_path, "001_a.py")
        write(tmp_path, "001_b.py")
        write(tmp_path, "004_d.py")
        write(tmp_path, "Bad.sql")
        error = registry_error(tmp_path)
        lines = error.what.splitlines()
        assert lines[0] == (
            f"000_zero.py has version 0; versions start at 1 (and 3 more problems in {tmp_path}):"
        )
        assert lines[1:] == [
            "  - Bad.sql is not named like a migration (NNN_name.py or NNN_name.sql)",
            "  - version 1 is used by more than one file: 001_a.py and 001_b.py",
            "  - versions 2-3 are missing between 001_a.py and 004_d.py",
        ]
        hint = error.hint or ""
        assert "001_zero.py" in hint
        assert "own number" in hint
        assert "without gaps" in hint

    def test_two_problems_say_one_more(self, tmp_path: Path) -> None:
        """With two problems the first line says one more follows."""
        write(tmp_path, "003_c.py")
        write(tmp_path, "x.py")
        error = registry_error(tmp_path)
        assert "(and 1 more problem in" in error.what.splitlines()[0]

    def test_names_checked_before_code_runs(self, tmp_path: Path) -> None:
        """A bad set of names is refused before any file's code runs."""
        marker = tmp_path / "ran"
        write(tmp_path, "001_a.py").write_text(f"open({str(marker)!r}, 'w')\nup = 'SELECT 1'\n")
        write(tmp_path, "003_c.py")
        registry_error(tmp_path)
        assert not marker.exists()

    def test_bad_file_content(self, tmp_path: Path) -> None:
        """A file whose code is invalid raises MigrationFileError naming it when it is loaded."""
        write(tmp_path, "001_a.py")
        (tmp_path / "002_b.py").write_text("down = 'SELECT 1'\n")
        registry = load_registry(tmp_path)
        assert registry.migration(1).up == "SELECT 1;"
        with pytest.raises(MigrationFileError) as info:
            registry.migration(2)
        assert info.value.path == str(tmp_path / "002_b.py")

    def test_bad_bytes_are_refused_when_listed(self, tmp_path: Path) -> None:
        """A file that is not UTF-8 is refused by load_registry itself (its checksum needs it)."""
        write(tmp_path, "001_a.sql")
        (tmp_path / "002_b.sql").write_bytes(b"-- migrate:up\nSELECT '\xff';\n")
        with pytest.raises(MigrationFileError, match=r"002_b\.sql: not valid UTF-8"):
            load_registry(tmp_path)

    @given(st.sets(st.integers(min_value=1, max_value=12), max_size=8))
    def test_gap_found_exactly_when_versions_are_not_contiguous(self, versions: set[int]) -> None:
        """A set of versions loads exactly when it is 1..N."""
        with tempfile.TemporaryDirectory() as name:
            directory = Path(name)
            for version in versions:
                write(directory, f"{version:03d}_m.py")
            contiguous = versions == set(range(1, len(versions) + 1))
            if contiguous:
                assert load_registry(directory).versions == tuple(sorted(versions))
            else:
                with pytest.raises(RegistryError, match="missing"):
                    load_registry(directory)


class TestCheckAgainstJournal:
    def test_consistent(self, three: Registry) -> None:
        """Files matching the applied records pass."""
        check_against_journal(three, applied_from(three, 1, 2), 2)
        check_against_journal(three, applied_from(three, 1, 2, 3), 3)

    def test_fresh_database(self, three: Registry) -> None:
        """Nothing applied and version 0 pass."""
        check_against_journal(three, {}, 0)

    def test_applied_file_gone(self, three: Registry) -> None:
        """An applied migration whose file is gone is refused, naming it."""
        applied = applied_from(three, 1, 2, 3)
        applied[4] = Applied(4, "add_phone", "f" * 64)
        error = journal_error(three, applied, 4)
        assert error.what.startswith("migration 004_add_phone was applied but its file")
        assert "004_add_phone.py or .sql" in error.what
        assert "restore the file" in (error.hint or "")
        assert error.exit_code == 2

    def test_baselined_beyond_files_without_name(self, three: Registry) -> None:
        """A baselined version without a file and without a name is named by its number."""
        applied = {v: Applied(v, "", "", baselined=True) for v in (1, 2, 3, 4)}
        error = journal_error(three, applied, 4)
        assert error.what.startswith("migration 004 was applied but its file (004.py or .sql)")

    def test_applied_file_edited(self, three: Registry) -> None:
        """An applied migration whose checksum differs is refused with both short checksums."""
        applied = applied_from(three, 1, 2)
        applied[2] = Applied(2, "add_name", "a" * 64)
        error = journal_error(three, applied, 2)
        migration = three.get(2)
        assert migration is not None
        assert error.what == (
            f"002_add_name.sql was changed after it was applied "
            f"(checksum applied {'a' * 12}, file now {migration.checksum[:12]})"
        )
        assert error.hint == "restore the original file, and put the change in a new migration"
        assert error.path == str(migration.path)

    def test_applied_file_replaced_by_other_migration(self, three: Registry) -> None:
        """A different migration under an applied version is named as such."""
        applied = applied_from(three, 1, 2, 3)
        applied[3] = Applied(3, "add_phone", "b" * 64)
        error = journal_error(three, applied, 3)
        assert error.what.startswith("version 3 was applied as 003_add_phone, but 003_add_email.py")
        assert "restore 003_add_phone" in (error.hint or "")
        assert "renumber 003_add_email.py" in (error.hint or "")

    def test_renamed_file_with_same_content_passes(self, three: Registry) -> None:
        """A file renamed but unchanged keeps matching its applied record."""
        applied = applied_from(three, 1)
        applied[1] = attrs.evolve(applied[1], name="first")
        check_against_journal(three, applied, 1)

    def test_baselined_without_checksum_skips_check(self, three: Registry) -> None:
        """A baselined record without a checksum is not compared."""
        applied = {v: Applied(v, "x", "", baselined=True) for v in (1, 2)}
        check_against_journal(three, applied, 2)

    def test_baselined_with_checksum_is_checked(self, three: Registry) -> None:
        """A baselined record that has a checksum is still compared."""
        applied = applied_from(three, 1)
        applied[1] = attrs.evolve(applied[1], checksum="c" * 64, baselined=True)
        error = journal_error(three, applied, 1)
        assert "001_initial.py was changed after it was applied" in error.what

    def test_unbaselined_empty_checksum_is_checked(self, three: Registry) -> None:
        """An ordinary record with an empty checksum does not pass silently."""
        applied = applied_from(three, 1)
        applied[1] = attrs.evolve(applied[1], checksum="")
        error = journal_error(three, applied, 1)
        assert "checksum applied (none)" in error.what

    def test_file_below_head_never_applied(self, three: Registry) -> None:
        """A file numbered at or below the current version that was never applied is refused."""
        applied = applied_from(three, 1, 3)
        error = journal_error(three, applied, 3)
        assert error.what == (
            "002_add_name.sql was never applied, but the database is already at version 3"
        )
        assert "renumber it above the head (version 3)" in (error.hint or "")

    def test_all_problems_in_one_error(self, three: Registry, tmp_path: Path) -> None:
        """Every problem is reported, in version order, the first on line one."""
        applied = applied_from(three, 1, 3)
        applied[1] = attrs.evolve(applied[1], checksum="d" * 64)
        applied[5] = Applied(5, "gone", "e" * 64)
        error = journal_error(three, applied, 5)
        lines = error.what.splitlines()
        assert lines[0].startswith("001_initial.py was changed after it was applied")
        assert lines[0].endswith(f"(and 2 more problems in {tmp_path}):")
        assert lines[1].startswith("  - 002_add_name.sql was never applied")
        assert lines[2].startswith("  - migration 005_gone was applied but its file")
        assert len(lines) == 3
        assert error.path == str(tmp_path / "001_initial.py")
        hint = error.hint or ""
        assert "put the change in a new migration" in hint
        assert "renumber it above the head" in hint
        assert "restore the file" in hint

    def test_repeated_hint_given_once(self, three: Registry) -> None:
        """Two problems of one kind share one hint."""
        applied = {m.version: Applied(m.version, m.name, "0" * 64) for m in three.migrations[:2]}
        error = journal_error(three, applied, 2)
        assert error.hint == "restore the original file, and put the change in a new migration"

    def test_reads_only(self, three: Registry) -> None:
        """Checking leaves the registry and the records as they were."""
        applied = applied_from(three, 1, 2)
        snapshot = (three, dict(applied))
        check_against_journal(three, applied, 2)
        assert (three, applied) == snapshot
