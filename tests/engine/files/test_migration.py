"""Tests for schemalog.engine.files.migration: the Migration value, file names, checksums and loading."""

from __future__ import annotations

import hashlib
import sqlite3
import sys
from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemalog.engine.base.errors import MigrationFileError
from schemalog.engine.files.migration import (
    Migration,
    compute_checksum,
    load_migration,
    normalize_source,
    parse_filename,
)

EXAMPLE_PY = '''"""Add an email column to users.

Impact: new nullable column; existing rows untouched.
"""
up = "ALTER TABLE users ADD COLUMN email TEXT;"
down = "ALTER TABLE users DROP COLUMN email;"
verify = ["SELECT COUNT(*) = 1 FROM pragma_table_info('users') WHERE name = 'email'"]
'''

EXAMPLE_SQL = """-- Add an email column to users.
--
-- Impact: new nullable column.
-- migrate:up
ALTER TABLE users ADD COLUMN email TEXT;
UPDATE users SET email = 'a;b';

-- migrate:down
ALTER TABLE users DROP COLUMN email;

-- migrate:verify
SELECT COUNT(*) = 1 FROM pragma_table_info('users') WHERE name = 'email';
SELECT 1
"""


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    """Write a migration file and return its path."""
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_bytes(text.encode("utf-8"))
    return path


def private_modules() -> list[str]:
    """Names in sys.modules that look like a loaded migration."""
    return [name for name in sys.modules if name.startswith("_schemalog_migration_")]


def load_error(path: Path) -> MigrationFileError:
    """Load `path`, expecting a MigrationFileError that names the file; return it."""
    with pytest.raises(MigrationFileError) as info:
        load_migration(path)
    assert info.value.path == str(path)
    assert path.name in info.value.what
    assert info.value.exit_code == 2
    return info.value


class TestParseFilename:
    @pytest.mark.parametrize(
        ("filename", "expected"),
        [
            ("003_add_email.py", (3, "add_email", "py")),
            ("1_initial.sql", (1, "initial", "sql")),
            ("0007_x.py", (7, "x", "py")),
            ("000_zero.sql", (0, "zero", "sql")),
            ("12_2nd_step.py", (12, "2nd_step", "py")),
        ],
    )
    def test_migration_names(self, filename: str, expected: tuple[int, str, str]) -> None:
        """A migration name yields its version (zero-padding ignored), name and kind."""
        assert parse_filename(filename) == expected

    @pytest.mark.parametrize(
        "filename",
        [
            "add_email.py",
            "003-add-email.py",
            "003_Add_email.py",
            "003_.py",
            "003__x.py",
            "003_x.txt",
            "003_x.PY",
            "003_x.py.bak",
            "\u0663_x.py",
            "x003_y.py",
        ],
    )
    def test_other_names(self, filename: str) -> None:
        """Anything else is not a migration name."""
        assert parse_filename(filename) is None


_UTF8 = st.characters(blacklist_categories=["Cs"])


