"""Tests for schemalog.engine.shell.executor, through `Migrator`: every step all-or-nothing, failures journaled.

Each test builds a small application in a tmp dir, runs real commands, and then looks at
the database and both journals through connections of its own.
"""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from schemalog.engine.base.errors import (
    MigrationFailed,
    MigrationFileError,
    StepFailed,
    VerificationFailed,
)
from schemalog.engine.base.settings import Settings
from schemalog.engine.core.plan import Plan, Step, plan_up
from schemalog.engine.files.migration import load_migration
from schemalog.engine.files.registry import load_registry
from schemalog.engine.migrator import Migrator
from schemalog.engine.shell.executor import Executor
from schemalog.journal.journal import Journal
from schemalog.journal.jsonl import JsonlStore
from schemalog.journal.replay import replay
from tests.engine.conftest import (
    BASIC,
    assert_journals_identical,
    connect,
    execute,
    kinds,
    live_fingerprint,
    make_migrator,
    of_kind,
    rows,
    schema_rows,
    table_events,
    table_names,
    user_version,
    write_migrations,
)

TRANSACTION_MODES = ["run", "step"]

# Migration 3 whose second statement fails: the first created a table holding rows.
FAILING_SECOND_STATEMENT = """
    -- Notes, with a bug in statement 2.
    -- migrate:up
    CREATE TABLE notes AS SELECT id AS item_id, 'note on ' || name AS body FROM items;
    INSERT INTO items (id, name) VALUES (1, 'duplicate id');
    INSERT INTO items (name) VALUES ('never reached');
    -- migrate:down
    DROP TABLE notes;
"""

FOURTH = """
    -- migrate:up
    CREATE TABLE more (id INTEGER PRIMARY KEY);
    -- migrate:down
    DROP TABLE more;
"""


def first_two(directory: Path, **extra: str) -> Path:
    """Write BASIC's migrations 1 and 2 plus `extra` (file name -> text) into `directory`."""
    files = {k: v for k, v in BASIC.items() if not k.startswith("003")}
    files.update(extra)
    return write_migrations(directory, files)


# --- a failing statement -----------------------------------------------------------------


@pytest.fixture(params=TRANSACTION_MODES)
def failed_run(request, tmp_path: Path, migrations_dir: Path):
    """Run 1..4 from an empty database where statement 2 of migration 3 fails."""
    first_two(migrations_dir, **{"003_add_notes.sql": FAILING_SECOND_STATEMENT})
    write_migrations(migrations_dir, {"004_more.sql": FOURTH})
    m = make_migrator(tmp_path, migrations_dir, transaction=request.param)
    with pytest.raises(MigrationFailed) as info:
        m.upgrade()
    return m, tmp_path / "app.db", info.value


