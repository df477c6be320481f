"""Tests for schemalog.engine.commands.project: migration names, numbering, templates and `init`."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemalog.engine.base.config import load_settings
from schemalog.engine.base.errors import ConfigError, MigrationFileError, UsageError
from schemalog.engine.commands.project import (
    PY_TEMPLATE,
    SQL_TEMPLATE,
    next_version,
    render_config,
    validate_name,
)
from schemalog.engine.commands.project import init as init_project
from schemalog.engine.commands.project import new as new_migration
from schemalog.engine.files.migration import load_migration, parse_filename

NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,30}", fullmatch=True)


def fill_py(path: Path) -> None:
    """Replace the template's example comments with real SQL."""
    text = path.read_text()
    text = text.replace(
        "-- e.g. ALTER TABLE users ADD COLUMN email TEXT;", "CREATE TABLE t (id INTEGER);"
    )
    text = text.replace("-- e.g. ALTER TABLE users DROP COLUMN email;", "DROP TABLE t;")
    path.write_text(text)


class TestValidateName:
    @pytest.mark.parametrize("name", ["add_email", "a", "v2_users", "x" * 80])
    def test_accepts_snake_case(self, name):
        """snake_case names are returned unchanged."""
        assert validate_name(name) == name

    @pytest.mark.parametrize(
        ("name", "suggestion"),
        [
            ("Add-Email", "add_email"),
            ("add email", "add_email"),
            ("AddEmail", "add_email"),
        ],
    )
    def test_refuses_with_a_suggestion(self, name, suggestion):
        """Other names raise UsageError (exit 2) suggesting a snake_case spelling."""
        with pytest.raises(UsageError) as info:
            validate_name(name)
        assert info.value.exit_code == 2
        assert f"schemalog new {suggestion}`" in info.value.message

    @pytest.mark.parametrize("name", ["", "---", "x" * 81])
    def test_refuses_without_suggestion(self, name):
        """Names without usable letters (or too long) are refused too."""
        with pytest.raises(UsageError):
            validate_name(name)

    @given(NAMES)
    def test_valid_names_make_valid_file_names(self, name):
        """Every accepted name gives a file name the registry parses back."""
        validate_name(name)
        assert parse_filename(f"001_{name}.py") == (1, name, "py")


class TestNewMigration:
    def test_first_is_001(self, tmp_path):
        """In an empty directory the first migration is 001."""
        path = new_migration(tmp_path, "create_users")
        assert path.name == "001_create_users.py"
        assert next_version(tmp_path) == 2

    def test_next_after_highest(self, tmp_path):
        """The next version follows the highest on disk; other files are ignored."""
        (tmp_path / "007_x.sql").write_text("")
        (tmp_path / "README.md").write_text("")
        (tmp_path / "notes.py").write_text("")
        assert new_migration(tmp_path, "y", sql=True).name == "008_y.sql"

    def test_keeps_the_existing_width(self, tmp_path):
        """Four-digit numbering is kept when the existing files use it."""
        (tmp_path / "0001_a.py").write_text("")
        assert new_migration(tmp_path, "b").name == "0002_b.py"

    def test_missing_directory(self, tmp_path):
        """A missing directory raises ConfigError pointing to init."""
        with pytest.raises(ConfigError, match="schemalog init"):
            new_migration(tmp_path / "nope", "x")

    def test_bad_name_writes_nothing(self, tmp_path):
        """A name with no letter or digit raises before any file is written."""
        with pytest.raises(UsageError):
            new_migration(tmp_path, "-- !!")
        assert list(tmp_path.iterdir()) == []

    def test_py_template_is_refused_until_filled(self, tmp_path):
        """The untouched .py template is refused (its up holds no SQL), naming the file."""
        path = new_migration(tmp_path, "add_thing")
        with pytest.raises(MigrationFileError) as info:
            load_migration(path)
        assert "001_add_thing.py" in info.value.message
        assert "no SQL statement" in info.value.message

    def test_py_template_filled_loads(self, tmp_path):
        """Filled in, the .py template loads with its description, down and no verify."""
        path = new_migration(tmp_path, "add_thing")
        fill_py(path)
        mig = load_migration(path)
        assert mig.description.startswith("Add thing.")
        assert "Impact:" in mig.description
        assert mig.down is not None
        assert mig.verify == ()
        assert mig.transactional and mig.foreign_keys

    def test_sql_template(self, tmp_path):
        """The .sql template is refused until filled, then loads with Impact in its description."""
        path = new_migration(tmp_path, "add_thing", sql=True)
        with pytest.raises(MigrationFileError, match="holds no SQL statement"):
            load_migration(path)
        text = path.read_text().replace(
            "-- e.g. ALTER TABLE users ADD COLUMN email TEXT;", "CREATE TABLE t (id INTEGER);"
        )
        path.write_text(text)
        mig = load_migration(path)
        assert "Impact:" in mig.description
        assert mig.down is None  # the down section still holds only a comment

    def test_templates_mention_each_part(self):
        """Both templates document up, down, verify and the two options."""
        for template in (PY_TEMPLATE, SQL_TEMPLATE):
            for word in ("Impact:", "up", "down", "verify", "transaction", "foreign_keys"):
                assert word in template