class TestChecksum:
    def test_is_sha256_of_normalised_text(self) -> None:
        """The checksum is the SHA-256 hex of the normalised UTF-8 text."""
        raw = b"\xef\xbb\xbfup = 'x'\r\n\r\n  "
        assert compute_checksum(raw) == hashlib.sha256(b"up = 'x'").hexdigest()

    def test_crlf_and_cr_resave_keeps_checksum(self) -> None:
        """Re-saving with CRLF or CR line endings keeps the checksum."""
        lf = EXAMPLE_PY.encode()
        assert compute_checksum(lf.replace(b"\n", b"\r\n")) == compute_checksum(lf)
        assert compute_checksum(lf.replace(b"\n", b"\r")) == compute_checksum(lf)

    def test_bom_and_final_newlines_keep_checksum(self) -> None:
        """A leading BOM and whitespace at the very end do not count."""
        lf = EXAMPLE_PY.encode()
        assert compute_checksum(b"\xef\xbb\xbf" + lf + b"\n\n \t") == compute_checksum(lf)

    def test_changed_statement_changes_checksum(self) -> None:
        """Changing any statement changes the checksum."""
        edited = EXAMPLE_PY.replace("email TEXT", "email TEXT NOT NULL DEFAULT ''")
        assert compute_checksum(edited.encode()) != compute_checksum(EXAMPLE_PY.encode())

    def test_inner_whitespace_changes_checksum(self) -> None:
        """Whitespace inside the file (not at its end) counts."""
        edited = EXAMPLE_PY.replace("up = ", "up  = ")
        assert compute_checksum(edited.encode()) != compute_checksum(EXAMPLE_PY.encode())

    def test_invalid_utf8_is_refused(self) -> None:
        """Bytes that are not UTF-8 raise MigrationFileError giving the byte offset."""
        with pytest.raises(MigrationFileError, match="byte 3"):
            compute_checksum(b"up \xff= 1")

    def test_normalize_source(self) -> None:
        """Normalising removes the BOM, unifies line endings and strips the end."""
        assert normalize_source(b"\xef\xbb\xbfa\r\nb\rc \n\n") == "a\nb\nc"

    @given(
        st.lists(
            st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=["Cs"])),
            max_size=6,
        )
    )
    def test_line_endings_never_change_checksum(self, lines: list[str]) -> None:
        """For any text, joining its lines with LF, CRLF or CR gives one checksum."""
        checksums = {compute_checksum(sep.join(lines).encode()) for sep in ("\n", "\r\n", "\r")}
        assert len(checksums) == 1

    @given(st.text(_UTF8, min_size=1).filter(lambda s: s.strip() and "\r" not in s), st.text(_UTF8))
    def test_visible_edit_changes_checksum(self, text: str, prefix: str) -> None:
        """Adding visible text at the start of a file changes its checksum."""
        original = compute_checksum(text.encode())
        edited = compute_checksum(("x" + prefix + text).encode())
        assert edited != original


class TestMigrationValue:
    def test_properties(self, tmp_path: Path) -> None:
        """filename, has_down and kind describe the file."""
        migration = Migration(
            version=3,
            name="add_email",
            path=tmp_path / "003_add_email.sql",
            description="",
            up="SELECT 1;",
            down=None,
            checksum="0" * 64,
        )
        assert migration.filename == "003_add_email.sql"
        assert migration.has_down is False
        assert migration.kind == "sql"
        assert migration.verify == ()
        assert migration.transactional is True
        assert migration.foreign_keys is True

    def test_frozen(self, tmp_path: Path) -> None:
        """A Migration cannot be changed after it is made."""
        migration = load_migration(write(tmp_path, "001_a.py", "up = 'SELECT 1'"))
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            migration.version = 2  # type: ignore[misc]

    def test_version_must_be_positive(self, tmp_path: Path) -> None:
        """A Migration value refuses a version below 1."""
        with pytest.raises(ValueError, match="version"):
            Migration(
                version=0,
                name="x",
                path=tmp_path / "000_x.py",
                description="",
                up="SELECT 1",
                down=None,
                checksum="",
            )

    def test_same_file_loads_equal(self, tmp_path: Path) -> None:
        """Loading the same SQL file twice gives equal values."""
        path = write(tmp_path, "001_a.sql", EXAMPLE_SQL)
        assert load_migration(path) == load_migration(path)