class TestFailingStatement:
    """A statement that fails rolls back its whole migration, and only that migration."""

    def test_error_names_file_statement_and_exit_code(self, failed_run):
        """The error is a StepFailed (exit 1) naming the file, the statement and SQLite's message."""
        _, _, error = failed_run
        assert isinstance(error, StepFailed)
        assert error.exit_code == 1
        assert error.version == 3
        assert "003_add_notes.sql" in error.what
        assert "statement 2" in error.what
        assert "UNIQUE constraint failed: items.id" in error.what

    def test_database_holds_nothing_of_the_failed_migration(self, failed_run):
        """No table, no row and no user_version of migration 3 remain; migration 4 never ran."""
        _, db, _ = failed_run
        assert "notes" not in table_names(db)
        assert "more" not in table_names(db)
        assert rows(db, "items") == [(1, "alpha"), (2, "beta")]
        assert user_version(db) == 2

    def test_earlier_migrations_of_the_run_stay_applied(self, failed_run):
        """Migrations 1 and 2, applied by the same run, are committed and journaled."""
        m, db, _ = failed_run
        assert {"items", "tags"} <= table_names(db)
        assert rows(db, "tags") == [(1, 1, "red"), (2, 2, "blue")]
        state = m.replay()
        assert state.version == 2
        assert [a.version for a in state.applied] == [1, 2]

    def test_journal_holds_only_the_failure_events_of_migration_3(self, failed_run):
        """For version 3 the table holds step_started, step_failed and rolled_back, nothing else."""
        _, db, _ = failed_run
        events = table_events(db)
        assert kinds(events, 3) == ["step_started", "step_failed", "rolled_back"]
        assert kinds(events, 4) == []
        failed = of_kind(events, "step_failed")[0]
        assert (
            failed.data["statement"] == "INSERT INTO items (id, name) VALUES (1, 'duplicate id');"
        )
        assert failed.data["position"] == 2
        assert "UNIQUE constraint failed: items.id" in failed.data["error"]
        assert failed.data["sqlite_error"] == "SQLITE_CONSTRAINT_PRIMARYKEY"
        assert of_kind(events, "rolled_back")[0].data["method"] == "savepoint"
        finished = of_kind(events, "run_finished")[-1]
        assert finished.data["outcome"] == "failed"

    def test_both_journals_identical_and_replay_matches(self, failed_run):
        """Table and JSONL hold the same events; replay, user_version and status agree."""
        m, db, _ = failed_run
        events = assert_journals_identical(db)
        assert replay(events).version == user_version(db) == 2
        status = m.status()
        assert status.version == status.user_version == 2
        assert status.journal["consistent"] is True
        assert status.needs_recovery is False
        assert status.pending == [3, 4]

    def test_fixed_migration_applies_afterwards(self, failed_run, migrations_dir: Path):
        """A migration that failed was never applied, so it may be fixed and run again."""
        m, db, _ = failed_run
        fixed = FAILING_SECOND_STATEMENT.replace("(1, 'duplicate id')", "(3, 'gamma')")
        write_migrations(migrations_dir, {"003_add_notes.sql": fixed})
        m.upgrade()
        assert user_version(db) == 4
        assert {"notes", "more"} <= table_names(db)
        assert rows(db, "items")[-2:] == [(3, "gamma"), (4, "never reached")]
        assert_journals_identical(db)


# --- verify queries ------------------------------------------------------------------------


class TestVerifyQuery:
    """A verify query that does not return one truthy row rolls its migration back."""

    @pytest.mark.parametrize("transaction", TRANSACTION_MODES)
    def test_false_verify_rolls_back_and_records_the_query(
        self, tmp_path: Path, migrations_dir: Path, transaction: str
    ):
        """verification_failed carries the query and its result; the migration is undone."""
        first_two(
            migrations_dir,
            **{
                "003_add_notes.sql": """
                    -- migrate:up
                    CREATE TABLE notes (id INTEGER PRIMARY KEY);
                    -- migrate:verify
                    SELECT COUNT(*) = 99 FROM items;
                    """
            },
        )
        m = make_migrator(tmp_path, migrations_dir, transaction=transaction)
        with pytest.raises(VerificationFailed) as info:
            m.upgrade()
        assert info.value.exit_code == 1
        db = tmp_path / "app.db"
        assert "notes" not in table_names(db)
        assert user_version(db) == 2
        events = assert_journals_identical(db)
        assert kinds(events, 3) == ["step_started", "verification_failed", "rolled_back"]
        failed = of_kind(events, "verification_failed")[0]
        assert failed.data["check"] == "verify"
        assert failed.data["query"] == "SELECT COUNT(*) = 99 FROM items;"
        assert failed.data["position"] == 1
        assert failed.data["result"] == [[0]]

    def test_verify_query_with_sql_error_rolls_back(self, tmp_path: Path, migrations_dir: Path):
        """A verify query that raises counts as failed and records SQLite's message."""
        first_two(
            migrations_dir,
            **{
                "003_add_notes.sql": """
                    -- migrate:up
                    CREATE TABLE notes (id INTEGER PRIMARY KEY);
                    -- migrate:verify
                    SELECT COUNT(*) > 0 FROM no_such_table;
                    """
            },
        )
        m = make_migrator(tmp_path, migrations_dir)
        with pytest.raises(VerificationFailed):
            m.upgrade()
        events = table_events(tmp_path / "app.db")
        assert "no such table" in of_kind(events, "verification_failed")[0].data["error"]
        assert "notes" not in table_names(tmp_path / "app.db")