class TestInit:
    def test_writes_a_loadable_config(self, tmp_path):
        """The written schemalog.toml loads, with the given database and migrations."""
        result = init_project(tmp_path, database="data/app.db", migrations="db/migrations")
        assert result.config == tmp_path / "schemalog.toml"
        assert result.migrations_created
        assert (tmp_path / "db" / "migrations").is_dir()
        settings = load_settings(flags={}, env={}, cwd=tmp_path)
        assert settings.database == tmp_path / "data" / "app.db"
        assert settings.migrations == tmp_path / "db" / "migrations"

    def test_every_commented_setting_is_valid(self, tmp_path):
        """Uncommenting every example line gives a valid config with the defaults."""
        text = render_config()
        lines = []
        for line in text.splitlines():
            if line.startswith("# ") and " = " in line and not line.startswith("# schemalog"):
                line = line[2:].split("  #")[0]
            lines.append(line)
        (tmp_path / "schemalog.toml").write_text("\n".join(lines) + "\n")
        settings = load_settings(flags={}, env={}, cwd=tmp_path)
        assert settings.lock_timeout == 30
        assert settings.retention_count == 10
        assert settings.retention_bytes is None
        assert settings.backup_dir == tmp_path / "app.db.backups"

    def test_quotes_are_escaped(self, tmp_path):
        """Paths with quotes or backslashes are written as valid TOML strings."""
        init_project(tmp_path, database='we"ird\\name.db')
        settings = load_settings(flags={}, env={}, cwd=tmp_path)
        assert settings.database == tmp_path / 'we"ird\\name.db'

    def test_refuses_to_overwrite(self, tmp_path):
        """An existing schemalog.toml is never overwritten."""
        (tmp_path / "schemalog.toml").write_text("# mine\n")
        with pytest.raises(UsageError, match="already exists"):
            init_project(tmp_path)
        assert (tmp_path / "schemalog.toml").read_text() == "# mine\n"

    def test_refuses_when_pyproject_configures(self, tmp_path):
        """A [tool.schemalog] table in pyproject.toml would be shadowed: refused."""
        (tmp_path / "pyproject.toml").write_text('[tool.schemalog]\ndatabase = "x.db"\n')
        with pytest.raises(UsageError, match=r"tool\.schemalog"):
            init_project(tmp_path)
        assert not (tmp_path / "schemalog.toml").exists()

    def test_pyproject_without_table_is_fine(self, tmp_path):
        """A pyproject.toml without [tool.schemalog] does not stop init."""
        (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
        assert init_project(tmp_path).config.is_file()

    def test_explicit_config_path(self, tmp_path):
        """`config` names the file to write (relative to the directory)."""
        (tmp_path / "conf").mkdir()
        result = init_project(tmp_path, config=Path("conf/schemalog.toml"))
        assert result.config == tmp_path / "conf" / "schemalog.toml"
        assert (tmp_path / "conf" / "migrations").is_dir()

    def test_explicit_config_in_missing_directory(self, tmp_path):
        """A config path in a missing directory raises ConfigError; nothing is written."""
        with pytest.raises(ConfigError):
            init_project(tmp_path, config=tmp_path / "nope" / "s.toml")

    def test_existing_migrations_directory(self, tmp_path):
        """An existing migrations directory is kept and reported as not created."""
        (tmp_path / "migrations").mkdir()
        (tmp_path / "migrations" / "001_a.py").write_text("")
        result = init_project(tmp_path)
        assert not result.migrations_created
        assert (tmp_path / "migrations" / "001_a.py").exists()

    def test_migrations_path_is_a_file(self, tmp_path):
        """A file where the migrations directory should be is refused before writing."""
        (tmp_path / "migrations").write_text("")
        with pytest.raises(ConfigError):
            init_project(tmp_path)
        assert not (tmp_path / "schemalog.toml").exists()