class TestLoadPython:
    def test_contract_example(self, tmp_path: Path) -> None:
        """The example from the contract loads with every field."""
        path = write(tmp_path, "003_add_email.py", EXAMPLE_PY)
        migration = load_migration(path)
        assert migration.version == 3
        assert migration.name == "add_email"
        assert migration.path == path
        assert migration.kind == "py"
        assert migration.description == (
            "Add an email column to users.\n\nImpact: new nullable column; existing rows untouched."
        )
        assert migration.up == "ALTER TABLE users ADD COLUMN email TEXT;"
        assert migration.down == "ALTER TABLE users DROP COLUMN email;"
        assert migration.has_down
        assert migration.verify == (
            "SELECT COUNT(*) = 1 FROM pragma_table_info('users') WHERE name = 'email'",
        )
        assert migration.transactional is True
        assert migration.foreign_keys is True
        assert migration.checksum == compute_checksum(EXAMPLE_PY.encode())

    def test_minimal_file(self, tmp_path: Path) -> None:
        """Only `up` is required; the rest takes defaults."""
        migration = load_migration(write(tmp_path, "1_only_up.py", "up = 'CREATE TABLE t (x)'"))
        assert migration.description == ""
        assert migration.down is None
        assert not migration.has_down
        assert migration.verify == ()

    def test_callables(self, tmp_path: Path) -> None:
        """`up` and `down` may be functions taking the connection, using module globals."""
        source = (
            "TABLE = 'things'\n"
            "def up(conn):\n"
            "    conn.execute(f'CREATE TABLE {TABLE} (x)')\n"
            "def down(conn):\n"
            "    conn.execute(f'DROP TABLE {TABLE}')\n"
        )
        migration = load_migration(write(tmp_path, "002_things.py", source))
        assert callable(migration.up)
        assert callable(migration.down)
        conn = sqlite3.connect(":memory:")
        migration.up(conn)
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("things",)]
        migration.down(conn)
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []

    def test_options(self, tmp_path: Path) -> None:
        """`transactional` and `foreign_keys` are read when set."""
        source = "up = 'VACUUM'\ntransactional = False\nforeign_keys = False\n"
        migration = load_migration(write(tmp_path, "004_vacuum.py", source))
        assert migration.transactional is False
        assert migration.foreign_keys is False

    def test_verify_string_is_one_query(self, tmp_path: Path) -> None:
        """A single verify string becomes a one-query tuple."""
        source = "up = 'SELECT 1'\nverify = 'SELECT 1'\n"
        assert load_migration(write(tmp_path, "001_a.py", source)).verify == ("SELECT 1",)

    def test_verify_items_are_split_into_statements(self, tmp_path: Path) -> None:
        """Each verify item holding several statements gives one query per statement."""
        source = "up = 'SELECT 1'\nverify = ('SELECT 1; SELECT 2;', \"SELECT ';'\")\n"
        migration = load_migration(write(tmp_path, "001_a.py", source))
        assert migration.verify == ("SELECT 1;", "SELECT 2;", "SELECT ';'")

    def test_verify_none_is_empty(self, tmp_path: Path) -> None:
        """`verify = None` means no verify queries."""
        source = "up = 'SELECT 1'\nverify = None\n"
        assert load_migration(write(tmp_path, "001_a.py", source)).verify == ()

    def test_blank_down_means_no_down(self, tmp_path: Path) -> None:
        """A down holding no statement means the migration cannot be reverted."""
        source = "up = 'SELECT 1'\ndown = '  -- nothing to undo\\n'\n"
        assert load_migration(write(tmp_path, "001_a.py", source)).down is None

    def test_extra_names_are_ignored(self, tmp_path: Path) -> None:
        """Other module-level names, imports and helpers are allowed."""
        source = "import json\nHELPER = 1\ndef _helper(): pass\nup = 'SELECT 1'\n"
        assert load_migration(write(tmp_path, "001_a.py", source)).up == "SELECT 1"

    def test_not_left_in_sys_modules(self, tmp_path: Path) -> None:
        """The module is registered under a private name only while it loads."""
        source = (
            "import sys\n"
            "SEEN = __name__ in sys.modules\n"
            "NAME = __name__\n"
            "def up(conn):\n"
            "    return SEEN, NAME\n"
        )
        before = private_modules()
        migration = load_migration(write(tmp_path, "005_names.py", source))
        seen, name = migration.up(sqlite3.connect(":memory:"))  # type: ignore[misc]
        assert seen is True
        assert name == f"_schemalog_migration_5_{migration.checksum[:8]}"
        assert private_modules() == before
        assert name not in sys.modules

    def test_not_left_in_sys_modules_after_failure(self, tmp_path: Path) -> None:
        """A module that raises while loading is not left in sys.modules either."""
        before = private_modules()
        load_error(write(tmp_path, "001_a.py", "up = 'SELECT 1'\nraise RuntimeError('no')\n"))
        assert private_modules() == before

    def test_dataclass_in_migration(self, tmp_path: Path) -> None:
        """Code that looks its module up while loading (a dataclass) works."""
        source = (
            "from __future__ import annotations\n"
            "import dataclasses\n"
            "@dataclasses.dataclass\n"
            "class Row:\n"
            "    x: int\n"
            "up = 'SELECT %d' % Row(1).x\n"
        )
        assert load_migration(write(tmp_path, "001_a.py", source)).up == "SELECT 1"

    def test_no_bytecode_written(self, tmp_path: Path) -> None:
        """Loading leaves no __pycache__ in the migrations directory."""
        load_migration(write(tmp_path, "001_a.py", "up = 'SELECT 1'"))
        assert not (tmp_path / "__pycache__").exists()

    def test_crlf_resave_keeps_checksum_and_content(self, tmp_path: Path) -> None:
        """Re-saving a .py file with CRLF endings keeps its checksum and its SQL."""
        lf = load_migration(write(tmp_path, "003_add_email.py", EXAMPLE_PY))
        (tmp_path / "crlf").mkdir()
        crlf_text = EXAMPLE_PY.replace("\n", "\r\n")
        crlf = load_migration(write(tmp_path / "crlf", "003_add_email.py", crlf_text))
        assert crlf.checksum == lf.checksum
        assert (crlf.up, crlf.down, crlf.verify) == (lf.up, lf.down, lf.verify)
        assert crlf.description == lf.description

    def test_changed_statement_changes_checksum(self, tmp_path: Path) -> None:
        """Editing a statement of a loaded file changes its checksum."""
        path = write(tmp_path, "003_add_email.py", EXAMPLE_PY)
        before = load_migration(path).checksum
        write(tmp_path, "003_add_email.py", EXAMPLE_PY.replace("DROP COLUMN", "DROP  COLUMN"))
        assert load_migration(path).checksum != before

    def test_syntax_error_names_line(self, tmp_path: Path) -> None:
        """A syntax error is reported with its line number."""
        error = load_error(write(tmp_path, "001_a.py", "up = 'SELECT 1'\n\ndef broken(:\n"))
        assert "syntax error at line 3" in error.what

    def test_exception_at_import_names_line(self, tmp_path: Path) -> None:
        """An exception while loading is reported with its type and line."""
        source = "up = 'SELECT 1'\nx = 1\ny = x / 0\n"
        error = load_error(write(tmp_path, "001_a.py", source))
        assert "ZeroDivisionError at line 3" in error.what

    def test_exception_in_imported_code_names_migration_line(self, tmp_path: Path) -> None:
        """An exception raised in another module points at the migration's own line."""
        source = "import json\n\njson.loads('{')\nup = 'SELECT 1'\n"
        error = load_error(write(tmp_path, "001_a.py", source))
        assert "JSONDecodeError at line 3" in error.what

    def test_system_exit_at_import(self, tmp_path: Path) -> None:
        """A module calling sys.exit() while loading is a file error, not an exit."""
        error = load_error(write(tmp_path, "001_a.py", "import sys\nsys.exit(3)\n"))
        assert "SystemExit" in error.what

    def test_missing_up(self, tmp_path: Path) -> None:
        """A module without `up` is refused."""
        error = load_error(write(tmp_path, "001_a.py", "down = 'SELECT 1'\n"))
        assert "no `up`" in error.what
        assert error.hint

    def test_up_none(self, tmp_path: Path) -> None:
        """`up = None` is refused."""
        error = load_error(write(tmp_path, "001_a.py", "up = None\n"))
        assert "`up` is None" in error.what

    @pytest.mark.parametrize("source", ["up = ''", "up = '  \\n'", "up = '-- just a comment'"])
    def test_empty_sql_up(self, tmp_path: Path, source: str) -> None:
        """An SQL `up` without any statement is refused."""
        error = load_error(write(tmp_path, "001_a.py", source))
        assert "`up` holds no SQL statement" in error.what

    @pytest.mark.parametrize(
        ("source", "expected"),
        [
            ("up = 42", "`up` must be SQL text or a function taking the connection, not int"),
            ("up = b'SELECT 1'", "not bytes"),
            ("up = 'SELECT 1'\ndown = ['x']", "`down` must be SQL text"),
            ("up = 'SELECT 1'\nverify = 3", "`verify` must be a query or a list"),
            ("up = 'SELECT 1'\nverify = {'SELECT 1'}", "not set"),
            ("up = 'SELECT 1'\nverify = ['SELECT 1', 2]", "`verify` item 1 must be a query"),
            ("up = 'SELECT 1'\nverify = ['SELECT 1', ' ']", "`verify` item 1 holds no query"),
            ("up = 'SELECT 1'\ntransactional = 0", "`transactional` must be True or False"),
            ("up = 'SELECT 1'\nforeign_keys = 'no'", "`foreign_keys` must be True or False"),
        ],
    )
    def test_wrong_types(self, tmp_path: Path, source: str, expected: str) -> None:
        """Each attribute of the wrong type is refused, naming the attribute."""
        error = load_error(write(tmp_path, "001_a.py", source))
        assert expected in error.what

    @pytest.mark.parametrize(
        "source",
        ["def up(): pass", "def up(conn, other): pass", "up = lambda: None"],
    )
    def test_callable_must_take_one_argument(self, tmp_path: Path, source: str) -> None:
        """A function that cannot be called with the connection alone is refused."""
        error = load_error(write(tmp_path, "001_a.py", source))
        assert "`up` must take one argument" in error.what

    def test_callable_down_checked_too(self, tmp_path: Path) -> None:
        """A `down` function is checked like `up`."""
        error = load_error(write(tmp_path, "001_a.py", "up = 'SELECT 1'\ndef down(): pass\n"))
        assert "`down` must take one argument" in error.what

    def test_callable_with_optional_parameters(self, tmp_path: Path) -> None:
        """A function with extra optional parameters is accepted."""
        source = "def up(conn, *, verbose=False):\n    pass\n"
        assert callable(load_migration(write(tmp_path, "001_a.py", source)).up)

    def test_builtin_callable_without_signature(self, tmp_path: Path) -> None:
        """A callable whose signature cannot be read is accepted."""
        assert load_migration(write(tmp_path, "001_a.py", "up = max\n")).up is max

    def test_nul_in_sql_string(self, tmp_path: Path) -> None:
        """A NUL character in SQL text is refused."""
        error = load_error(write(tmp_path, "001_a.py", "up = 'SELECT 1\\x00'\n"))
        assert "`up` contains a NUL character at offset 8" in error.what

    def test_lone_surrogate_in_sql_string(self, tmp_path: Path) -> None:
        """A lone surrogate in SQL text, which cannot be encoded, is refused."""
        error = load_error(write(tmp_path, "001_a.py", "up = 'SELECT 1'\ndown = '\\ud800'\n"))
        assert "`down` contains a lone surrogate (U+D800)" in error.what

    def test_nul_in_verify_item(self, tmp_path: Path) -> None:
        """A NUL character in a verify query is refused."""
        error = load_error(write(tmp_path, "001_a.py", "up = 'SELECT 1'\nverify = ['\\x00']\n"))
        assert "`verify` item 0 contains a NUL character" in error.what