# --- Python steps --------------------------------------------------------------------------

PY_RAISES = '''
"""Notes, filled by Python, failing halfway."""


def up(conn):
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.execute("INSERT INTO notes (body) VALUES ('half done')")
    conn.execute("UPDATE items SET name = 'changed'")
    raise ValueError("boom")


down = "DROP TABLE notes;"
'''

PY_ENDS_TRANSACTION = '''
"""Notes, by a Python step that ends the transaction itself ({how})."""


def up(conn):
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    {call}
    conn.execute("INSERT INTO notes (body) VALUES ('after')")


down = "DROP TABLE notes;"
'''

ENDINGS = {
    "commit": "conn.commit()",
    "executescript": "conn.executescript(\"INSERT INTO notes (body) VALUES ('script');\")",
    "rollback": "conn.rollback()",
}


def py_ending(how: str) -> str:
    """The text of a Python migration whose `up` ends the transaction by `how`."""
    return PY_ENDS_TRANSACTION.replace("{how}", how).replace("{call}", ENDINGS[how])


class TestPythonStep:
    """A Python `up` runs inside the step's savepoint like SQL does."""

    @pytest.mark.parametrize("transaction", TRANSACTION_MODES)
    def test_raising_function_rolls_back(
        self, tmp_path: Path, migrations_dir: Path, transaction: str
    ):
        """An exception from `up` rolls back its table, its rows and its updates."""
        first_two(migrations_dir, **{"003_add_notes.py": PY_RAISES})
        m = make_migrator(tmp_path, migrations_dir, transaction=transaction)
        with pytest.raises(StepFailed) as info:
            m.upgrade()
        assert "failed: ValueError: boom" in info.value.what
        db = tmp_path / "app.db"
        assert "notes" not in table_names(db)
        assert rows(db, "items") == [(1, "alpha"), (2, "beta")]
        assert user_version(db) == 2
        events = assert_journals_identical(db)
        assert kinds(events, 3) == ["step_started", "step_failed", "rolled_back"]
        failed = of_kind(events, "step_failed")[0].data
        assert failed["statement"] == "python function"
        assert failed["error"] == "ValueError: boom"

    @pytest.mark.parametrize("how", ["commit", "executescript"])
    def test_function_that_commits_is_reported(self, tmp_path: Path, migrations_dir: Path, how):
        """A Python `up` that commits is refused (not authorized) and rolled back like any failure."""
        first_two(migrations_dir, **{"003_add_notes.py": py_ending(how)})
        m = make_migrator(tmp_path, migrations_dir)
        with pytest.raises(StepFailed) as info:
            m.upgrade()
        assert "end or nest schemalog's transaction" in info.value.what
        db = tmp_path / "app.db"
        events = assert_journals_identical(db)
        failed = of_kind(events, "step_failed")[0]
        assert failed.version == 3
        assert failed.data["error"] == "the function tried to end or nest schemalog's transaction"
        # Migrations 1 and 2 of the same run stay applied; 3 left nothing behind.
        assert [a.version for a in replay(events).applied] == [1, 2]

    @pytest.mark.parametrize("how", ["commit", "executescript"])
    def test_function_that_commits_leaves_database_and_journal_agreeing(
        self, tmp_path: Path, migrations_dir: Path, how
    ):
        """After a Python `up` committed, user_version equals the replayed version (invariant 2)."""
        first_two(migrations_dir, **{"003_add_notes.py": py_ending(how)})
        m = make_migrator(tmp_path, migrations_dir)
        with pytest.raises(StepFailed):
            m.upgrade()
        db = tmp_path / "app.db"
        assert user_version(db) == replay(table_events(db)).version
        # and the next command is not refused as irreconcilable:
        assert m.status().needs_recovery is False

    def test_function_that_rolls_back_keeps_journals_identical(
        self, tmp_path: Path, migrations_dir: Path
    ):
        """A Python `up` calling conn.rollback() leaves both journals identical (invariant 2)."""
        first_two(migrations_dir, **{"003_add_notes.py": py_ending("rollback")})
        m = make_migrator(tmp_path, migrations_dir)  # transaction="run": 1 and 2 share it
        with pytest.raises(StepFailed):
            m.upgrade()
        db = tmp_path / "app.db"
        events = assert_journals_identical(db)
        assert replay(events).version == user_version(db)

    def test_python_step_counts_zero_statements(self, tmp_path: Path, migrations_dir: Path):
        """A Python step records 0 statements and None as its plan's statements."""
        first_two(
            migrations_dir,
            **{"003_add_notes.py": 'def up(conn):\n    conn.execute("CREATE TABLE notes (x)")\n'},
        )
        report = make_migrator(tmp_path, migrations_dir).upgrade()
        assert report.plan.steps[-1].statements is None
        applied = of_kind(table_events(tmp_path / "app.db"), "step_applied")
        assert applied[-1].data["statements"] == 0


