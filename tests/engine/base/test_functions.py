"""Tests for the `functions` setting: the application's SQL functions on every connection
schemalog opens (the database, and the scratch copies of `check` and `lint`), and the
configuration errors a bad setting gives (exit 2, naming where it came from)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from schemalog.engine.base.context import Context
from schemalog.engine.base.errors import ConfigError, StepFailed
from schemalog.engine.base.settings import Settings
from tests.engine.conftest import make_migrator, rows, write_migrations

SCHEMALOG = Path(sys.executable).with_name("schemalog")

# Authelia's migration 002 converts TOTP secrets with its own SQL function BIN2B64.
AUTHELIA = {
    "001_totp.sql": """
        -- migrate:up
        CREATE TABLE totp_configurations (id INTEGER PRIMARY KEY, username TEXT NOT NULL, secret BLOB NOT NULL);
        INSERT INTO totp_configurations (username, secret) VALUES ('john', x'48656c6c6f'), ('mary', x'00ff');
        -- migrate:down
        DROP TABLE totp_configurations;
        """,
    "002_totp_base64.sql": """
        -- migrate:up
        CREATE TABLE _new_totp (id INTEGER PRIMARY KEY, username TEXT NOT NULL, secret TEXT NOT NULL);
        INSERT INTO _new_totp (id, username, secret) SELECT id, username, BIN2B64(secret) FROM totp_configurations;
        DROP TABLE totp_configurations;
        ALTER TABLE _new_totp RENAME TO totp_configurations;
        -- migrate:down
        CREATE TABLE _old_totp (id INTEGER PRIMARY KEY, username TEXT NOT NULL, secret BLOB NOT NULL);
        INSERT INTO _old_totp (id, username, secret) SELECT id, username, B642BIN(secret) FROM totp_configurations;
        DROP TABLE totp_configurations;
        ALTER TABLE _old_totp RENAME TO totp_configurations;
        -- migrate:verify
        SELECT BIN2B64(x'00ff') = 'AP8=';
        """,
}

MODULE = '''\
"""The application's SQL functions."""
import base64

CALLS = []


def register(conn):
    CALLS.append(conn)
    conn.create_function("BIN2B64", 1, lambda b: base64.b64encode(b).decode(), deterministic=True)
    conn.create_function("B642BIN", 1, lambda s: base64.b64decode(s), deterministic=True)