class TestLoadFile:
    def test_bad_name(self, tmp_path: Path) -> None:
        """A file not named NNN_name is refused with a rename hint."""
        error = load_error(write(tmp_path, "AddEmail.py", "up = 'SELECT 1'"))
        assert "not a migration file name" in error.what
        assert "NNN_name" in (error.hint or "")

    def test_version_zero(self, tmp_path: Path) -> None:
        """Version 0 is refused."""
        error = load_error(write(tmp_path, "000_a.py", "up = 'SELECT 1'"))
        assert "version 0" in error.what

    def test_unreadable(self, tmp_path: Path) -> None:
        """A path that cannot be read (here a directory) is refused."""
        (tmp_path / "001_a.py").mkdir()
        error = load_error(tmp_path / "001_a.py")
        assert "cannot be read" in error.what

    def test_invalid_utf8(self, tmp_path: Path) -> None:
        """A file that is not UTF-8 is refused, naming it."""
        error = load_error(write(tmp_path, "001_a.sql", b"-- migrate:up\nSELECT '\xe9';\n"))
        assert "not valid UTF-8" in error.what
        assert error.hint == "save the file as UTF-8"

    def test_nul_in_file(self, tmp_path: Path) -> None:
        """A NUL character anywhere in the file is refused, with its line."""
        error = load_error(write(tmp_path, "001_a.sql", "-- migrate:up\nSELECT 1;\x00\n"))
        assert "NUL character (line 2)" in error.what

    def test_accepts_str_path(self, tmp_path: Path) -> None:
        """A string path is accepted and stored as a Path."""
        path = write(tmp_path, "001_a.py", "up = 'SELECT 1'")
        assert load_migration(str(path)).path == path  # type: ignore[arg-type]