# --- recorded fingerprints --------------------------------------------------------------------


class TestRecordedFingerprints:
    """Each step records the schema before and after it, as a fresh connection sees it."""

    @pytest.mark.parametrize("transaction", TRANSACTION_MODES)
    def test_fingerprints_chain_from_step_to_step(
        self, tmp_path: Path, migrations_dir: Path, transaction: str
    ):
        """fingerprint_before of a step is the previous step's after; the last one is live."""
        write_migrations(
            migrations_dir,
            {
                **BASIC,
                "004_data_only.sql": (
                    "-- migrate:up\nUPDATE items SET note = 'n';\n"
                    "-- migrate:down\nUPDATE items SET note = NULL;"
                ),
                "005_more.sql": FOURTH,
            },
        )
        m = make_migrator(tmp_path, migrations_dir, transaction=transaction)
        db = tmp_path / "app.db"
        m.upgrade(1)
        after_1 = live_fingerprint(db)
        m.upgrade()
        applied = of_kind(table_events(db), "step_applied")
        assert applied[0].data["fingerprint_after"] == after_1
        for previous, step in itertools.pairwise(applied):
            assert step.data["fingerprint_before"] == previous.data["fingerprint_after"]
        data_only = applied[3].data
        assert data_only["fingerprint_before"] == data_only["fingerprint_after"]
        assert applied[-1].data["fingerprint_after"] == live_fingerprint(db)
        m.downgrade(0)
        reverted = of_kind(table_events(db), "step_reverted")
        assert reverted[-1].data["fingerprint_after"] == live_fingerprint(db)


# --- foreign keys off: the 12-step table rebuild ---------------------------------------------

FK_BASE = """
    -- Parents and children, enforced by a foreign key with ON DELETE CASCADE.
    -- migrate:up
    CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
    CREATE TABLE child (
        id INTEGER PRIMARY KEY,
        parent_id INTEGER NOT NULL REFERENCES parent (id) ON DELETE CASCADE
    );
    INSERT INTO parent (id, name) VALUES (1, 'a'), (2, 'b');
    INSERT INTO child (id, parent_id) VALUES (1, 1), (2, 2), (3, 1);
    -- migrate:down
    DROP TABLE child;
    DROP TABLE parent;
"""

REBUILD = """
    -- Rebuild parent with a CHECK on name (12-step procedure).
    -- migrate:up foreign_keys:false
    CREATE TABLE new_parent (id INTEGER PRIMARY KEY, name TEXT NOT NULL CHECK (length(name) > 0));
    INSERT INTO new_parent (id, name) SELECT id, name FROM parent {where};
    DROP TABLE parent;
    ALTER TABLE new_parent RENAME TO parent;
"""

DANGLING_INSERT = """
    -- migrate:up
    INSERT INTO child (id, parent_id) VALUES (99, 12345);
"""


