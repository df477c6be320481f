"""Tests for schemalog.engine.base.settings: layers, precedence, config files, path anchoring, bad values."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemalog.engine.base.config import find_config_file, load_settings
from schemalog.engine.base.errors import ConfigError
from schemalog.engine.base.paths import DatabasePaths
from schemalog.engine.base.settings import SETTING_NAMES, Settings


def write(path: Path, text: str) -> Path:
    """Write `text` to `path`, creating parent directories, and return `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def load(cwd: Path, *, flags=None, env=None, config_file=None) -> Settings:
    """load_settings with empty flags and environment unless given."""
    return load_settings(flags=flags or {}, env=env or {}, cwd=cwd, config_file=config_file)


def config_error(cwd: Path, **kw) -> str:
    """The message of the ConfigError that loading settings raises."""
    with pytest.raises(ConfigError) as info:
        load(cwd, **kw)
    assert info.value.exit_code == 2
    return str(info.value)


class TestSettings:
    def test_defaults(self):
        """A bare Settings holds the documented defaults."""
        s = Settings()
        assert (s.database, s.migrations, s.backup_dir) == (None, Path("migrations"), None)
        assert (s.lock_timeout, s.durability, s.integrity) == (30.0, "normal", "quick")
        assert (s.retention_count, s.retention_bytes) == (10, None)
        assert (s.compression, s.transaction, s.log_format) == ("none", "run", "auto")

    def test_setting_names_are_the_fields(self):
        """SETTING_NAMES lists every field of Settings, in order."""
        assert tuple(f.name for f in attrs.fields(Settings)) == SETTING_NAMES
        assert "backup_dir" in SETTING_NAMES

    def test_is_frozen(self):
        """Settings cannot be changed after construction."""
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            Settings().lock_timeout = 1.0  # type: ignore[misc]

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("lock_timeout", -1.0),
            ("lock_timeout", float("nan")),
            ("retention_count", 0),
            ("retention_bytes", 0),
            ("durability", "fast"),
            ("integrity", "none"),
            ("compression", "zstd"),
            ("transaction", "all"),
            ("log_format", "xml"),
        ],
    )
    def test_direct_construction_validates(self, field, value):
        """Constructing Settings with a bad value raises ValueError naming the field."""
        with pytest.raises(ValueError, match=field):
            Settings(**{field: value})

    def test_paths_use_the_default_backup_dir(self, tmp_path):
        """paths gives the DatabasePaths of the database, backups in <database>.backups/."""
        s = Settings(database=tmp_path / "app.db")
        assert s.paths == DatabasePaths.for_database(tmp_path / "app.db")
        assert s.paths.backup_dir == tmp_path / "app.db.backups"

    def test_paths_use_a_configured_backup_dir(self, tmp_path):
        """paths honours backup_dir when it is set."""
        s = Settings(database=tmp_path / "app.db", backup_dir=tmp_path / "bk")
        assert s.paths.backup_dir == tmp_path / "bk"

    def test_paths_without_database_raise_with_hint(self):
        """paths raises ConfigError telling how to set the database when none is set."""
        with pytest.raises(ConfigError) as info:
            _ = Settings().paths
        assert "no database" in str(info.value)
        assert "--database" in info.value.hint
        assert "SCHEMALOG_DATABASE" in info.value.hint


class TestFindConfigFile:
    def test_none_without_files(self, tmp_path):
        """An empty directory has no config file."""
        assert find_config_file(tmp_path) is None

    def test_schemalog_toml(self, tmp_path):
        """schemalog.toml is found with the top-level table."""
        path = write(tmp_path / "schemalog.toml", 'database = "a.db"\n')
        assert find_config_file(tmp_path) == (path, "")

    def test_pyproject_table(self, tmp_path):
        """pyproject.toml with [tool.schemalog] is found with that table."""
        path = write(tmp_path / "pyproject.toml", '[tool.schemalog]\ndatabase = "a.db"\n')
        assert find_config_file(tmp_path) == (path, "tool.schemalog")

    @pytest.mark.parametrize(
        "text", ["", '[project]\nname = "x"\n', "[tool.other]\nx = 1\n", "tool = 1\n"]
    )
    def test_pyproject_without_table_is_ignored(self, tmp_path, text):
        """pyproject.toml without a [tool.schemalog] table is not a config file."""
        write(tmp_path / "pyproject.toml", text)
        assert find_config_file(tmp_path) is None

    def test_schemalog_toml_preferred(self, tmp_path):
        """schemalog.toml wins over pyproject.toml when both exist."""
        write(tmp_path / "pyproject.toml", '[tool.schemalog]\ndatabase = "p.db"\n')
        path = write(tmp_path / "schemalog.toml", 'database = "s.db"\n')
        assert find_config_file(tmp_path) == (path, "")
        assert load(tmp_path).database == tmp_path / "s.db"

    def test_only_the_given_directory_is_searched(self, tmp_path):
        """A config file in a parent directory is not used."""
        write(tmp_path / "schemalog.toml", 'database = "a.db"\n')
        (tmp_path / "sub").mkdir()
        assert find_config_file(tmp_path / "sub") is None

    def test_malformed_pyproject_raises(self, tmp_path):
        """A pyproject.toml that is not TOML is reported with its path and line."""
        write(tmp_path / "pyproject.toml", "[tool.schemalog]\ndatabase = \n")
        with pytest.raises(ConfigError, match=r"pyproject\.toml.*line 2"):
            find_config_file(tmp_path)

    def test_table_that_is_not_a_table_raises(self, tmp_path):
        """tool.schemalog holding a value instead of a table is refused."""
        write(tmp_path / "pyproject.toml", "[tool]\nschemalog = 3\n")
        with pytest.raises(ConfigError, match=r"tool\.schemalog.*not a table"):
            find_config_file(tmp_path)


class TestPrecedence:
    def test_default(self, tmp_path):
        """Without flags, environment or file, the defaults apply (paths anchored at cwd)."""
        s = load(tmp_path)
        assert s == Settings(migrations=tmp_path / "migrations")

    def test_file_beats_default(self, tmp_path):
        """A config file value replaces the default."""
        write(tmp_path / "schemalog.toml", "lock_timeout = 5\n")
        assert load(tmp_path).lock_timeout == 5.0

    def test_pyproject_beats_default(self, tmp_path):
        """A [tool.schemalog] value in pyproject.toml replaces the default."""
        write(tmp_path / "pyproject.toml", '[tool.schemalog]\ndurability = "full"\n')
        assert load(tmp_path).durability == "full"

    def test_env_beats_file(self, tmp_path):
        """An environment variable replaces the config file value."""
        write(tmp_path / "schemalog.toml", "lock_timeout = 5\n")
        assert load(tmp_path, env={"SCHEMALOG_LOCK_TIMEOUT": "7"}).lock_timeout == 7.0

    def test_flag_beats_env(self, tmp_path):
        """A flag replaces the environment variable and the file value."""
        write(tmp_path / "schemalog.toml", 'database = "file.db"\n')
        s = load(tmp_path, flags={"database": "flag.db"}, env={"SCHEMALOG_DATABASE": "env.db"})
        assert s.database == tmp_path / "flag.db"

    def test_none_flag_is_not_passed(self, tmp_path):
        """A flag whose value is None leaves the lower layers in charge."""
        s = load(tmp_path, flags={"database": None}, env={"SCHEMALOG_DATABASE": "env.db"})
        assert s.database == tmp_path / "env.db"

    def test_flag_names_accept_dashes(self, tmp_path):
        """Flag keys may be spelled with '-' as on the command line."""
        assert load(tmp_path, flags={"backup-dir": "bk"}).backup_dir == tmp_path / "bk"

    def test_unknown_schemalog_env_is_ignored(self, tmp_path):
        """SCHEMALOG_* variables that are not settings (e.g. failpoints) are ignored."""
        env = {"SCHEMALOG_FAILPOINT": "after_begin", "SCHEMALOG_CONFIG_X": "1", "HOME": "/"}
        assert load(tmp_path, env=env) == load(tmp_path)

    # Valid values per setting: the typed value, as a flag would pass it.
    CHOICES = {
        "database": ["a.db", "d/b.db"],
        "migrations": ["m1", "m/2"],
        "backup_dir": ["bk1", "bk/2"],
        "lock_timeout": [0, 2.5, 60],
        "durability": ["normal", "full"],
        "integrity": ["quick", "full", "off"],
        "retention_count": [1, 3, 500],
        "retention_bytes": [1, 4096],
        "compression": ["none", "gzip"],
        "transaction": ["run", "step"],
        "retry": [True, False],
        "log_format": ["auto", "human", "json"],
        "functions": ["myapp.db:register_sql", "app:setup.sql"],
        "journal_key_file": ["k.key", "keys/k2"],
    }

    @given(data=st.data())
    def test_highest_layer_wins_for_every_setting(self, data):
        """For any mix of layers per setting, the value of the highest layer that sets it wins."""
        assert set(self.CHOICES) == set(SETTING_NAMES)
        with tempfile.TemporaryDirectory() as tmp:
            cwd = Path(tmp)
            conf_dir = cwd / "conf"
            lines, env, flags, expected = [], {}, {}, {}
            for name, choices in self.CHOICES.items():
                winner = None
                for source in ("file", "env", "flag"):
                    if not data.draw(st.booleans(), label=f"{name} from {source}"):
                        continue
                    value = data.draw(st.sampled_from(choices), label=f"{name} value")
                    winner = (source, value)
                    if source == "file":
                        key = data.draw(st.sampled_from([name, name.replace("_", "-")]))
                        lines.append(f"{key} = {json.dumps(value)}")
                    elif source == "env":
                        env["SCHEMALOG_" + name.upper()] = str(value)
                    else:
                        flags[name] = value
                if winner is None:
                    expected[name] = getattr(Settings(), name)
                    if name == "migrations":
                        expected[name] = cwd / "migrations"
                elif name in ("database", "migrations", "backup_dir", "journal_key_file"):
                    expected[name] = (conf_dir if winner[0] == "file" else cwd) / winner[1]
                else:
                    expected[name] = winner[1]
            config = write(conf_dir / "schemalog.toml", "\n".join(lines) + "\n")
            settings = load(cwd, flags=flags, env=env, config_file=config)
        got = attrs.asdict(settings, recurse=False)
        got["functions"] = None if settings.functions is None else str(settings.functions)
        assert got == expected


class TestPaths:
    def test_file_paths_are_relative_to_the_file(self, tmp_path):
        """Relative paths in a config file are anchored at the file's directory."""
        config = write(
            tmp_path / "etc" / "schemalog.toml",
            'database = "data/app.db"\nmigrations = "../mig"\nbackup-dir = "bk"\n',
        )
        s = load(tmp_path / "elsewhere", config_file=config)
        assert s.database == tmp_path / "etc" / "data" / "app.db"
        assert s.migrations == tmp_path / "etc" / ".." / "mig"
        assert s.backup_dir == tmp_path / "etc" / "bk"

    def test_flag_and_env_paths_are_relative_to_cwd(self, tmp_path):
        """Relative paths from flags and environment are anchored at cwd."""
        write(tmp_path / "etc" / "schemalog.toml", 'database = "x.db"\n')
        s = load(
            tmp_path,
            flags={"database": Path("app.db")},
            env={"SCHEMALOG_BACKUP_DIR": "bk", "SCHEMALOG_MIGRATIONS": "./m"},
            config_file=tmp_path / "etc" / "schemalog.toml",
        )
        assert s.database == tmp_path / "app.db"
        assert s.backup_dir == tmp_path / "bk"
        assert s.migrations == tmp_path / "m"

    def test_absolute_paths_are_kept(self, tmp_path):
        """An absolute path is used as given."""
        write(tmp_path / "schemalog.toml", 'database = "/srv/app.db"\n')
        assert load(tmp_path).database == Path("/srv/app.db")

    def test_home_is_expanded(self, tmp_path, monkeypatch):
        """A leading ~ in a path means the home directory."""
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        s = load(tmp_path, env={"SCHEMALOG_DATABASE": "~/app.db"})
        assert s.database == tmp_path / "home" / "app.db"

    def test_default_migrations_are_relative_to_cwd(self, tmp_path):
        """The default migrations directory is <cwd>/migrations, even with a config file."""
        config = write(tmp_path / "etc" / "schemalog.toml", "lock_timeout = 1\n")
        assert load(tmp_path, config_file=config).migrations == tmp_path / "migrations"

    def test_empty_env_database_means_unset(self, tmp_path):
        """SCHEMALOG_DATABASE='' leaves the database unset."""
        assert load(tmp_path, env={"SCHEMALOG_DATABASE": ""}).database is None


class TestConfigFileOption:
    def test_replaces_discovery(self, tmp_path):
        """--config is used instead of schemalog.toml in cwd."""
        write(tmp_path / "schemalog.toml", 'database = "found.db"\n')
        config = write(tmp_path / "other.toml", 'database = "given.db"\n')
        assert load(tmp_path, config_file=config).database == tmp_path / "given.db"

    def test_relative_config_is_relative_to_cwd(self, tmp_path):
        """A relative --config path is found from cwd."""
        write(tmp_path / "conf" / "s.toml", "lock_timeout = 3\n")
        assert load(tmp_path, config_file=Path("conf/s.toml")).lock_timeout == 3.0

    def test_missing_raises(self, tmp_path):
        """A --config file that does not exist is refused, naming the path and the flag."""
        message = config_error(tmp_path, config_file=tmp_path / "nope.toml")
        assert "nope.toml" in message
        assert "does not exist" in message
        assert "--config" in message

    def test_directory_raises(self, tmp_path):
        """A --config path that is a directory is refused."""
        message = config_error(tmp_path, config_file=tmp_path)
        assert "is not a file" in message

    def test_pyproject_uses_its_table(self, tmp_path):
        """--config pyproject.toml reads the [tool.schemalog] table."""
        config = write(tmp_path / "p" / "pyproject.toml", '[tool.schemalog]\ndatabase = "a.db"\n')
        assert load(tmp_path, config_file=config).database == tmp_path / "p" / "a.db"

    def test_pyproject_without_table_raises(self, tmp_path):
        """--config pyproject.toml without [tool.schemalog] is refused."""
        config = write(tmp_path / "pyproject.toml", '[project]\nname = "x"\n')
        message = config_error(tmp_path, config_file=config)
        assert "no [tool.schemalog] table" in message

    def test_schemalog_config_env(self, tmp_path):
        """SCHEMALOG_CONFIG names the config file when --config is not given."""
        write(tmp_path / "schemalog.toml", 'database = "found.db"\n')
        write(tmp_path / "c" / "env.toml", 'database = "env.db"\n')
        s = load(tmp_path, env={"SCHEMALOG_CONFIG": "c/env.toml"})
        assert s.database == tmp_path / "c" / "env.db"

    def test_flag_beats_schemalog_config_env(self, tmp_path):
        """--config wins over SCHEMALOG_CONFIG."""
        write(tmp_path / "env.toml", 'database = "env.db"\n')
        flag = write(tmp_path / "flag.toml", 'database = "flag.db"\n')
        s = load(tmp_path, env={"SCHEMALOG_CONFIG": "env.toml"}, config_file=flag)
        assert s.database == tmp_path / "flag.db"

    def test_missing_schemalog_config_env_raises(self, tmp_path):
        """A SCHEMALOG_CONFIG naming no file is refused, naming the variable."""
        message = config_error(tmp_path, env={"SCHEMALOG_CONFIG": "gone.toml"})
        assert "gone.toml" in message
        assert "SCHEMALOG_CONFIG" in message


class TestFileKeys:
    def test_dash_and_underscore_are_the_same_key(self, tmp_path):
        """backup-dir and backup_dir both set backup_dir."""
        write(tmp_path / "a" / "schemalog.toml", 'backup-dir = "x"\nlock-timeout = 2\n')
        write(tmp_path / "b" / "schemalog.toml", 'backup_dir = "x"\nlock_timeout = 2\n')
        a, b = load(tmp_path / "a"), load(tmp_path / "b")
        assert (a.backup_dir, a.lock_timeout) == (tmp_path / "a" / "x", 2.0)
        assert (b.backup_dir, b.lock_timeout) == (tmp_path / "b" / "x", 2.0)

    def test_both_spellings_raise(self, tmp_path):
        """Setting backup-dir and backup_dir in one file is refused, naming both."""
        write(tmp_path / "schemalog.toml", 'backup-dir = "x"\nbackup_dir = "y"\n')
        message = config_error(tmp_path)
        assert "'backup-dir'" in message
        assert "'backup_dir'" in message

    def test_unknown_key_suggests_the_closest(self, tmp_path):
        """An unknown key is refused with the file, a suggestion and the valid keys."""
        path = write(tmp_path / "schemalog.toml", 'databse = "a.db"\n')
        with pytest.raises(ConfigError) as info:
            load(tmp_path)
        message = str(info.value)
        assert "unknown key 'databse'" in message
        assert str(path) in message
        assert "did you mean 'database'?" in message
        assert all(name in message for name in SETTING_NAMES)
        assert info.value.path == str(path)

    def test_unknown_key_in_pyproject_names_the_table(self, tmp_path):
        """An unknown key in pyproject.toml names the [tool.schemalog] table."""
        write(tmp_path / "pyproject.toml", "[tool.schemalog]\nbackup-dri = 'x'\n")
        message = config_error(tmp_path)
        assert "[tool.schemalog] of" in message
        assert "did you mean 'backup_dir'?" in message

    def test_unknown_keys_without_a_close_match(self, tmp_path):
        """Several unknown keys are all named; no suggestion when nothing is close."""
        write(tmp_path / "schemalog.toml", "zzz = 1\nqqq = 2\n")
        message = config_error(tmp_path)
        assert "unknown keys 'zzz', 'qqq'" in message
        assert "did you mean" not in message

    def test_unknown_flag_raises(self, tmp_path):
        """A flag that is no setting is refused, naming it."""
        message = config_error(tmp_path, flags={"verbose": True})
        assert "'verbose'" in message


class TestBadValues:
    @pytest.mark.parametrize(
        ("var", "value", "reason"),
        [
            ("SCHEMALOG_LOCK_TIMEOUT", "-1", "seconds >= 0"),
            ("SCHEMALOG_LOCK_TIMEOUT", "soon", "seconds >= 0"),
            ("SCHEMALOG_LOCK_TIMEOUT", "inf", "seconds >= 0"),
            ("SCHEMALOG_LOCK_TIMEOUT", "nan", "seconds >= 0"),
            ("SCHEMALOG_DURABILITY", "fast", "one of 'normal', 'full'"),
            ("SCHEMALOG_INTEGRITY", "FULL", "one of 'quick', 'full', 'off'"),
            ("SCHEMALOG_COMPRESSION", "zstd", "one of 'none', 'gzip'"),
            ("SCHEMALOG_TRANSACTION", "txn", "one of 'run', 'step'"),
            ("SCHEMALOG_LOG_FORMAT", "xml", "one of 'auto', 'human', 'json'"),
            ("SCHEMALOG_RETENTION_COUNT", "0", "whole number >= 1"),
            ("SCHEMALOG_RETENTION_COUNT", "ten", "whole number >= 1"),
            ("SCHEMALOG_RETENTION_COUNT", "2.5", "whole number >= 1"),
            ("SCHEMALOG_RETENTION_BYTES", "5XB", "size"),
            ("SCHEMALOG_RETENTION_BYTES", "0", "size"),
            ("SCHEMALOG_RETENTION_BYTES", "0.5B", "size"),
            ("SCHEMALOG_RETENTION_BYTES", "-3MB", "size"),
            ("SCHEMALOG_MIGRATIONS", "", "non-empty path"),
        ],
    )
    def test_env(self, tmp_path, var, value, reason):
        """A bad environment value is refused naming the setting, value, variable and reason."""
        message = config_error(tmp_path, env={var: value})
        name = var.removeprefix("SCHEMALOG_").lower()
        assert f"bad value {value!r} for {name}" in message
        assert f"environment variable {var}" in message
        assert reason in message
        assert f"next: set e.g. {var}=" in message

    @pytest.mark.parametrize(
        ("line", "key", "shown", "reason"),
        [
            ("lock-timeout = -0.5", "lock-timeout", "-0.5", "seconds >= 0"),
            ("lock_timeout = true", "lock_timeout", "True", "seconds >= 0"),
            ("lock_timeout = [1]", "lock_timeout", "[1]", "seconds >= 0"),
            ("retention_count = 1.5", "retention_count", "1.5", "whole number"),
            ("retention_count = false", "retention_count", "False", "whole number"),
            ("retention_bytes = 2.0", "retention_bytes", "2.0", "size"),
            ("retention_bytes = true", "retention_bytes", "True", "size"),
            ("durability = 1", "durability", "1", "one of"),
            ("database = 5", "database", "5", "path"),
            ("migrations = {a = 1}", "migrations", "{'a': 1}", "path"),
        ],
    )
    def test_file(self, tmp_path, line, key, shown, reason):
        """A bad file value is refused naming the key as written, the value and the file."""
        path = write(tmp_path / "schemalog.toml", line + "\n")
        with pytest.raises(ConfigError) as info:
            load(tmp_path)
        message = str(info.value)
        assert f"bad value {shown} for {key.replace('-', '_')}" in message
        assert f"key {key!r} in {path}" in message
        assert reason in message
        assert f"next: edit {path}: e.g. {key} = " in message
        assert info.value.path == str(path)

    def test_flag(self, tmp_path):
        """A bad flag value is refused naming the flag as typed on the command line."""
        message = config_error(tmp_path, flags={"lock_timeout": -2.0})
        assert "bad value -2.0 for lock_timeout from flag --lock-timeout" in message
        assert "next: pass e.g. --lock-timeout 30" in message

    def test_all_problems_are_reported(self, tmp_path):
        """Bad values in several layers are reported together, even where overridden."""
        write(tmp_path / "schemalog.toml", 'durability = "fast"\n')
        message = config_error(
            tmp_path,
            flags={"durability": "full"},
            env={"SCHEMALOG_LOCK_TIMEOUT": "x", "SCHEMALOG_COMPRESSION": "lz4"},
        )
        assert "'fast' for durability" in message
        assert "'x' for lock_timeout" in message
        assert "'lz4' for compression" in message

    def test_malformed_toml_names_file_and_line(self, tmp_path):
        """A config file that is not TOML is reported with its path and line number."""
        path = write(tmp_path / "schemalog.toml", 'database = "a.db"\n\nlock_timeout = = 3\n')
        message = config_error(tmp_path)
        assert str(path) in message
        assert "not valid TOML" in message
        assert "line 3" in message

    def test_not_utf8(self, tmp_path):
        """A config file that is not UTF-8 is refused, naming it."""
        path = tmp_path / "schemalog.toml"
        path.write_bytes(b'database = "\xff.db"\n')
        message = config_error(tmp_path)
        assert f"config file {path} is not UTF-8" in message

    def test_unreadable(self, tmp_path, monkeypatch):
        """A config file that cannot be read is refused, naming it and the OS reason."""
        path = write(tmp_path / "schemalog.toml", 'database = "a.db"\n')

        def deny(self):
            raise PermissionError(13, "Permission denied", str(self))

        monkeypatch.setattr(Path, "read_bytes", deny)
        message = config_error(tmp_path)
        assert f"cannot read config file {path}: Permission denied" in message


# A working directory that holds no config file.
NO_DIR = Path("/nonexistent-schemalog-test-dir")

# Unit spellings and their sizes, written out independently of the implementation.
UNITS = {
    "": 1,
    "B": 1,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "TB": 1000**4,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
    "TiB": 1024**4,
}


def size_of(text: str, tmp_path: Path) -> int | None:
    """retention_bytes loaded from the environment value `text`."""
    return load(tmp_path, env={"SCHEMALOG_RETENTION_BYTES": text}).retention_bytes


class TestSizes:
    @given(
        n=st.integers(min_value=1, max_value=10**9),
        unit=st.sampled_from(sorted(UNITS)),
        space=st.sampled_from(["", " "]),
        case=st.sampled_from([str, str.lower, str.upper]),
    )
    def test_number_and_unit(self, n, unit, space, case):
        """'<n><unit>' in any case, with or without a space, is n times the unit in bytes."""
        assert size_of(f"{n}{space}{case(unit)}", NO_DIR) == n * UNITS[unit]

    @given(n=st.integers(min_value=1, max_value=10**15))
    def test_toml_integer(self, n):
        """An integer in the config file is a byte count."""
        with tempfile.TemporaryDirectory() as tmp:
            write(Path(tmp) / "schemalog.toml", f"retention_bytes = {n}\n")
            assert load(Path(tmp)).retention_bytes == n

    @given(n=st.integers(max_value=0))
    def test_non_positive_integers_are_refused(self, n):
        """A byte count below 1 is refused."""
        with pytest.raises(ConfigError, match="retention_bytes"):
            load_settings(flags={"retention_bytes": n}, env={}, cwd=NO_DIR)

    @pytest.mark.parametrize(
        ("text", "size"), [("1.5KB", 1500), ("0.5KiB", 512), ("2.25 MB", 2_250_000)]
    )
    def test_fractions_of_whole_bytes(self, tmp_path, text, size):
        """A fractional number is accepted when it makes a whole number of bytes."""
        assert size_of(text, tmp_path) == size

    @pytest.mark.parametrize("text", ["none", "NONE", ""])
    def test_none_means_no_limit(self, tmp_path, text):
        """'none' or an empty value means no byte limit, overriding the file."""
        write(tmp_path / "schemalog.toml", 'retention_bytes = "1GB"\n')
        assert size_of(text, tmp_path) is None

    def test_file_string(self, tmp_path):
        """A size string in the config file is parsed the same way."""
        write(tmp_path / "schemalog.toml", 'retention-bytes = "2GiB"\n')
        assert load(tmp_path).retention_bytes == 2 * 1024**3


class TestValues:
    def test_env_strings_become_numbers(self, tmp_path):
        """Numeric environment strings become a float timeout and an int count."""
        s = load(
            tmp_path, env={"SCHEMALOG_LOCK_TIMEOUT": "2.5", "SCHEMALOG_RETENTION_COUNT": " 4 "}
        )
        assert s.lock_timeout == 2.5
        assert isinstance(s.lock_timeout, float)
        assert s.retention_count == 4

    def test_file_integer_timeout_is_a_float(self, tmp_path):
        """An integer timeout in the file becomes a float."""
        write(tmp_path / "schemalog.toml", "lock_timeout = 0\n")
        s = load(tmp_path)
        assert s.lock_timeout == 0.0
        assert isinstance(s.lock_timeout, float)

    @pytest.mark.parametrize("text", ["none", "None", ""])
    def test_count_none_means_no_limit(self, tmp_path, text):
        """'none' or an empty value means no backup count limit."""
        assert load(tmp_path, env={"SCHEMALOG_RETENTION_COUNT": text}).retention_count is None

    def test_count_none_in_file(self, tmp_path):
        """retention_count = "none" in the file means no limit."""
        write(tmp_path / "schemalog.toml", 'retention_count = "none"\n')
        assert load(tmp_path).retention_count is None

    def test_literals_from_every_source(self, tmp_path):
        """Literal settings are taken as given from file, env and flag."""
        write(tmp_path / "schemalog.toml", 'integrity = "off"\ncompression = "gzip"\n')
        s = load(
            tmp_path,
            env={"SCHEMALOG_TRANSACTION": "step"},
            flags={"log_format": "json"},
        )
        assert (s.integrity, s.compression, s.transaction, s.log_format) == (
            "off",
            "gzip",
            "step",
            "json",
        )
