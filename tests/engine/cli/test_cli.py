"""Tests for schemalog.engine.cli: every contract command, its exit codes and --json shapes, and the
errors a new user runs into, through click's CliRunner and through real subprocesses."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
import structlog
from click.testing import CliRunner

from schemalog.engine.base.terminal import is_tty
from schemalog.engine.cli import app as app_module
from schemalog.engine.cli import cli, main, render
from schemalog.engine.cli.app import App

REPO = Path(__file__).resolve().parents[3]
SCHEMALOG = Path(sys.executable).with_name("schemalog")

USERS = '''\
"""Create the users table.

Impact: a new empty table.
"""
up = "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"
down = "DROP TABLE users;"
verify = ["SELECT COUNT(*) = 1 FROM sqlite_master WHERE name = 'users'"]
'''

EMAIL = '''\
"""Add an email column to users.

Impact: new nullable column; existing rows untouched.
"""
up = "ALTER TABLE users ADD COLUMN email TEXT;"
down = "ALTER TABLE users DROP COLUMN email;"
verify = ["SELECT COUNT(*) = 1 FROM pragma_table_info('users') WHERE name = 'email'"]
'''

INDEX = """\
-- Index users by email.
-- migrate:up
CREATE INDEX idx_users_email ON users (email);
-- migrate:down
DROP INDEX idx_users_email;
-- migrate:verify
SELECT COUNT(*) = 1 FROM pragma_index_list('users') WHERE name = 'idx_users_email';
"""

FAILING = """\
-- Fails on its second statement.
-- migrate:up
ALTER TABLE users ADD COLUMN age INTEGER;
INSERT INTO no_such_table VALUES (1);
-- migrate:down
ALTER TABLE users DROP COLUMN age;
"""

NO_DOWN = '''\
"""Add a nickname column; cannot be reverted.

Impact: new column.
"""
up = "ALTER TABLE users ADD COLUMN nickname TEXT;"
'''

HOLD_LOCK = """
import sys, time
from pathlib import Path
from schemalog.engine.shell.lock import Holder, MigrationLock
lock = MigrationLock(Path(sys.argv[1]))
lock.acquire(Holder.for_this_process("run-holder", "up"), timeout=5)
print("locked", flush=True)
time.sleep(60)
"""


# --- fixtures and helpers ------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _clean(monkeypatch):
    """No SCHEMALOG_* from the outer environment, no colour; structlog reset around each test."""
    for name in list(os.environ):
        if name.startswith("SCHEMALOG_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("NO_COLOR", "1")
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A working directory with migrations 001-003 and no database yet."""
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "001_create_users.py").write_text(USERS)
    (migrations / "002_add_email.py").write_text(EMAIL)
    (migrations / "003_index_email.sql").write_text(INDEX)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str, env: dict[str, str] | None = None):
    """Invoke the CLI in-process (CliRunner) with --database app.db; stdout/stderr apart."""
    return CliRunner().invoke(cli, ["--database", "app.db", *args], env=env)


def run_bare(*args: str, env: dict[str, str] | None = None):
    """Invoke the CLI in-process without any global option added."""
    return CliRunner().invoke(cli, list(args), env=env)


def doc(result) -> object:
    """The one JSON document on stdout."""
    return json.loads(result.stdout)