class _ProbedConnection(sqlite3.Connection):
    """A connection that notes `PRAGMA foreign_keys` and any open transaction when closed."""

    seen: list[tuple[int, bool]]

    def close(self) -> None:
        try:
            fk = self.execute("PRAGMA foreign_keys").fetchone()[0]
            self.seen.append((fk, self.in_transaction))
        finally:
            super().close()


def probed_connect(db: Path, seen: list[tuple[int, bool]]):
    """A `connect` factory whose connections report their state into `seen` on close."""

    def factory() -> sqlite3.Connection:
        conn = sqlite3.connect(db, factory=_ProbedConnection)
        conn.seen = seen
        return conn

    return factory


class TestForeignKeysOff:
    """`foreign_keys = False` steps rebuild tables safely and restore enforcement."""

    def test_rebuild_keeps_children_and_restores_enforcement(
        self, tmp_path: Path, migrations_dir: Path
    ):
        """The rebuild keeps every child row; PRAGMA foreign_keys is ON again on the connection."""
        write_migrations(
            migrations_dir,
            {"001_family.sql": FK_BASE, "002_rebuild.sql": REBUILD.replace("{where}", "")},
        )
        db = tmp_path / "app.db"
        seen: list[tuple[int, bool]] = []
        m = make_migrator(tmp_path, migrations_dir)
        m = Migrator(m.settings, connect=probed_connect(db, seen))
        m.upgrade()
        assert user_version(db) == 2
        assert rows(db, "child") == [(1, 1), (2, 2), (3, 1)]
        assert rows(db, "parent") == [(1, "a"), (2, "b")]
        assert (
            "CHECK (length(name) > 0)"
            in dict((name, sql) for _, name, _, sql in schema_rows(db))["parent"]
        )
        assert seen[-1] == (1, False)  # enforcement back on, no transaction left open
        events = assert_journals_identical(db)
        started = next(e for e in of_kind(events, "step_started") if e.version == 2)
        assert started.data["foreign_keys"] is False

    @pytest.mark.parametrize("transaction", TRANSACTION_MODES)
    def test_enforcement_is_back_for_the_next_step_of_the_run(
        self, tmp_path: Path, migrations_dir: Path, transaction: str
    ):
        """A step after the rebuild, in the same run, cannot insert a dangling reference."""
        write_migrations(
            migrations_dir,
            {
                "001_family.sql": FK_BASE,
                "002_rebuild.sql": REBUILD.replace("{where}", ""),
                "003_dangling.sql": DANGLING_INSERT,
            },
        )
        m = make_migrator(tmp_path, migrations_dir, transaction=transaction)
        with pytest.raises(StepFailed) as info:
            m.upgrade()
        assert "FOREIGN KEY constraint failed" in info.value.what
        db = tmp_path / "app.db"
        assert user_version(db) == 2
        assert rows(db, "child") == [(1, 1), (2, 2), (3, 1)]
        assert_journals_identical(db)

    def test_dangling_rebuild_fails_foreign_key_check_and_rolls_back(
        self, tmp_path: Path, migrations_dir: Path
    ):
        """A rebuild that loses a referenced parent fails foreign_key_check; nothing changes."""
        write_migrations(
            migrations_dir,
            {
                "001_family.sql": FK_BASE,
                "002_rebuild.sql": REBUILD.replace("{where}", "WHERE id <> 1"),
            },
        )
        db = tmp_path / "app.db"
        seen: list[tuple[int, bool]] = []
        m = make_migrator(tmp_path, migrations_dir)
        m = Migrator(m.settings, connect=probed_connect(db, seen))
        m.upgrade(1)
        before = schema_rows(db)
        with pytest.raises(VerificationFailed) as info:
            m.upgrade()
        assert "foreign key check failed" in info.value.what
        assert user_version(db) == 1
        assert schema_rows(db) == before
        assert rows(db, "parent") == [(1, "a"), (2, "b")]
        assert rows(db, "child") == [(1, 1), (2, 2), (3, 1)]
        assert seen[-1] == (1, False)
        events = assert_journals_identical(db)
        assert kinds(events, 2) == ["step_started", "verification_failed", "rolled_back"]
        failed = of_kind(events, "verification_failed")[0].data
        assert failed["check"] == "foreign_key_check"
        assert failed["result"][0][0] == "child"

    def test_non_transactional_rebuild_runs_with_foreign_keys_off(
        self, tmp_path: Path, migrations_dir: Path
    ):
        """A rebuild declared `transaction:false foreign_keys:false` keeps every child row."""
        rebuild = REBUILD.replace("{where}", "").replace(
            "foreign_keys:false", "transaction:false foreign_keys:false"
        )
        write_migrations(migrations_dir, {"001_family.sql": FK_BASE, "002_rebuild.sql": rebuild})
        m = make_migrator(tmp_path, migrations_dir)
        m.upgrade()
        assert rows(tmp_path / "app.db", "child") == [(1, 1), (2, 2), (3, 1)]

    def test_python_rebuild_sees_foreign_keys_off(self, tmp_path: Path, migrations_dir: Path):
        """Inside a `foreign_keys = False` Python step, PRAGMA foreign_keys reads 0."""
        write_migrations(
            migrations_dir,
            {
                "001_family.sql": FK_BASE,
                "002_probe.py": (
                    "foreign_keys = False\n\n\n"
                    "def up(conn):\n"
                    '    fk = conn.execute("PRAGMA foreign_keys").fetchone()[0]\n'
                    '    conn.execute(f"CREATE TABLE fk_seen AS SELECT {fk} AS fk")\n'
                ),
            },
        )
        m = make_migrator(tmp_path, migrations_dir)
        m.upgrade()
        assert rows(tmp_path / "app.db", "fk_seen") == [(0,)]