not_callable = 42
'''


@pytest.fixture
def app(tmp_path, monkeypatch):
    """The Authelia-like set, and the application's module `sqlfuncs` importable."""
    (tmp_path / "sqlfuncs.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("sqlfuncs", None)
    write_migrations(tmp_path / "migrations", AUTHELIA)
    return tmp_path


class TestTheHook:
    """Migrations that call the application's SQL functions."""

    def test_fails_without_the_hook(self, app):
        """Without `functions`, migration 002 fails (no such function) and is rolled back."""
        migrator = make_migrator(app, app / "migrations")
        with pytest.raises(StepFailed, match="no such function: BIN2B64"):
            migrator.upgrade()
        assert migrator.status().version == 1

    def test_applies_with_the_hook(self, app):
        """With `functions = "sqlfuncs:register"`, it applies, converting every secret."""
        migrator = make_migrator(app, app / "migrations", functions="sqlfuncs:register")
        migrator.upgrade()
        assert rows(app / "app.db", "totp_configurations") == [
            (1, "john", "SGVsbG8="),
            (2, "mary", "AP8="),
        ]
        migrator.verify()  # the verify query calls BIN2B64 on a read-only connection
        migrator.downgrade(1)  # and the down calls B642BIN
        assert rows(app / "app.db", "totp_configurations")[0][2] == b"Hello"

    def test_an_index_on_an_application_function(self, app):
        """`verify`'s full integrity check evaluates an expression index: it needs the hook."""
        write_migrations(
            app / "migrations",
            {
                "003_index.sql": "-- migrate:up\n"
                "CREATE INDEX totp_b64 ON totp_configurations (BIN2B64(CAST(username AS BLOB)));\n"
                "-- migrate:down\nDROP INDEX totp_b64;\n"
            },
        )
        migrator = make_migrator(app, app / "migrations", functions="sqlfuncs:register")
        migrator.upgrade()
        checks = {c["check"]: c for c in migrator.verify()}
        assert checks["integrity"]["ok"]

    @pytest.mark.parametrize("compression", ["none", "gzip"])
    def test_backups_and_restores_check_with_the_hook(self, app, compression):
        """A full check of a backup, of a run's backup and of a restore evaluates the index
        expression: each of those connections gets the functions too."""
        write_migrations(
            app / "migrations",
            {
                "003_index.sql": "-- migrate:up\n"
                "CREATE INDEX totp_b64 ON totp_configurations (BIN2B64(CAST(username AS BLOB)));\n"
                "-- migrate:down\nDROP INDEX totp_b64;\n",
                "004_more.sql": "-- migrate:up\n"
                "INSERT INTO totp_configurations (username, secret) VALUES ('ann', x'01');\n"
                "-- migrate:down\nDELETE FROM totp_configurations WHERE username = 'ann';\n",
            },
        )
        migrator = make_migrator(
            app,
            app / "migrations",
            functions="sqlfuncs:register",
            integrity="full",
            compression=compression,
        )
        migrator.upgrade(3)
        taken = migrator.backup_create()  # checked with the index in it
        assert taken.verified
        migrator.upgrade()  # the run's own backup (at 3) is checked the same way
        run_backup = max(migrator.backup_list(), key=lambda b: b.created_at)
        assert run_backup.version == 3 and run_backup.id != taken.id
        result = migrator.backup_restore(taken.id)  # verified, copied in, checked again
        assert result.backup.version == 3
        assert migrator.status().version == 3
        assert [c["ok"] for c in migrator.verify()] == [True] * len(migrator.verify())

    def test_a_callable_from_python(self, app):
        """Library callers may pass the callable itself."""
        import sqlfuncs  # type: ignore[import-not-found]

        migrator = make_migrator(app, app / "migrations", functions=sqlfuncs.register)
        migrator.upgrade()
        assert sqlfuncs.CALLS

    def test_check_and_lint_scratch_copies_get_it(self, app):
        """The scratch databases of `check` and `lint` get the functions too."""
        migrator = make_migrator(app, app / "migrations", functions="sqlfuncs:register")
        migrator.upgrade(1)
        reports = migrator.check(from_scratch=True)
        assert all(r.ok for r in reports)
        assert migrator.lint().errors == 0

    def test_lint_without_the_hook_says_so(self, app):
        """Without the hook, lint reports the failing statement (SL001) naming the function."""
        migrator = make_migrator(app, app / "migrations")
        migrator.upgrade(1)
        with pytest.raises(Exception, match="BIN2B64") as info:
            migrator.lint()
        codes = {f.code for f in info.value.report.findings}  # type: ignore[attr-defined]
        assert codes == {"SL001"}


class TestConfigErrors:
    """A setting that cannot be resolved is a configuration error naming its source."""

    @pytest.mark.parametrize(
        ("value", "match"),
        [
            ("no_such_module_xyz:register", "cannot import"),
            ("sqlfuncs:missing", "has no missing"),
            ("sqlfuncs:not_callable", "not a callable"),
        ],
    )
    def test_resolution_errors(self, app, value, match):
        """An import error, a missing name and a non-callable are ConfigErrors (exit 2)."""
        with pytest.raises(ConfigError, match=match) as info:
            Context(Settings(database=app / "app.db", functions=value))
        assert info.value.exit_code == 2

    def test_bad_form(self):
        """A value that is not module:callable is refused when the settings are made."""
        with pytest.raises(ValueError, match="module:callable"):
            Settings(functions="just_a_module")


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The installed `schemalog` in a real subprocess (the module is found in `cwd`)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SCHEMALOG_")}
    clean.pop("PYTHONPATH", None)
    return subprocess.run(
        [str(SCHEMALOG), *args],
        cwd=cwd,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


class TestCommandLine:
    """`--functions`, `SCHEMALOG_FUNCTIONS` and the config file, in real processes."""

    def test_env_applies(self, app):
        """SCHEMALOG_FUNCTIONS makes `up`, `check`, `verify` and `lint` work; the module is
        found in the working directory."""
        env = {"SCHEMALOG_FUNCTIONS": "sqlfuncs:register"}
        result = cli("--database", "app.db", "up", cwd=app, env=env)
        assert result.returncode == 0, result.stderr
        for command in (["check", "--all"], ["verify"], ["lint", "--all"]):
            done = cli("--database", "app.db", *command, cwd=app, env=env)
            assert done.returncode == 0, (command, done.stdout, done.stderr)
        without = cli("--database", "other.db", "up", cwd=app)
        assert without.returncode == 1 and "no such function: BIN2B64" in without.stderr

    @pytest.mark.parametrize(
        ("where", "source"),
        [
            ("flag", "flag --functions"),
            ("env", "environment variable SCHEMALOG_FUNCTIONS"),
            ("file", "key 'functions' in"),
        ],
    )
    def test_import_error_names_the_source(self, app, where, source):
        """An unimportable module exits 2, naming the flag, variable or file key."""
        value = "no_such_module_xyz:register"
        args, env = ["--database", "app.db"], {}
        if where == "flag":
            args += ["--functions", value]
        elif where == "env":
            env["SCHEMALOG_FUNCTIONS"] = value
        else:
            (app / "schemalog.toml").write_text(f'functions = "{value}"\n')
        result = cli(*args, "status", cwd=app, env=env)
        assert result.returncode == 2, result.stderr
        assert source in result.stderr and "cannot import" in result.stderr