def process(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the installed `schemalog` script in a real subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEMALOG_")}
    return subprocess.run(
        [str(SCHEMALOG), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def user_version(db: Path) -> int:
    """PRAGMA user_version of `db`, read-only."""
    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


@pytest.fixture
def migrated(project) -> Path:
    """`project` with app.db at version 3."""
    result = run("up")
    assert result.exit_code == 0, result.output
    return project


# --- the group, global options, usage errors ---------------------------------------------------------


class TestGlobal:
    def test_help_lists_every_command(self):
        """--help names every command of the contract."""
        result = run_bare("--help")
        assert result.exit_code == 0
        for name in (
            "init",
            "new",
            "status",
            "up",
            "down",
            "history",
            "replay",
            "verify",
            "check",
            "recover",
            "baseline",
            "backup",
            "lock",
            "events",
        ):
            assert f"  {name}" in result.stdout

    def test_no_command_shows_usage(self):
        """Without a command, the usage is shown (exit 2, click's convention for usage)."""
        result = run_bare()
        assert result.exit_code == 2
        assert "Usage:" in result.output

    def test_version(self):
        """--version prints the package version."""
        result = run_bare("--version")
        assert result.exit_code == 0
        assert "schemalog" in result.stdout

    def test_typo_suggests_the_closest_command(self):
        """A mistyped command exits 2 and suggests the closest one."""
        result = run_bare("statsu")
        assert result.exit_code == 2
        assert "Did you mean 'status'" in result.stderr

    def test_typo_in_a_subcommand(self):
        """A mistyped subcommand of a group also gets a suggestion."""
        result = run("backup", "lsit")
        assert result.exit_code == 2
        assert "list" in result.stderr

    def test_suggestion_added_when_click_has_none(self, monkeypatch):
        """Our own difflib suggestion is added when click's message lacks one."""

        def plain(self, ctx, args):
            raise click.UsageError(f"No such command {args[0]!r}.", ctx)

        monkeypatch.setattr(click.Group, "resolve_command", plain)
        result = run_bare("histroy")
        assert result.exit_code == 2
        assert "Did you mean 'history'?" in result.stderr

    def test_unknown_option_is_a_usage_error(self, project):
        """An unknown option exits 2."""
        result = run("status", "--jsn")
        assert result.exit_code == 2

    def test_verbose_and_quiet_conflict(self, project):
        """--verbose with --quiet is refused with exit 2 and one error line."""
        result = run_bare("-v", "-q", "status")
        assert result.exit_code == 2
        assert result.stderr.startswith("error: --verbose and --quiet")

    def test_missing_database(self, project):
        """A command needing a database without one says how to set it (exit 2)."""
        result = run_bare("status")
        assert result.exit_code == 2
        assert "no database is set" in result.stderr
        assert "--database" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1

    def test_bad_lock_timeout_names_the_flag(self, project):
        """A bad flag value is a configuration error naming the flag (exit 2)."""
        result = run("--lock-timeout", "soon", "status")
        assert result.exit_code == 2
        assert "--lock-timeout" in result.stderr

    def test_database_from_environment(self, project):
        """SCHEMALOG_DATABASE is used when --database is absent."""
        result = run_bare("status", "--json", env={"SCHEMALOG_DATABASE": "env.db"})
        assert result.exit_code == 0
        assert doc(result)["database"].endswith("env.db")

    def test_flag_beats_environment(self, project):
        """--database wins over SCHEMALOG_DATABASE."""
        result = run("status", "--json", env={"SCHEMALOG_DATABASE": "env.db"})
        assert doc(result)["database"].endswith("app.db")

    def test_config_file_in_cwd(self, project):
        """schemalog.toml in the working directory supplies the database."""
        (project / "schemalog.toml").write_text('database = "from_file.db"\n')
        result = run_bare("status", "--json")
        assert result.exit_code == 0
        assert doc(result)["database"].endswith("from_file.db")

    def test_explicit_config_file(self, project):
        """--config FILE is read instead of discovery."""
        (project / "other.toml").write_text('database = "other.db"\n')
        result = run_bare("--config", "other.toml", "status", "--json")
        assert doc(result)["database"].endswith("other.db")

    def test_missing_config_file(self, project):
        """--config naming a missing file exits 2."""
        result = run_bare("--config", "nope.toml", "status")
        assert result.exit_code == 2
        assert "nope.toml" in result.stderr

    def test_unexpected_error_is_one_line_exit_1(self, project, monkeypatch):
        """An unexpected exception prints one line and exits 1; no traceback."""

        def boom(*_args):
            raise RuntimeError("disk on fire\nsecond line")

        monkeypatch.setattr("schemalog.engine.commands.inspect.status", boom)
        result = run("status")
        assert result.exit_code == 1
        assert result.stderr == "error: unexpected RuntimeError: disk on fire\n"

    def test_verbose_prints_the_traceback(self, project, monkeypatch):
        """With --verbose an error also prints its traceback."""

        def boom(*_args):
            raise RuntimeError("disk on fire")

        monkeypatch.setattr("schemalog.engine.commands.inspect.status", boom)
        result = run("--verbose", "status")
        assert result.exit_code == 1
        assert "Traceback" in result.stderr
        assert result.stderr.rstrip().endswith("error: unexpected RuntimeError: disk on fire")

    def test_verbose_traceback_for_schemalog_errors(self, project):
        """--verbose also shows the traceback of a SchemalogError."""
        result = run("--verbose", "history")
        assert result.exit_code == 2
        assert "Traceback" in result.stderr

    def test_log_format_json_writes_log_lines(self, project):
        """--log-format json writes one JSON log object per line on stderr."""
        result = run("--log-format", "json", "up", "--to", "1")
        assert result.exit_code == 0
        lines = [json.loads(line) for line in result.stderr.splitlines()]
        assert any(line.get("event") == "step applied" for line in lines)

    def test_auto_log_format_is_silent(self, project):
        """By default (auto) no log line repeats the CLI's own output."""
        result = run("up", "--to", "1")
        assert result.exit_code == 0
        assert result.stderr == ""


# --- init and new ----------------------------------------------------------------------------------


class TestInit:
    def test_writes_config_and_directory(self, tmp_path, monkeypatch):
        """init writes schemalog.toml and creates the migrations directory."""
        monkeypatch.chdir(tmp_path)
        result = run_bare("init")
        assert result.exit_code == 0, result.output
        assert (tmp_path / "schemalog.toml").is_file()
        assert (tmp_path / "migrations").is_dir()
        assert 'database = "app.db"' in (tmp_path / "schemalog.toml").read_text()

    def test_uses_the_flags(self, tmp_path, monkeypatch):
        """init writes the --database and --migrations given."""
        monkeypatch.chdir(tmp_path)
        result = run_bare("--database", "data.db", "--migrations", "db/migrations", "init")
        assert result.exit_code == 0
        text = (tmp_path / "schemalog.toml").read_text()
        assert 'database = "data.db"' in text
        assert (tmp_path / "db" / "migrations").is_dir()

    def test_refuses_to_overwrite(self, tmp_path, monkeypatch):
        """A second init exits 2 and leaves the file as it was."""
        monkeypatch.chdir(tmp_path)
        run_bare("init")
        (tmp_path / "schemalog.toml").write_text('database = "mine.db"\n')
        result = run_bare("init")
        assert result.exit_code == 2
        assert "already exists" in result.stderr
        assert (tmp_path / "schemalog.toml").read_text() == 'database = "mine.db"\n'

    def test_then_new_then_up(self, tmp_path, monkeypatch):
        """The first-run path: init, new, write the SQL, up, status."""
        monkeypatch.chdir(tmp_path)
        assert run_bare("init").exit_code == 0
        result = run_bare("new", "create_notes")
        assert result.exit_code == 0
        path = tmp_path / "migrations" / "001_create_notes.py"
        assert path.is_file()
        # The untouched template is refused, naming the file.
        refused = run_bare("up")
        assert refused.exit_code == 2
        assert "001_create_notes.py" in refused.stderr
        text = path.read_text().replace(
            "-- e.g. ALTER TABLE users ADD COLUMN email TEXT;",
            "CREATE TABLE notes (id INTEGER PRIMARY KEY);",
        )
        text = text.replace("-- e.g. ALTER TABLE users DROP COLUMN email;", "DROP TABLE notes;")
        path.write_text(text)
        assert run_bare("up").exit_code == 0
        assert doc(run_bare("status", "--json"))["version"] == 1


class TestNew:
    def test_numbers_after_the_highest(self, project):
        """new numbers the file after the highest version on disk."""
        result = run_bare("new", "add_phone")
        assert result.exit_code == 0
        assert (project / "migrations" / "004_add_phone.py").is_file()
        assert "004_add_phone.py" in result.stdout

    def test_sql(self, project):
        """--sql writes the .sql format."""
        result = run_bare("new", "add_phone", "--sql")
        assert result.exit_code == 0
        assert (project / "migrations" / "004_add_phone.sql").is_file()

    def test_free_text_name(self, project):
        """A name that is not snake_case becomes snake_case (accents and CamelCase folded)."""
        result = run_bare("new", "Add-Phône numbers")
        assert result.exit_code == 0
        assert (project / "migrations" / "004_add_phone_numbers.py").is_file()

    def test_name_without_letters(self, project):
        """A name with no letter or digit exits 2 and writes nothing."""
        result = run_bare("new", "?!")
        assert result.exit_code == 2
        assert "no letter or digit" in result.stderr
        assert not list((project / "migrations").glob("004_*"))

    def test_missing_directory(self, tmp_path, monkeypatch):
        """new without a migrations directory exits 2 pointing to init."""
        monkeypatch.chdir(tmp_path)
        result = run_bare("new", "x")
        assert result.exit_code == 2
        assert "schemalog init" in result.stderr


# --- reading commands -------------------------------------------------------------------------------


class TestStatus:
    def test_nonexistent_database(self, project):
        """status of a database that does not exist: version 0, all pending, nothing created."""
        result = run("status", "--json")
        assert result.exit_code == 0
        st = doc(result)
        assert st["exists"] is False
        assert st["version"] == 0
        assert st["pending"] == [1, 2, 3]
        assert not (project / "app.db").exists()
        assert not (project / "app.db.journal.jsonl").exists()

    def test_nonexistent_database_human(self, project):
        """The human status says the database does not exist yet."""
        result = run("status")
        assert result.exit_code == 0
        assert "does not exist yet" in result.stdout

    def test_json_shape(self, migrated):
        """status --json holds the contract's keys with the contract's shapes."""
        st = doc(run("status", "--json"))
        for key in (
            "database",
            "version",
            "user_version",
            "head",
            "pending",
            "applied",
            "lock",
            "needs_recovery",
            "drift",
            "journal",
        ):
            assert key in st
        assert st["version"] == st["user_version"] == st["head"] == 3
        assert st["pending"] == []
        assert set(st["applied"][0]) >= {"version", "name", "checksum", "applied_at"}
        assert st["lock"] == {"held": False, "holder": None, "last_holder": None}
        assert set(st["journal"]) == {"table_events", "jsonl_events", "consistent"}
        assert st["journal"]["consistent"] is True
        assert st["needs_recovery"] is False
        assert st["drift"] is False

    def test_human(self, migrated):
        """The human status names the version, pending and applied migrations."""
        result = run("status")
        assert result.exit_code == 0
        assert "pending" in result.stdout
        assert "create_users" in result.stdout
        assert "last backup" in result.stdout

    def test_human_shows_problems(self, migrated):
        """Drift, a bad file and a held lock show in the human status."""
        conn = sqlite3.connect(migrated / "app.db")
        conn.execute("CREATE TABLE sneaky (id INTEGER)")
        conn.close()
        (migrated / "migrations" / "004_broken.py").write_text("up = (\n")
        result = run("status")
        assert result.exit_code == 0
        assert "changed outside schemalog" in result.stdout
        assert "004_broken.py" in result.stdout

    def test_registry_error_in_json(self, migrated):
        """A malformed file does not stop status: registry_error names it."""
        (migrated / "migrations" / "004_broken.py").write_text("up = (\n")
        st = doc(run("status", "--json"))
        assert "004_broken.py" in st["registry_error"]


class TestHistory:
    def test_json_shape(self, migrated):
        """history --json: one entry per attempt, oldest first, contract keys."""
        entries = doc(run("history", "--json"))
        assert [e["version"] for e in entries] == [1, 2, 3]
        for e in entries:
            assert set(e) >= {
                "run_id",
                "version",
                "name",
                "direction",
                "outcome",
                "started_at",
                "finished_at",
                "error",
            }
            assert e["direction"] == "up"
            assert e["outcome"] == "applied"

    def test_human(self, migrated):
        """history shows a table of attempts."""
        result = run("history")
        assert result.exit_code == 0
        assert "add_email" in result.stdout
        assert "applied" in result.stdout

    def test_empty(self, project):
        """history of a database with no attempt says so."""
        sqlite3.connect(project / "app.db").close()
        result = run("history")
        assert result.exit_code == 0
        assert "no migration was attempted" in result.stdout

    def test_missing_database(self, project):
        """history of a missing database exits 2 and creates nothing."""
        result = run("history")
        assert result.exit_code == 2
        assert "does not exist" in result.stderr
        assert not (project / "app.db").exists()


class TestReplayAndEvents:
    def test_replay_until(self, migrated):
        """replay --until SEQ gives the state after that event."""
        events = doc(run("events", "--json"))
        first_applied = next(e["seq"] for e in events if e["kind"] == "step_applied")
        state = doc(run("replay", "--until", str(first_applied), "--json"))
        assert state["version"] == 1
        assert doc(run("replay", "--json"))["version"] == 3

    def test_replay_human(self, migrated):
        """replay prints the replayed version and the applied migrations."""
        result = run("replay")
        assert result.exit_code == 0
        assert "version" in result.stdout
        assert "index_email" in result.stdout
        result = run("replay", "--until", "3")
        assert "after event 3" in result.stdout

    def test_events(self, migrated):
        """events --json is the whole journal, seq 1, 2, 3, ..."""
        events = doc(run("events", "--json"))
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        assert {"id", "ts", "run_id", "kind", "version", "data", "prev", "hash"} <= set(events[0])
        human = run("events")
        assert "step_applied" in human.stdout

    def test_events_empty(self, project):
        """events of a database without journal says the journal is empty."""
        sqlite3.connect(project / "app.db").close()
        assert "the journal is empty" in run("events").stdout


class TestVerify:
    def test_ok(self, migrated):
        """verify passes on a healthy database (exit 0)."""
        result = run("verify")
        assert result.exit_code == 0
        assert "checks passed" in result.stdout

    def test_json(self, migrated):
        """verify --json: {ok, checks, error}."""
        result = run("verify", "--json")
        body = doc(result)
        assert body["ok"] is True
        assert body["error"] is None
        assert {"check", "ok", "detail"} <= set(body["checks"][0])

    def test_failed_check_exits_1(self, migrated):
        """A failing check (drifted schema) exits 1, with the checks still printed."""
        conn = sqlite3.connect(migrated / "app.db")
        conn.execute("CREATE TABLE sneaky (id INTEGER)")
        conn.close()
        result = run("verify", "--json")
        assert result.exit_code == 1
        body = doc(result)
        assert body["ok"] is False
        assert any(c["check"] == "schema" and not c["ok"] for c in body["checks"])
        human = run("verify")
        assert human.exit_code == 1
        assert "schema" in human.stdout
        assert human.stderr.startswith("error: verify found")

    def test_tampered_jsonl_exits_4(self, migrated):
        """A changed past event in the JSONL is detected: verify exits 4."""
        jsonl = migrated / "app.db.journal.jsonl"
        lines = jsonl.read_text().splitlines()
        lines[2] = lines[2].replace('"run_id":"', '"run_id":"x', 1)
        assert lines[2] != jsonl.read_text().splitlines()[2]
        jsonl.write_text("\n".join(lines) + "\n")
        result = run("verify")
        assert result.exit_code == 4
        assert result.stderr.startswith("error: ")
        assert len(result.stderr.strip().splitlines()) == 1
        as_json = run("verify", "--json")
        assert as_json.exit_code == 4
        assert doc(as_json)["ok"] is False

    def test_tampered_jsonl_blocks_up(self, migrated):
        """After tampering, up refuses with exit 4 and changes nothing."""
        jsonl = migrated / "app.db.journal.jsonl"
        lines = jsonl.read_text().splitlines()
        lines[1] = lines[1].replace('"run_id":"', '"run_id":"x', 1)
        jsonl.write_text("\n".join(lines) + "\n")
        (migrated / "migrations" / "004_no_down.py").write_text(NO_DOWN)
        result = run("up")
        assert result.exit_code == 4
        assert user_version(migrated / "app.db") == 3


# --- migrating ----------------------------------------------------------------------------------


class TestUp:
    def test_applies_everything(self, project):
        """up applies every migration, prints each, and the database ends at the head."""
        result = run("up")
        assert result.exit_code == 0, result.output
        assert "001_create_users.py" in result.stdout
        assert "003_index_email.sql" in result.stdout
        assert "version 0 -> 3" in result.stdout
        assert user_version(project / "app.db") == 3

    def test_to(self, project):
        """up --to V stops at V; a second up goes on."""
        assert run("up", "--to", "1").exit_code == 0
        assert user_version(project / "app.db") == 1
        assert run("up").exit_code == 0
        assert user_version(project / "app.db") == 3

    def test_nothing_to_do(self, migrated):
        """up at the head says there is nothing to do (exit 0)."""
        result = run("up")
        assert result.exit_code == 0
        assert "nothing to do" in result.stdout

    def test_target_above_head(self, project):
        """up --to beyond the head exits 2 and creates nothing... but names the head."""
        result = run("up", "--to", "9")
        assert result.exit_code == 2
        assert "above the newest migration (3)" in result.stderr

    def test_dry_run_prints_the_sql_and_changes_nothing(self, project):
        """up --dry-run prints each step's exact statements; no database is created."""
        result = run("up", "--dry-run")
        assert result.exit_code == 0, result.output
        assert "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)" in result.stdout
        assert "CREATE INDEX idx_users_email ON users (email)" in result.stdout
        assert "nothing was changed" in result.stdout
        assert not (project / "app.db").exists()

    def test_dry_run_python_step(self, project):
        """A Python step shows as a python function in the dry run."""
        (project / "migrations" / "004_py.py").write_text(
            '"""Py.\n\nImpact: none.\n"""\n\ndef up(conn):\n    conn.execute("SELECT 1")\n'
        )
        result = run("up", "--dry-run")
        assert "python function up(conn)" in result.stdout
        real = run("up")
        assert "python function" in real.stdout

    def test_dry_run_on_an_existing_database(self, migrated):
        """A dry run at the head says there is nothing to do."""
        result = run("up", "--dry-run")
        assert result.exit_code == 0
        assert "nothing to do" in result.stdout

    def test_dry_run_notes(self, project):
        """Non-transactional and foreign-keys-off steps are flagged in the plan."""
        (project / "migrations" / "004_vacuum.sql").write_text(
            "-- Vacuum.\n-- migrate:up transaction:false foreign_keys:false\nVACUUM;\n"
        )
        result = run("up", "--dry-run")
        assert "not transactional" in result.stdout
        assert "foreign keys off" in result.stdout

    def test_failing_migration_exits_1_and_rolls_back(self, migrated):
        """A failing migration exits 1 with one error line; nothing of it remains."""
        (migrated / "migrations" / "004_failing.sql").write_text(FAILING)
        result = run("up")
        assert result.exit_code == 1
        assert result.stderr.startswith("error: 004_failing.sql")
        assert "rolled back" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert user_version(migrated / "app.db") == 3
        conn = sqlite3.connect(migrated / "app.db")
        cols = [r[1] for r in conn.execute("PRAGMA table_info(users)")]
        conn.close()
        assert "age" not in cols
        entries = doc(run("history", "--json"))
        assert entries[-1]["version"] == 4
        assert entries[-1]["outcome"] == "failed"
        assert "no_such_table" in entries[-1]["error"]

    def test_malformed_file_exits_2_naming_it(self, migrated):
        """A migration file with a syntax error: exit 2, the file named, nothing run."""
        (migrated / "migrations" / "004_broken.py").write_text("up = (\n")
        result = run("up")
        assert result.exit_code == 2
        assert "004_broken.py" in result.stderr
        assert "nothing was run" in result.stderr

    def test_missing_migrations_directory(self, project):
        """A missing migrations directory exits 2 pointing to init."""
        result = run("--migrations", "nowhere", "up")
        assert result.exit_code == 2
        assert "nowhere" in result.stderr
        assert "schemalog init" in result.stderr

    def test_no_migrations(self, tmp_path, monkeypatch):
        """An empty migrations directory: nothing to do, and a hint to create one."""
        (tmp_path / "migrations").mkdir()
        monkeypatch.chdir(tmp_path)
        result = run("up")
        assert result.exit_code == 0
        assert "no migration files" in result.stdout
        assert "schemalog new" in result.stdout

    def test_edited_applied_migration_exits_2(self, migrated):
        """An applied migration edited afterwards is refused naming the file."""
        path = migrated / "migrations" / "002_add_email.py"
        path.write_text(path.read_text() + "\n# edited\n")
        result = run("up")
        assert result.exit_code == 2
        assert "002_add_email.py" in result.stderr

    def test_gap_exits_2(self, migrated):
        """A gap in the versions is refused naming the file."""
        (migrated / "migrations" / "005_late.py").write_text(NO_DOWN)
        result = run("up")
        assert result.exit_code == 2
        assert "005_late.py" in result.stderr

    def test_drift_exits_1_unless_allowed(self, migrated):
        """A schema changed outside schemalog stops up (exit 1); --allow-drift accepts it."""
        conn = sqlite3.connect(migrated / "app.db")
        conn.execute("CREATE TABLE sneaky (id INTEGER)")
        conn.close()
        (migrated / "migrations" / "004_no_down.py").write_text(NO_DOWN)
        result = run("up")
        assert result.exit_code == 1
        assert "changed outside schemalog" in result.stderr
        assert run("up", "--allow-drift").exit_code == 0
        assert user_version(migrated / "app.db") == 4

    def test_unmanaged_database_needs_baseline(self, project):
        """up on a database with a schema but no journal exits 1 and suggests baseline."""
        conn = sqlite3.connect(project / "app.db")
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        conn.close()
        result = run("up")
        assert result.exit_code == 1
        assert "baseline" in result.stderr


class TestDown:
    def test_reverts(self, migrated):
        """down --to V reverts newest first."""
        result = run("down", "--to", "1")
        assert result.exit_code == 0, result.output
        assert "reverted" in result.stdout
        assert user_version(migrated / "app.db") == 1

    def test_requires_to(self, migrated):
        """down without --to is a usage error (exit 2)."""
        result = run("down")
        assert result.exit_code == 2
        assert "--to" in result.stderr

    def test_dry_run(self, migrated):
        """down --dry-run prints the down statements and changes nothing."""
        result = run("down", "--to", "0", "--dry-run")
        assert result.exit_code == 0
        assert "DROP TABLE users" in result.stdout
        assert "DROP INDEX idx_users_email" in result.stdout
        assert user_version(migrated / "app.db") == 3

    def test_not_reversible(self, migrated):
        """down across a migration without down exits 2 naming it; nothing runs."""
        (migrated / "migrations" / "004_no_down.py").write_text(NO_DOWN)
        assert run("up").exit_code == 0
        result = run("down", "--to", "2")
        assert result.exit_code == 2
        assert "004_no_down.py" in result.stderr
        assert user_version(migrated / "app.db") == 4


class TestRecoverAndBaseline:
    def test_recover_nothing(self, migrated):
        """recover on a healthy database does nothing (exit 0)."""
        result = run("recover")
        assert result.exit_code == 0
        assert "nothing to recover" in result.stdout
        body = doc(run("recover", "--dry-run", "--json"))
        assert body == {"dry_run": True, "needed": False, "version": 3, "actions": []}

    def test_recover_mirrors_a_lost_jsonl_tail(self, migrated):
        """Lost JSONL lines are found (dry run) and mirrored back from the table (recover)."""
        jsonl = migrated / "app.db.journal.jsonl"
        lines = jsonl.read_text().splitlines()
        jsonl.write_text("\n".join(lines[:-2]) + "\n")
        dry = run("recover", "--dry-run", "--json")
        assert dry.exit_code == 0
        body = doc(dry)
        assert body["needed"] is True
        assert [a["kind"] for a in body["actions"]] == ["mirror_to_jsonl"]
        assert "events" not in body["actions"][0]
        assert len(jsonl.read_text().splitlines()) == len(lines) - 2
        human_dry = run("recover", "--dry-run")
        assert "recovery would" in human_dry.stdout
        done = run("recover")
        assert done.exit_code == 0
        assert "recovery did" in done.stdout
        assert run("verify").exit_code == 0

    def test_up_reports_its_recovery(self, migrated):
        """A writing command that recovers first says so."""
        jsonl = migrated / "app.db.journal.jsonl"
        lines = jsonl.read_text().splitlines()
        jsonl.write_text("\n".join(lines[:-1]) + "\n")
        assert "recovery would" in run("up", "--dry-run").stdout
        result = run("up")
        assert result.exit_code == 0
        assert "recovered:" in result.stdout

    def test_baseline(self, project):
        """baseline adopts an unmanaged database at a version; up goes on from there."""
        conn = sqlite3.connect(project / "app.db")
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        conn.close()
        result = run("baseline", "1")
        assert result.exit_code == 0, result.output
        assert "adopted at version 1" in result.stdout
        assert run("up").exit_code == 0
        assert doc(run("status", "--json"))["version"] == 3

    def test_baseline_refuses_managed(self, migrated):
        """baseline on a managed database exits 2."""
        result = run("baseline", "1")
        assert result.exit_code == 2

    def test_baseline_needs_a_version(self, project):
        """baseline without VERSION is a usage error."""
        assert run("baseline").exit_code == 2


class TestBackup:
    def test_create_and_list(self, migrated):
        """backup create, then list --json (oldest first, contract keys)."""
        created = run("backup", "create")
        assert created.exit_code == 0, created.output
        assert "verified" in created.stdout
        backups = doc(run("backup", "list", "--json"))
        assert len(backups) >= 2
        for b in backups:
            assert {"id", "version", "created_at", "size", "sha256", "verified"} <= set(b)
        assert backups == sorted(backups, key=lambda b: b["created_at"])
        assert backups[0]["version"] == 0

    def test_restore(self, migrated):
        """backup restore ID brings the backed-up version back and keeps the replaced file."""
        first = doc(run("backup", "list", "--json"))[0]
        restored = run("backup", "restore", first["id"])
        assert restored.exit_code == 0, restored.output
        assert "kept in" in restored.stdout
        assert user_version(migrated / "app.db") == 0
        assert doc(run("status", "--json"))["version"] == 0

    def test_list_human(self, migrated):
        """backup list shows a table with the ids."""
        result = run("backup", "list")
        assert result.exit_code == 0
        assert "verified" in result.stdout

    def test_list_without_database(self, project):
        """backup list of a database that does not exist: no backups (exit 0)."""
        result = run("backup", "list")
        assert result.exit_code == 0
        assert "no backups yet" in result.stdout
        assert doc(run("backup", "list", "--json")) == []

    def test_restore_unknown_id(self, migrated):
        """restore of an unknown id exits 2 and lists recent ids."""
        result = run("backup", "restore", "nope")
        assert result.exit_code == 2
        assert "nope" in result.stderr

    def test_prune(self, migrated):
        """prune applies the retention budget."""
        run("backup", "create")
        result = run("backup", "prune", env={"SCHEMALOG_RETENTION_COUNT": "1"})
        assert result.exit_code == 0
        assert "removed" in result.stdout
        assert len(doc(run("backup", "list", "--json"))) == 1
        again = run("backup", "prune", env={"SCHEMALOG_RETENTION_COUNT": "1"})
        assert "nothing to remove" in again.stdout


class TestLock:
    @pytest.fixture
    def holder(self, migrated):
        """A real subprocess holding the migration lock of app.db."""
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCK, str(migrated / "app.db.lock")],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "locked"
            yield proc
        finally:
            proc.kill()
            proc.wait()

    def test_status_free(self, migrated):
        """lock status of a free lock."""
        result = run("lock", "status")
        assert result.exit_code == 0
        assert "free" in result.stdout
        assert doc(run("lock", "status", "--json")) == {
            "held": False,
            "holder": None,
            "last_holder": None,
        }

    def test_held_lock_exits_3(self, migrated, holder):
        """up while another process holds the lock: waits, says whom for, exits 3."""
        started = time.monotonic()
        result = run("--lock-timeout", "0.2", "up")
        assert time.monotonic() - started < 10
        assert result.exit_code == 3
        assert f"waiting for the lock held by pid {holder.pid}" in result.stderr
        assert result.stderr.count("waiting for the lock") == 1
        assert "error: the migration lock" in result.stderr

    def test_status_and_break_while_held(self, migrated, holder):
        """lock status names the live holder; lock break refuses (exit 3)."""
        body = doc(run("lock", "status", "--json"))
        assert body["held"] is True
        assert body["holder"]["pid"] == holder.pid
        assert f"pid {holder.pid}" in run("lock", "status").stdout
        assert "held by" in run("status").stdout
        result = run("lock", "break")
        assert result.exit_code == 3

    def test_break_after_the_holder_died(self, migrated, holder):
        """After the holder dies, lock status shows it as last holder; break clears it."""
        holder.kill()
        holder.wait()
        assert "last holder" in run("lock", "status").stdout
        result = run("lock", "break")
        assert result.exit_code == 0
        assert "dead holder" in result.stdout or "free" in result.stdout

    def test_break_free(self, migrated):
        """lock break on a free lock with no record says so."""
        result = run("lock", "break")
        assert result.exit_code == 0
        assert "free" in result.stdout


class TestCheckCommand:
    def test_ok_from_empty(self, project):
        """check without a database tests every migration from an empty one."""
        result = run("check")
        assert result.exit_code == 0, result.output
        assert "from an empty database" in result.stdout
        assert "3 migration(s) ok" in result.stdout
        assert not (project / "app.db").exists()

    def test_pending_on_copy_and_all(self, migrated):
        """check tests pending migrations on a copy; --all also from empty."""
        (migrated / "migrations" / "004_no_down.py").write_text(NO_DOWN)
        before = (migrated / "app.db").read_bytes()
        result = run("check", "--all")
        assert result.exit_code == 0, result.output
        assert "on a copy of" in result.stdout
        assert "no down" in result.stdout
        assert "from an empty database" in result.stdout
        assert (migrated / "app.db").read_bytes() == before
        assert user_version(migrated / "app.db") == 3

    def test_nothing_pending(self, migrated):
        """check with nothing pending says so."""
        result = run("check")
        assert result.exit_code == 0
        assert "nothing pending" in result.stdout

    def test_failure_exits_1(self, migrated):
        """A failing migration makes check exit 1; the real database is untouched."""
        (migrated / "migrations" / "004_failing.sql").write_text(FAILING)
        journal = (migrated / "app.db.journal.jsonl").read_bytes()
        result = run("check", "--scratch-dir", str(migrated))
        assert result.exit_code == 1
        assert "004_failing.sql" in result.stdout
        assert result.stderr.startswith("error: check: 1 migration(s) failed")
        assert (migrated / "app.db.journal.jsonl").read_bytes() == journal
        assert not any(p.name.startswith("schemalog-check-") for p in migrated.iterdir())


# --- pieces of App -------------------------------------------------------------------------------


class TestApp:
    def test_lock_wait_message_once(self, capsys):
        """The observer prints one line however often a lock wait is reported."""
        app = App(flags={}, config=None, verbose=False, quiet=False)
        holder = "pid 12 on host box (run r1, command 'up') since 2026-01-01T00:00:00Z"
        app.observer.lock_wait(holder, 0.1)
        app.observer.lock_wait(holder, 0.2)
        app.observer.lock_wait(None, 0.3)
        err = capsys.readouterr().err
        assert err == f"waiting for the lock held by {holder}…\n"

    def test_lock_wait_unknown_holder(self, capsys):
        """Without a holder record the message says another process."""
        app = App(flags={}, config=None, verbose=False, quiet=False)
        app.observer.lock_wait(None, 0.1)
        assert "another process" in capsys.readouterr().err

    def test_progress_only_on_a_terminal(self, monkeypatch):
        """The progress bar starts on a terminal and stops at the end."""
        app = App(flags={}, config=None, verbose=False, quiet=False)
        observer = app.observer
        observer.progress(1, 2)
        assert observer._bar is None
        monkeypatch.setattr(app_module, "is_tty", lambda stream: True)
        observer.progress(1, 2)
        assert observer._bar is not None
        observer.progress(2, 2)
        assert observer._bar is None
        observer.progress(1, 4)
        app.close_progress()
        assert observer._bar is None

    def test_is_tty_of_odd_streams(self):
        """is_tty is False for objects without isatty or closed streams."""
        assert is_tty(object()) is False

        class Closed:
            def isatty(self):
                raise ValueError("closed")

        assert is_tty(Closed()) is False


# --- real subprocesses ----------------------------------------------------------------------------


class TestSubprocess:
    def test_python_dash_m(self, tmp_path):
        """`python -m schemalog --help` works from any directory, even one holding an
        application package named `engine` (the wheel installs only `schemalog`)."""
        (tmp_path / "engine").mkdir()
        (tmp_path / "engine" / "__init__.py").write_text("raise ImportError('the app engine')\n")
        proc = subprocess.run(
            [sys.executable, "-m", "schemalog", "--help"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0
        assert "Usage:" in proc.stdout

    def test_main_function(self, project, capsys):
        """main(argv) runs the CLI and exits with its code."""
        with pytest.raises(SystemExit) as info:
            main(["--database", "app.db", "status", "--json"])
        assert info.value.code == 0
        assert json.loads(capsys.readouterr().out)["version"] == 0

    def test_exit_codes_and_json(self, project):
        """The installed script: up (0), status --json parses, failing migration (1)."""
        assert process("--database", "app.db", "up", cwd=project).returncode == 0
        status = process("--database", "app.db", "status", "--json", cwd=project)
        assert status.returncode == 0
        assert json.loads(status.stdout)["version"] == 3
        (project / "migrations" / "004_failing.sql").write_text(FAILING)
        failed = process("--database", "app.db", "up", cwd=project)
        assert failed.returncode == 1
        assert failed.stderr.startswith("error: 004_failing.sql")
        assert (
            json.loads(process("--database", "app.db", "history", "--json", cwd=project).stdout)[
                -1
            ]["outcome"]
            == "failed"
        )

    def test_lock_held_exits_3(self, migrated):
        """A second process gives up after --lock-timeout with exit 3."""
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCK, str(migrated / "app.db.lock")],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "locked"
            proc = process("--database", "app.db", "--lock-timeout", "0.2", "up", cwd=migrated)
            assert proc.returncode == 3
            assert "waiting for the lock" in proc.stderr
        finally:
            holder.kill()
            holder.wait()

    def test_usage_error_exits_2(self, project):
        """A usage error in a real process exits 2."""
        proc = process("--database", "app.db", "down", cwd=project)
        assert proc.returncode == 2

    def test_tampered_exits_4(self, migrated):
        """verify in a real process exits 4 on a tampered JSONL."""
        jsonl = migrated / "app.db.journal.jsonl"
        lines = jsonl.read_text().splitlines()
        lines[0] = lines[0].replace('"run_id":"', '"run_id":"x', 1)
        jsonl.write_text("\n".join(lines) + "\n")
        proc = process("--database", "app.db", "verify", cwd=migrated)
        assert proc.returncode == 4

    def test_piped_output_is_plain(self, migrated):
        """Piped human output has no ANSI escapes and no box-drawing characters."""
        proc = process("--database", "app.db", "status", cwd=migrated)
        assert proc.returncode == 0
        assert "\x1b[" not in proc.stdout
        assert "─" not in proc.stdout

    def test_status_json_is_fast(self, migrated):
        """`status --json` answers within a generous bound and imports no human rendering."""
        started = time.monotonic()
        proc = process("--database", "app.db", "status", "--json", cwd=migrated)
        assert proc.returncode == 0
        assert time.monotonic() - started < 5
        probe = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; sys.argv = ['schemalog', '--database', 'app.db', 'status', '--json']\n"
                "from schemalog.engine.cli import main\n"
                "try:\n    main()\nexcept SystemExit:\n    pass\n"
                "import sys; print('rich.progress' in sys.modules, 'schemalog.engine.cli.render' in sys.modules, file=sys.stderr)",
            ],
            cwd=migrated,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        assert probe.stderr.strip().splitlines()[-1] == "False False"


# --- human rendering, on a terminal (rich) and piped (plain) -----------------------------------------


def _status(**changes):
    """A Status with every optional part filled; `changes` override fields."""
    from schemalog.engine.migrator import Status

    values = {
        "database": "/srv/app.db",
        "exists": True,
        "version": 2,
        "user_version": 3,
        "head": 5,
        "pending": [3, 4, 5],
        "applied": [{"version": 1, "name": "a", "checksum": "f" * 64, "applied_at": "T1"}],
        "lock": {
            "held": True,
            "holder": {
                "pid": 7,
                "host": "box",
                "run_id": "r9",
                "command": "up",
                "acquired_at": "T0",
            },
        },
        "needs_recovery": True,
        "recovery_actions": ["1 event(s) missing from the journal table"],
        "drift": True,
        "journal": {"table_events": 4, "jsonl_events": 5, "consistent": False},
        "last_backup": {"id": "b1", "version": 2, "size": 3 * 1024 * 1024, "verified": False},
        "last_run": {
            "run_id": "r9",
            "command": "up",
            "outcome": None,
            "started_at": "T0",
            "finished_at": None,
            "error": "boom",
        },
        "registry_error": "004_x.py: syntax error",
    }
    values.update(changes)
    return Status(**values)


def _state():
    """A replayed State with an open attempt, a lock, a pending restore and a baseline."""
    from schemalog.journal.replay import (
        AppliedMigration,
        Attempt,
        BackupRecord,
        LockRecord,
        RestoreRecord,
        State,
    )

    return State(
        seq=12,
        head_hash="ab" * 32,
        version=2,
        fingerprint="cd" * 32,
        applied=(
            AppliedMigration(1, "a", "c1", "T1", "r1", baselined=True),
            AppliedMigration(2, "b", "c2", "T2", "r2"),
        ),
        attempts=(Attempt("r3", 3, "up", "c", "T3", 10),),
        lock=LockRecord("r3", 7, "box", "up", "T3"),
        backups=(BackupRecord("b1", "/b/b1", 2, "T2", 10, "s", False, "none", "r2"),),
        pending_restore=RestoreRecord("r4", "b1", "/pre", "T4"),
    )


class TestRender:
    @pytest.fixture(params=[True, False], ids=["rich", "plain"])
    def out(self, request):
        """An Out in rich (terminal) or plain (piped) mode."""
        from schemalog.engine.cli.output import Out

        return Out(rich=request.param)

    def test_status_with_every_problem(self, out, capsys):
        """A status with drift, a held lock, recovery, a bad file and a failed run shows them all."""
        render.status(out, _status())
        text = capsys.readouterr().out
        for needle in (
            "but PRAGMA user_version is 3",
            "3 (3, 4, 5)",
            "004_x.py: syntax error",
            "held by pid 7 on box",
            "NOT consistent",
            "changed outside schemalog",
            "needed: 1 event(s)",
            "running or interrupted",
            "boom",
            "3.0 MiB",
            "NOT verified",
            "applied migrations",
        ):
            assert needle in text, needle

    def test_status_of_a_missing_database(self, out, capsys):
        """A missing database: version 0 and the hint that up creates it."""
        render.status(out, _status(exists=False, applied=[], pending=[1], registry_error=None))
        assert "does not exist yet" in capsys.readouterr().out

    def test_state(self, out, capsys):
        """replay's state names the open attempt, the lock, the pending restore, the baseline."""
        render.replayed_state(out, _state(), until=None)
        text = capsys.readouterr().out
        for needle in ("now (12 events)", "up 3 (run r3)", "held by run r3", "of b1 not finished"):
            assert needle in text, needle
        assert "(baseline)" in text

    def test_tables(self, out, capsys):
        """history, events, checks and backups render their rows."""
        from schemalog.engine.core.history import HistoryEntry
        from schemalog.journal.events import Event, Kind

        render.history(out, [HistoryEntry("r1", 1, "a", "up", "failed", "T1", None, "boom")])
        render.event_table(
            out, [Event(1, "id", "T", "r1", Kind.RUN_STARTED, None, {"x": 1}, "0", "h")]
        )
        render.checks(out, [{"check": "integrity", "ok": False, "detail": "bad page"}])
        render.backups(out, _state().backups)
        text = capsys.readouterr().out
        for needle in ("boom", "run_started", "bad page", "NO"):
            assert needle in text, needle

    def test_lock_and_backup_lines(self, out, capsys):
        """Lock states and a single backup render as one line each."""
        from schemalog.journal.replay import BackupRecord

        render.lock(out, {"held": False, "holder": None})
        render.lock(out, {"held": False, "holder": None, "last_holder": {"pid": 1, "host": "h"}})
        render.lock(out, {"held": True, "holder": None})
        render.backup(out, BackupRecord("b1", "/b", 2, "T", 500, "s", True, "none", "r"))
        text = capsys.readouterr().out
        assert "free\n" in text
        assert "last holder" in text
        assert "held by an unknown process" in text
        assert "500 B" in text

    def test_recovery(self, out, capsys):
        """A recovery plan lists its actions and the journal's version."""
        from schemalog.engine.core.diagnosis import Action, RecoveryPlan

        plan = RecoveryPlan(actions=(Action("close_run", "close run r1"),), state=_state())
        render.recovery(out, plan, dry_run=False)
        render.recovery_done(out, plan)
        text = capsys.readouterr().out
        assert "recovery did: close run r1" in text
        assert "recovered: close run r1" in text
        assert "journal version: 2" in text

    def test_check_lines(self, out, capsys):
        """check results and the three kinds of summary."""
        from schemalog.engine.commands.check import CheckReport, MigrationCheck

        ok = MigrationCheck(1, "001_a.sql", "ok", "", ("up",))
        bad = MigrationCheck(2, "002_b.sql", "failed", "up: boom")
        render.check_header(out, "header")
        render.check_result(out, ok)
        render.check_result(out, bad)
        render.check_summary(out, [])
        render.check_summary(out, [CheckReport("empty", "d", 0, (ok,))])
        render.check_summary(out, [CheckReport("empty", "d", 0, (ok, bad))])
        text = capsys.readouterr().out
        assert "002_b.sql: up: boom" in text
        assert "nothing to check" in text
        assert "1 migration(s) ok" in text
        assert "1 of 2 migration(s) failed" in text

    def test_run_and_plan(self, migrated, out, capsys):
        """A real run report and dry-run plan render in both modes."""
        from schemalog.engine.base.settings import Settings
        from schemalog.engine.migrator import Migrator

        (migrated / "migrations" / "004_no_down.py").write_text(NO_DOWN)
        migrator = Migrator(
            Settings(database=migrated / "app.db", migrations=migrated / "migrations")
        )
        render.run(out, migrator.upgrade(dry_run=True), "app.db")
        render.run(out, migrator.upgrade(), "app.db")
        render.run(out, migrator.upgrade(), "app.db")
        render.dry_run_plan(out, migrator.upgrade(dry_run=True).plan)
        text = capsys.readouterr().out
        assert "ALTER TABLE users ADD COLUMN nickname TEXT" in text
        assert "version 3 -> 4" in text
        assert "nothing to do" in text

    def test_helpers(self):
        """size_text and holder_text cover their edge cases."""
        from schemalog.engine.cli.output import holder_text, size_text

        assert size_text(None) == "-"
        assert size_text(1023) == "1023 B"
        assert size_text(5 * 1024**4) == "5120.0 GiB"
        assert holder_text(None) == "an unknown process"

    def test_out_detects_the_terminal(self, monkeypatch):
        """Out() is rich exactly when stdout is a terminal."""
        from schemalog.engine.cli import output

        monkeypatch.setattr(output, "is_tty", lambda stream: True)
        assert output.Out().rich is True
        monkeypatch.setattr(output, "is_tty", lambda stream: False)
        assert output.Out().rich is False

    def test_wide_table_on_a_narrow_terminal(self, capsys):
        """On a terminal too narrow for a table, each row stays one line (no column fragments)."""
        from schemalog.engine.cli.output import Out

        out = Out(rich=True)
        out.console.width = 40
        out.table(["id", "error"], [("r1", "x" * 60), ("r2", "short")], title="t", style_column=1)
        lines = capsys.readouterr().out.splitlines()
        assert lines[0] == "t"
        assert lines[2] == "r1  " + "x" * 60
        assert lines[3] == "r2  short"

    def test_time_formatting(self):
        """Timestamps are shortened for tables; finish times drop the date on the same day."""
        from schemalog.engine.cli.render import _finished, _versions, ts

        assert ts("2024-05-01T10:00:00.123456Z") == "2024-05-01 10:00:00"
        assert ts("yesterday") == "yesterday"
        assert ts(None) == "-"
        assert _finished("2024-05-01T10:00:00Z", "2024-05-01T10:00:05Z") == "10:00:05"
        assert _finished("2024-05-01T23:59:59Z", "2024-05-02T00:00:01Z") == "2024-05-02 00:00:01"
        assert _finished("2024-05-01T10:00:00Z", None) == "-"
        assert _versions([1, 2, 3, 4]) == "4 (1-4)"
        assert _versions([2, 5]) == "2 (2, 5)"

    def test_status_with_a_finished_run(self, out, capsys):
        """A finished, successful last run and a verified backup read plainly."""
        render.status(
            out,
            _status(
                drift=False,
                needs_recovery=False,
                lock={"held": False, "holder": None},
                journal={"table_events": 5, "jsonl_events": 5, "consistent": True},
                last_run={
                    "run_id": "r",
                    "command": "up",
                    "outcome": "succeeded",
                    "started_at": "T0",
                    "finished_at": "T1",
                    "error": None,
                },
                last_backup={"id": "b", "version": 2, "size": 10, "verified": True},
                registry_error=None,
                user_version=2,
                pending=[],
            ),
        )
        text = capsys.readouterr().out
        assert "up succeeded at T1" in text
        assert "pending" in text and "none" in text
        assert ", verified)" in text