# --- non-transactional steps -----------------------------------------------------------------

VACUUM = """
    -- Reclaim space.
    -- migrate:up transaction:false
    VACUUM;
"""

FAILING_NON_TRANSACTIONAL = '''
"""Statements outside a transaction, the third of which fails."""

transactional = False

up = """
CREATE TABLE scratch (x INTEGER);
INSERT INTO scratch (x) VALUES (1);
UPDATE items SET name = 'clobbered';
INSERT INTO no_such_table VALUES (1);
"""
'''


class TestNonTransactional:
    """`transactional = False` steps run in autocommit mode, guarded by a fresh backup."""

    def test_vacuum_step_runs(self, tmp_path: Path, migrations_dir: Path):
        """A VACUUM migration applies, after a fresh backup of its own."""
        first_two(migrations_dir, **{"003_vacuum.sql": VACUUM})
        m = make_migrator(tmp_path, migrations_dir)
        m.upgrade(2)
        execute(tmp_path / "app.db", "DELETE FROM tags")
        m.upgrade()
        db = tmp_path / "app.db"
        assert user_version(db) == 3
        events = assert_journals_identical(db)
        last_run = [e for e in events if e.run_id == events[-1].run_id]
        # the run's backup and the fresh one taken right before the step
        assert kinds(last_run).count("backup_taken") == 2
        started = of_kind(last_run, "step_started")[0]
        assert started.data["transactional"] is False
        assert m.status().needs_recovery is False

    @pytest.mark.parametrize("transaction", TRANSACTION_MODES)
    def test_failure_keeps_the_statements_that_ran_and_says_so(
        self, tmp_path: Path, migrations_dir: Path, transaction: str
    ):
        """Each statement outside a transaction is atomic by itself: a failing one leaves the
        ones before it applied, the failure says so, and no backup is restored over the
        application's writes."""
        first_two(migrations_dir, **{"003_scratch.py": FAILING_NON_TRANSACTIONAL})
        db = tmp_path / "app.db"
        m = make_migrator(tmp_path, migrations_dir, transaction=transaction)
        m.upgrade(2)
        with pytest.raises(StepFailed) as info:
            m.upgrade()
        assert "statements 1-3 of the step ran and stay" in info.value.state
        assert "scratch" in table_names(db)
        assert rows(db, "items") == [(1, "clobbered"), (2, "clobbered")]
        assert user_version(db) == 2
        events = assert_journals_identical(db)
        assert replay(events).version == 2
        rolled = of_kind(events, "rolled_back")[-1]
        assert rolled.version == 3
        assert rolled.data["method"] == "statement"
        assert of_kind(events, "step_failed")[-1].data["completed"] == 3
        assert not of_kind(events, "backup_restored")
        status = m.status()
        assert status.needs_recovery is False
        assert status.version == status.user_version == 2

    def test_failure_after_transactional_steps_keeps_them(
        self, tmp_path: Path, migrations_dir: Path
    ):
        """Steps applied earlier in the same run are committed before the step outside a
        transaction, and stay."""
        first_two(migrations_dir, **{"003_scratch.py": FAILING_NON_TRANSACTIONAL})
        m = make_migrator(tmp_path, migrations_dir)
        with pytest.raises(StepFailed):
            m.upgrade()
        db = tmp_path / "app.db"
        assert user_version(db) == 2
        assert {"items", "tags"} <= table_names(db)
        assert [a.version for a in m.replay().applied] == [1, 2]
        assert_journals_identical(db)