class TestLoadSql:
    def test_sections(self, tmp_path: Path) -> None:
        """up, down and verify sections and the description are read."""
        path = write(tmp_path, "003_add_email.sql", EXAMPLE_SQL)
        migration = load_migration(path)
        assert migration.kind == "sql"
        assert (migration.version, migration.name) == (3, "add_email")
        assert migration.description == (
            "Add an email column to users.\n\nImpact: new nullable column."
        )
        assert migration.up == (
            "ALTER TABLE users ADD COLUMN email TEXT;\nUPDATE users SET email = 'a;b';"
        )
        assert migration.down == "ALTER TABLE users DROP COLUMN email;"
        assert migration.verify == (
            "SELECT COUNT(*) = 1 FROM pragma_table_info('users') WHERE name = 'email';",
            "SELECT 1",
        )
        assert migration.transactional is True
        assert migration.foreign_keys is True
        assert migration.checksum == compute_checksum(EXAMPLE_SQL.encode())

    def test_only_up(self, tmp_path: Path) -> None:
        """A file with only an up section has no down, no verify, no description."""
        migration = load_migration(write(tmp_path, "001_a.sql", "-- migrate:up\nSELECT 1;\n"))
        assert (migration.up, migration.down, migration.verify) == ("SELECT 1;", None, ())
        assert migration.description == ""

    def test_headers_are_case_insensitive(self, tmp_path: Path) -> None:
        """Section lines are recognised whatever their case and spacing."""
        text = "--Migrate:UP\nSELECT 1;\n  --   MIGRATE:Down\nSELECT 2;\n"
        migration = load_migration(write(tmp_path, "001_a.sql", text))
        assert (migration.up, migration.down) == ("SELECT 1;", "SELECT 2;")

    def test_sections_in_any_order(self, tmp_path: Path) -> None:
        """Sections may come in any order."""
        text = "-- migrate:verify\nSELECT 1;\n-- migrate:down\nSELECT 2;\n-- migrate:up\nSELECT 3;"
        migration = load_migration(write(tmp_path, "001_a.sql", text))
        assert (migration.up, migration.down, migration.verify) == (
            "SELECT 3;",
            "SELECT 2;",
            ("SELECT 1;",),
        )

    def test_options_on_up_line(self, tmp_path: Path) -> None:
        """`transaction:false` and `foreign_keys:false` on the up line set the flags."""
        text = "-- migrate:up transaction:false Foreign_Keys:FALSE\nVACUUM;\n"
        migration = load_migration(write(tmp_path, "001_a.sql", text))
        assert migration.transactional is False
        assert migration.foreign_keys is False

    def test_options_may_say_true(self, tmp_path: Path) -> None:
        """Options may also be spelled out as true."""
        text = "-- migrate:up transactional:true foreign_keys:true\nSELECT 1;\n"
        migration = load_migration(write(tmp_path, "001_a.sql", text))
        assert (migration.transactional, migration.foreign_keys) == (True, True)

    @pytest.mark.parametrize("option", ["transacton:false", "transaction:no", "fast", "x:"])
    def test_unknown_option(self, tmp_path: Path, option: str) -> None:
        """A misspelt option is refused rather than ignored."""
        error = load_error(write(tmp_path, "001_a.sql", f"-- migrate:up {option}\nSELECT 1;\n"))
        assert f"unknown option `{option}` on line 1" in error.what

    def test_options_on_other_sections(self, tmp_path: Path) -> None:
        """Options on the down or verify line are refused."""
        text = "-- migrate:up\nSELECT 1;\n-- migrate:down transaction:false\nSELECT 2;\n"
        error = load_error(write(tmp_path, "001_a.sql", text))
        assert "options on line 3" in error.what

    def test_unknown_section(self, tmp_path: Path) -> None:
        """A misspelt section name is refused with its line."""
        text = "-- migrate:up\nSELECT 1;\n-- migrate:donw\nSELECT 2;\n"
        error = load_error(write(tmp_path, "001_a.sql", text))
        assert "unknown section `-- migrate:donw` on line 3" in error.what

    def test_missing_up(self, tmp_path: Path) -> None:
        """A file without an up section is refused."""
        error = load_error(write(tmp_path, "001_a.sql", "-- migrate:down\nSELECT 1;\n"))
        assert "no `-- migrate:up` section" in error.what

    def test_no_sections_at_all(self, tmp_path: Path) -> None:
        """A file of comments only has no up section."""
        error = load_error(write(tmp_path, "001_a.sql", "-- just a note\n"))
        assert "no `-- migrate:up` section" in error.what

    def test_duplicate_section(self, tmp_path: Path) -> None:
        """A section appearing twice is refused, naming both lines."""
        text = "-- migrate:up\nSELECT 1;\n-- migrate:down\n\n-- migrate:up\nSELECT 2;\n"
        error = load_error(write(tmp_path, "001_a.sql", text))
        assert "`-- migrate:up` appears twice (lines 1 and 5)" in error.what

    def test_sql_before_first_section(self, tmp_path: Path) -> None:
        """SQL before the first section is refused."""
        text = "-- note\nCREATE TABLE t (x);\n-- migrate:up\nSELECT 1;\n"
        error = load_error(write(tmp_path, "001_a.sql", text))
        assert "SQL before the first" in error.what

    def test_block_comment_before_first_section(self, tmp_path: Path) -> None:
        """A block comment before the first section is allowed and not in the description."""
        text = "/* licence; text */\n-- The description.\n-- migrate:up\nSELECT 1;\n"
        migration = load_migration(write(tmp_path, "001_a.sql", text))
        assert migration.description == "The description."

    def test_description_keeps_inner_blank_lines(self, tmp_path: Path) -> None:
        """Blank lines between comment paragraphs stay; leading and trailing ones go."""
        text = "\n-- First.\n\n--Second.\n\n-- migrate:up\nSELECT 1;\n"
        migration = load_migration(write(tmp_path, "001_a.sql", text))
        assert migration.description == "First.\n\nSecond."

    def test_empty_up_section(self, tmp_path: Path) -> None:
        """An up section without a statement is refused."""
        text = "-- migrate:up\n-- TODO\n\n-- migrate:down\nSELECT 1;\n"
        error = load_error(write(tmp_path, "001_a.sql", text))
        assert "holds no SQL statement" in error.what

    def test_empty_down_section_means_no_down(self, tmp_path: Path) -> None:
        """An empty down section (as templates leave it) means no down."""
        text = "-- migrate:up\nSELECT 1;\n\n-- migrate:down\n\n"
        assert load_migration(write(tmp_path, "001_a.sql", text)).down is None

    def test_empty_verify_section(self, tmp_path: Path) -> None:
        """An empty verify section means no verify queries."""
        text = "-- migrate:up\nSELECT 1;\n-- migrate:verify\n-- later\n"
        assert load_migration(write(tmp_path, "001_a.sql", text)).verify == ()

    def test_trigger_in_up(self, tmp_path: Path) -> None:
        """A trigger body stays inside the up script untouched."""
        trigger = "CREATE TRIGGER t AFTER INSERT ON a BEGIN\n  SELECT 1;\nEND;"
        migration = load_migration(write(tmp_path, "001_a.sql", f"-- migrate:up\n{trigger}\n"))
        assert migration.up == trigger

    def test_crlf_resave_keeps_checksum_and_content(self, tmp_path: Path) -> None:
        """Re-saving a .sql file with CRLF endings keeps its checksum and its SQL (with LF)."""
        lf = load_migration(write(tmp_path, "003_add_email.sql", EXAMPLE_SQL))
        (tmp_path / "crlf").mkdir()
        crlf_text = EXAMPLE_SQL.replace("\n", "\r\n")
        crlf = load_migration(write(tmp_path / "crlf", "003_add_email.sql", crlf_text))
        assert crlf.checksum == lf.checksum
        assert (crlf.up, crlf.down, crlf.verify) == (lf.up, lf.down, lf.verify)
        assert "\r" not in crlf.up

    def test_changed_statement_changes_checksum(self, tmp_path: Path) -> None:
        """Editing a statement in a .sql file changes its checksum."""
        before = load_migration(write(tmp_path, "001_a.sql", EXAMPLE_SQL)).checksum
        edited = EXAMPLE_SQL.replace("'a;b'", "'a;c'")
        after = load_migration(write(tmp_path, "001_a.sql", edited)).checksum
        assert after != before