# --- transaction control in a migration --------------------------------------------------------


class TestTransactionControl:
    """Statements that would end schemalog's transaction are refused before anything runs."""

    @pytest.mark.parametrize(
        "statement", ["COMMIT;", "BEGIN;", "-- sneaky\nEND TRANSACTION;", "ROLLBACK;"]
    )
    def test_refused_at_plan_time(self, tmp_path: Path, migrations_dir: Path, statement: str):
        """MigrationFileError (exit 2); nothing ran, no event was written."""
        first_two(migrations_dir)
        m = make_migrator(tmp_path, migrations_dir)
        m.upgrade(1)
        db = tmp_path / "app.db"
        before = table_events(db)
        write_migrations(
            migrations_dir,
            {
                "003_bad.sql": f"""
                    -- migrate:up
                    CREATE TABLE notes (x);
                    {statement}
                    """
            },
        )
        with pytest.raises(MigrationFileError) as info:
            m.upgrade()
        assert info.value.exit_code == 2
        assert "003_bad.sql" in info.value.what
        assert table_events(db) == before
        assert user_version(db) == 1
        assert "tags" not in table_names(db)  # 002 did not run either

    def test_allowed_in_a_non_transactional_migration(self, migrations_dir: Path, tmp_path):
        """A non-transactional migration owns its transactions and may BEGIN/COMMIT."""
        first_two(
            migrations_dir,
            **{
                "003_own_tx.sql": """
                    -- migrate:up transaction:false
                    BEGIN;
                    CREATE TABLE notes (x);
                    COMMIT;
                    """
            },
        )
        m = make_migrator(tmp_path, migrations_dir)
        m.upgrade()
        db = tmp_path / "app.db"
        assert user_version(db) == 3
        assert "notes" in table_names(db)
        assert_journals_identical(db)


# --- the executor alone -------------------------------------------------------------------------


class NoBackups:
    """Hooks that take no backup (the executor alone, on a bare journal)."""

    def __init__(self, fresh: Any = None) -> None:
        self.fresh = fresh

    def take_backup(self) -> None:
        return None

    def confirm_backup(self) -> None:
        return None

    def fresh_backup(self) -> None:
        if self.fresh is not None:
            self.fresh()

    def step_started(self, version: int, filename: str, direction: str) -> None:
        return None

    def step_done(self, version: int, name: str, direction: str, outcome: str) -> None:
        return None


class TestExecutorAlone:
    """The executor on a bare journal, without a run around it."""

    def test_failing_non_transactional_step_reports_method_statement(
        self, tmp_path: Path, migrations_dir: Path
    ):
        """A non-transactional failure is journaled as rolled back by its statement alone."""
        write_migrations(migrations_dir, {"001_scratch.py": FAILING_NON_TRANSACTIONAL})
        conn = connect(tmp_path / "app.db")
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
        jsonl = JsonlStore(tmp_path / "app.db.journal.jsonl")
        journal = Journal(conn, jsonl)
        mig = load_migration(migrations_dir / "001_scratch.py")
        from schemalog.engine.files.sqlsplit import split_statements

        plan = Plan("up", 0, 1, (Step(mig, "up", tuple(split_statements(mig.up)), 1),))
        result = Executor(journal, "run1", NoBackups()).execute(plan)
        assert not result.ok
        assert result.steps[0].outcome == "failed"
        assert isinstance(result.error, StepFailed)
        events = journal.snapshot().table.events
        assert [e.kind.value for e in events] == ["step_started", "step_failed", "rolled_back"]
        assert events[-1].data["method"] == "statement"
        assert not conn.in_transaction
        jsonl.close()
        conn.close()

    def test_successful_steps_without_logger_on_a_connection_without_foreign_keys(
        self, tmp_path: Path, migrations_dir: Path
    ):
        """Steps apply and commit without a logger; no foreign key check runs when they are off."""
        write_migrations(migrations_dir, BASIC)
        conn = connect(tmp_path / "app.db")
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 0
        jsonl = JsonlStore(tmp_path / "app.db.journal.jsonl")
        journal = Journal(conn, jsonl)
        registry = load_registry(migrations_dir)
        plan = plan_up(registry, replay(()))
        result = Executor(journal, "run1", NoBackups(), per_step_commit=True).execute(plan)
        assert result.ok and [s.outcome for s in result.steps] == ["applied"] * 3
        assert [s.statements for s in result.steps] == [2, 3, 1]
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
        assert not conn.in_transaction
        jsonl.close()
        conn.close()
        assert_journals_identical(tmp_path / "app.db")

    def test_verify_result_with_a_blob_is_journaled_as_its_size(
        self, tmp_path: Path, migrations_dir: Path
    ):
        """A failing verify query's BLOB result is recorded as `<n bytes>`, not raw bytes."""
        first_two(
            migrations_dir,
            **{
                "003_blob.sql": """
                    -- migrate:up
                    CREATE TABLE notes (x);
                    -- migrate:verify
                    SELECT 0, x'00ff10';
                    """
            },
        )
        with pytest.raises(VerificationFailed):
            make_migrator(tmp_path, migrations_dir).upgrade()
        failed = of_kind(table_events(tmp_path / "app.db"), "verification_failed")[0]
        assert failed.data["result"] == [[0, "<3 bytes>"]]

    def test_error_outside_a_step_leaves_no_transaction_and_propagates(
        self, tmp_path: Path, migrations_dir: Path
    ):
        """A failing fresh backup propagates, leaves no transaction and keeps earlier steps."""
        write_migrations(
            migrations_dir,
            {"001_create_items.sql": BASIC["001_create_items.sql"], "002_vacuum.sql": VACUUM},
        )
        conn = connect(tmp_path / "app.db")
        jsonl = JsonlStore(tmp_path / "app.db.journal.jsonl")
        journal = Journal(conn, jsonl)
        plan = plan_up(load_registry(migrations_dir), replay(()))

        def failing_backup() -> None:
            msg = "disk full"
            raise OSError(msg)

        with pytest.raises(OSError, match="disk full"):
            Executor(journal, "run1", NoBackups(fresh=failing_backup)).execute(plan)
        assert not conn.in_transaction
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        jsonl.close()
        conn.close()
        events = assert_journals_identical(tmp_path / "app.db")
        assert [(e.kind.value, e.version) for e in events] == [
            ("step_started", 1),
            ("step_applied", 1),
        ]

    def test_settings_transaction_rejects_unknown_mode(self):
        """Settings accept only the transaction modes "run" and "step"."""
        with pytest.raises(ValueError, match="transaction"):
            Settings(transaction="never")
