"""Tests for schemalog.engine.migrator: the Python API a CLI command or an application calls.

Covers sequential upgrades, no-op runs, up/down/up round trips, refused and verified
downgrades, registry errors, drift, baselines and dry runs. Each test checks what the
database and both journals hold afterwards, through connections of its own.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from schemalog.engine.base.errors import (
    DriftDetected,
    NotReversible,
    RegistryError,
    UsageError,
    VerificationFailed,
)
from schemalog.engine.files.migration import load_migration
from schemalog.engine.migrator import Migrator
from schemalog.journal.events import Draft, Kind
from schemalog.journal.journal import Journal
from schemalog.journal.jsonl import JsonlStore
from schemalog.journal.replay import replay
from tests.engine.conftest import (
    BASIC,
    DEMO_MIGRATIONS,
    assert_journals_identical,
    connect,
    execute,
    file_digest,
    jsonl_events,
    kinds,
    live_fingerprint,
    make_migrator,
    of_kind,
    rows,
    schema_rows,
    seed_demo,
    table_events,
    table_names,
    user_version,
    write_migrations,
)

TRANSACTION_MODES = ["run", "step"]


# --- upgrading -------------------------------------------------------------------------------


class TestSequentialUpgrade:
    """`upgrade()` applies pending migrations in order and agrees with itself afterwards."""

    @pytest.mark.parametrize("transaction", TRANSACTION_MODES)
    def test_applies_one_to_head_in_order(self, tmp_path: Path, basic_dir: Path, transaction):
        """Versions 1..3 are applied in order; user_version, replay and status all say 3."""
        m = make_migrator(tmp_path, basic_dir, transaction=transaction)
        report = m.upgrade()
        db = tmp_path / "app.db"
        assert [s.version for s in report.result.steps] == [1, 2, 3]
        assert all(s.outcome == "applied" for s in report.result.steps)
        events = assert_journals_identical(db)
        assert [e.version for e in of_kind(events, "step_applied")] == [1, 2, 3]
        status = m.status()
        assert user_version(db) == replay(events).version == m.replay().version == 3
        assert status.version == status.user_version == status.head == 3
        assert status.pending == []
        assert [a["version"] for a in status.applied] == [1, 2, 3]
        assert status.drift is False and status.needs_recovery is False
        assert rows(db, "items") == [(1, "alpha", None), (2, "beta", None)]

    def test_upgrade_to_a_target_stops_there(self, tmp_path: Path, basic_dir: Path):
        """`upgrade(2)` applies 1 and 2 only; a later `upgrade()` applies 3."""
        m = make_migrator(tmp_path, basic_dir)
        m.upgrade(2)
        assert user_version(tmp_path / "app.db") == 2
        assert m.status().pending == [3]
        report = m.upgrade()
        assert [s.version for s in report.plan.steps] == [3]
        assert user_version(tmp_path / "app.db") == 3

    def test_second_upgrade_is_a_noop_writing_no_event(self, tmp_path: Path, basic_dir: Path):
        """Upgrading an up-to-date database returns an empty plan and appends nothing."""
        m = make_migrator(tmp_path, basic_dir)
        m.upgrade()
        db = tmp_path / "app.db"
        before_table, before_jsonl = table_events(db), jsonl_events(db)
        jsonl_bytes = file_digest(db.with_name("app.db.journal.jsonl"))
        report = m.upgrade()
        assert report.plan.empty and report.result is None
        assert table_events(db) == before_table
        assert jsonl_events(db) == before_jsonl
        assert file_digest(db.with_name("app.db.journal.jsonl")) == jsonl_bytes

    def test_upgrade_target_errors(self, tmp_path: Path, basic_dir: Path):
        """A target above the head or below the current version is a UsageError (exit 2)."""
        m = make_migrator(tmp_path, basic_dir)
        with pytest.raises(UsageError) as info:
            m.upgrade(9)
        assert info.value.exit_code == 2
        m.upgrade(2)
        with pytest.raises(UsageError, match="below the current version"):
            m.upgrade(1)

    def test_demo_application_upgrades_and_verifies(self, tmp_path: Path):
        """The demo app's eight migrations apply over its seed data and `verify` passes."""
        m = make_migrator(tmp_path, DEMO_MIGRATIONS)
        db = tmp_path / "app.db"
        m.upgrade(1)
        seed_demo(db)
        m.upgrade()
        assert user_version(db) == 8
        checks = m.verify()
        assert all(c["ok"] for c in checks), [c for c in checks if not c["ok"]]
        assert len(rows(db, "tasks")) == 50
        history = m.history()
        assert [h.version for h in history] == list(range(1, 9))
        assert {h.outcome for h in history} == {"applied"}


# --- up, down, up ----------------------------------------------------------------------------


class TestRoundTrip:
    """Reverting and re-applying gives back the identical schema and keeps the data."""

    def test_demo_up_down_up_identical_schema_and_data(self, tmp_path: Path):
        """Demo 1..8 → down to 1 → up to 8: same sqlite_master text, fingerprint and rows."""
        m = make_migrator(tmp_path, DEMO_MIGRATIONS)
        db = tmp_path / "app.db"
        m.upgrade(1)
        seed_demo(db)
        schema_v1 = schema_rows(db)
        m.upgrade()
        schema_v8, fingerprint_v8 = schema_rows(db), live_fingerprint(db)
        untouched = ("users", "projects", "comments", "tags", "task_tags")
        data_v8 = {t: rows(db, t) for t in (*untouched, "tasks", "task_watchers")}

        m.downgrade(1)
        assert user_version(db) == 1
        assert schema_rows(db) == schema_v1
        for table in untouched:
            assert rows(db, table) == data_v8[table], table

        m.upgrade()
        assert schema_rows(db) == schema_v8
        assert live_fingerprint(db) == fingerprint_v8
        for table, data in data_v8.items():
            assert rows(db, table) == data, table
        events = assert_journals_identical(db)
        assert [e.version for e in of_kind(events, "step_reverted")] == [8, 7, 6, 5, 4, 3, 2]
        assert replay(events).fingerprint == fingerprint_v8

    @pytest.mark.parametrize("transaction", TRANSACTION_MODES)
    def test_basic_down_to_zero_and_back(self, tmp_path: Path, basic_dir: Path, transaction):
        """Down to 0 leaves no application table; up again rebuilds the same schema."""
        m = make_migrator(tmp_path, basic_dir, transaction=transaction)
        db = tmp_path / "app.db"
        m.upgrade()
        schema = schema_rows(db)
        report = m.downgrade(0)
        assert [s.version for s in report.result.steps] == [3, 2, 1]
        assert table_names(db) == set()
        assert user_version(db) == m.replay().version == 0
        m.upgrade()
        assert schema_rows(db) == schema
        assert_journals_identical(db)


# --- downgrading ---------------------------------------------------------------------------

NO_DOWN = """
    -- Tags, irreversibly.
    -- migrate:up
    CREATE TABLE tags (id INTEGER PRIMARY KEY, label TEXT);
"""

LEAVES_INDEX = """
    -- Tags plus an index on items; the down forgets the index.
    -- migrate:up
    CREATE INDEX idx_items_name ON items (name);
    CREATE TABLE tags (id INTEGER PRIMARY KEY, label TEXT);
    -- migrate:down
    DROP TABLE tags;
"""


class TestDowngrade:
    """`downgrade()` refuses what it cannot revert and verifies what it reverts."""

    def test_refused_before_anything_runs_without_down(self, tmp_path: Path, basic_dir: Path):
        """A migration without `down` on the way: NotReversible (exit 2), no event written."""
        write_migrations(basic_dir, {"002_create_tags.sql": NO_DOWN})
        m = make_migrator(tmp_path, basic_dir)
        m.upgrade()
        db = tmp_path / "app.db"
        before, digest = table_events(db), file_digest(db)
        with pytest.raises(NotReversible) as info:
            m.downgrade(0)
        assert info.value.exit_code == 2
        assert "002_create_tags.sql" in info.value.what
        assert table_events(db) == before
        assert jsonl_events(db) == before
        assert file_digest(db) == digest
        assert user_version(db) == 3
        with pytest.raises(NotReversible):
            m.downgrade(1, dry_run=True)
        m.downgrade(2)  # 003 alone can be reverted
        assert user_version(db) == 2

    @pytest.mark.parametrize("transaction", TRANSACTION_MODES)
    def test_down_that_leaves_an_index_is_rolled_back(
        self, tmp_path: Path, migrations_dir: Path, transaction
    ):
        """A down that does not restore the schema fails check=fingerprint and is undone."""
        write_migrations(
            migrations_dir,
            {"001_create_items.sql": BASIC["001_create_items.sql"], "002_tags.sql": LEAVES_INDEX},
        )
        m = make_migrator(tmp_path, migrations_dir, transaction=transaction)
        m.upgrade()
        db = tmp_path / "app.db"
        schema = schema_rows(db)
        with pytest.raises(VerificationFailed) as info:
            m.downgrade(0)
        assert info.value.exit_code == 1
        assert "002_tags.sql" in info.value.what
        assert schema_rows(db) == schema  # tags is back
        assert user_version(db) == m.replay().version == 2
        events = assert_journals_identical(db)
        assert kinds(events, 2)[-3:] == ["step_started", "verification_failed", "rolled_back"]
        failed = of_kind(events, "verification_failed")[0].data
        assert failed["check"] == "fingerprint"
        assert failed["direction"] == "down"
        assert failed["expected"] != failed["actual"]
        assert kinds(events, 1).count("step_started") == 1  # 001 was never attempted

    def test_downgrade_target_errors(self, tmp_path: Path, basic_dir: Path):
        """A target above the current version or below 0 is a UsageError."""
        m = make_migrator(tmp_path, basic_dir)
        m.upgrade(2)
        for target in (3, -1):
            with pytest.raises(UsageError):
                m.downgrade(target)

    def test_downgrade_to_current_version_is_a_noop(self, tmp_path: Path, basic_dir: Path):
        """`downgrade(current)` does nothing and writes nothing."""
        m = make_migrator(tmp_path, basic_dir)
        m.upgrade()
        before = table_events(tmp_path / "app.db")
        assert m.downgrade(3).plan.empty
        assert table_events(tmp_path / "app.db") == before


# --- registry errors ---------------------------------------------------------------------------


def _gap(directory: Path) -> str:
    write_migrations(directory, {"005_later.sql": "-- migrate:up\nSELECT 1;"})
    return "005_later.sql"


def _duplicate(directory: Path) -> str:
    write_migrations(directory, {"003_other.sql": "-- migrate:up\nSELECT 1;"})
    return "003_other.sql"


def _edited(directory: Path) -> str:
    path = directory / "002_create_tags.sql"
    path.write_text(path.read_text().replace("'red'", "'green'"))
    return "002_create_tags.sql"


def _deleted(directory: Path) -> str:
    (directory / "003_add_item_note.sql").unlink()
    return "003_add_item_note"


def _inserted_below_head(directory: Path) -> str:
    """Renumber: a new 003 below the head, the applied 003 moved up to 004."""
    (directory / "003_add_item_note.sql").rename(directory / "004_add_item_note.sql")
    write_migrations(directory, {"003_sneaked_in.sql": "-- migrate:up\nSELECT 1;"})
    return "003_sneaked_in.sql"


REGISTRY_PROBLEMS = {
    "gap": _gap,
    "duplicate": _duplicate,
    "edited": _edited,
    "deleted": _deleted,
    "inserted_below_head": _inserted_below_head,
}


class TestRegistryErrors:
    """An inconsistent set of migration files is refused by `upgrade()` before anything runs."""

    @pytest.mark.parametrize("problem", list(REGISTRY_PROBLEMS))
    def test_refused_naming_the_file(self, tmp_path: Path, basic_dir: Path, problem: str):
        """RegistryError (exit 2) naming the file; no event written, database file unchanged."""
        m = make_migrator(tmp_path, basic_dir)
        m.upgrade()
        db = tmp_path / "app.db"
        before, digest = table_events(db), file_digest(db)
        named = REGISTRY_PROBLEMS[problem](basic_dir)
        with pytest.raises(RegistryError) as info:
            m.upgrade()
        assert info.value.exit_code == 2
        assert named in info.value.what
        assert table_events(db) == before
        assert jsonl_events(db) == before
        assert file_digest(db) == digest
        assert user_version(db) == 3
        # status reports file-set problems (gap, duplicate); journal mismatches surface on use
        registry_error = m.status().registry_error
        if problem in ("gap", "duplicate"):
            assert registry_error is not None and named in registry_error
        else:
            assert registry_error is None

    def test_never_applied_file_below_the_journal_head(self, tmp_path: Path, basic_dir: Path):
        """A journal at version 3 lacking version 2 refuses 002 as never applied."""
        db = tmp_path / "app.db"
        migrations = [load_migration(p) for p in sorted(basic_dir.iterdir())]
        conn = connect(db)
        store = JsonlStore(db.with_name("app.db.journal.jsonl"))
        journal = Journal(conn, store)
        for mig in (migrations[0], migrations[2]):
            data = {"direction": "up", "name": mig.name, "checksum": mig.checksum}
            journal.append(Draft("crafted", Kind.STEP_APPLIED, mig.version, data))
        conn.execute("PRAGMA user_version = 3")
        store.close()
        conn.close()
        before, digest = table_events(db), file_digest(db)
        with pytest.raises(RegistryError) as info:
            make_migrator(tmp_path, basic_dir).upgrade()
        assert "002_create_tags.sql was never applied" in info.value.what
        assert table_events(db) == before
        assert file_digest(db) == digest

    def test_registry_error_before_database_is_created(self, tmp_path: Path, basic_dir: Path):
        """A gap is refused without creating the database or any file next to it."""
        _gap(basic_dir)
        with pytest.raises(RegistryError):
            make_migrator(tmp_path, basic_dir).upgrade()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["migrations"]


# --- drift and adoption --------------------------------------------------------------------


class TestDrift:
    """A schema changed behind schemalog's back is noticed and refused unless allowed."""

    @pytest.fixture
    def drifted(self, tmp_path: Path, basic_dir: Path):
        """Version 2 applied, then a table added with a plain sqlite3 connection."""
        m = make_migrator(tmp_path, basic_dir)
        m.upgrade(2)
        db = tmp_path / "app.db"
        execute(db, "CREATE TABLE sneaky (x INTEGER)")
        return m, db

    def test_drift_refused_and_journaled(self, drifted):
        """DriftDetected (exit 1) and a drift_detected event; nothing is applied."""
        m, db = drifted
        before = len(table_events(db))
        with pytest.raises(DriftDetected) as info:
            m.upgrade()
        assert info.value.exit_code == 1
        assert "allow-drift" in (info.value.hint or "")
        assert user_version(db) == 2
        assert "note" not in str(schema_rows(db))
        events = assert_journals_identical(db)
        new = events[before:]
        drift = of_kind(new, "drift_detected")
        assert len(drift) == 1
        assert drift[0].data["allowed"] is False
        assert drift[0].data["actual"] == live_fingerprint(db)
        assert drift[0].data["expected"] == replay(events).fingerprint
        assert of_kind(new, "run_finished")[0].data["outcome"] == "failed"
        assert "step_started" not in kinds(new)
        assert m.status().drift is True

    def test_allow_drift_proceeds_and_journals_it_as_allowed(self, drifted, basic_dir: Path):
        """With allow_drift the run applies, the drift is journaled as allowed and adopted."""
        m, db = drifted
        m.upgrade(allow_drift=True)
        assert user_version(db) == 3
        events = assert_journals_identical(db)
        drift = of_kind(events, "drift_detected")
        assert [d.data["allowed"] for d in drift] == [True]
        assert replay(events).fingerprint == live_fingerprint(db)
        assert m.status().drift is False
        write_migrations(basic_dir, {"004_more.sql": "-- migrate:up\nCREATE TABLE more (x);"})
        m.upgrade()  # the accepted drift is the new baseline: no second refusal
        assert user_version(db) == 4

    def test_unmanaged_database_refused_with_baseline_hint(self, tmp_path, basic_dir: Path):
        """A non-empty database without a journal is refused; nothing is written to it."""
        db = tmp_path / "app.db"
        execute(db, "CREATE TABLE legacy (x INTEGER)", "INSERT INTO legacy VALUES (1)")
        digest = file_digest(db)
        with pytest.raises(DriftDetected) as info:
            make_migrator(tmp_path, basic_dir).upgrade()
        assert "baseline" in (info.value.hint or "")
        assert file_digest(db) == digest
        assert table_events(db) == ()
        assert not db.with_name("app.db.journal.jsonl").exists()

    def test_unmanaged_database_with_only_user_version_refused(self, tmp_path, basic_dir):
        """An empty schema but a non-zero user_version also counts as unmanaged."""
        db = tmp_path / "app.db"
        execute(db, "PRAGMA user_version = 7")
        with pytest.raises(DriftDetected, match="user_version 7"):
            make_migrator(tmp_path, basic_dir).upgrade()

    def test_baseline_adopts_and_later_upgrade_applies_the_rest(self, tmp_path, basic_dir):
        """`baseline(2)` sets user_version 2; `upgrade()` then applies only 3."""
        db = tmp_path / "app.db"
        with sqlite3.connect(db) as conn:
            for name in ("001_create_items.sql", "002_create_tags.sql"):
                conn.executescript(load_migration(basic_dir / name).up)
        m = make_migrator(tmp_path, basic_dir)
        m.baseline(2)
        assert user_version(db) == 2
        assert m.replay().version == 2
        report = m.upgrade()
        assert [s.version for s in report.plan.steps] == [3]
        events = assert_journals_identical(db)
        assert len(of_kind(events, "baseline_set")) == 1
        assert [e.version for e in of_kind(events, "step_started")] == [3]
        assert user_version(db) == m.replay().version == 3
        assert [a.baselined for a in m.replay().applied] == [True, True, False]

    def test_baseline_refusals(self, tmp_path: Path, basic_dir: Path):
        """Baseline refuses a version outside 0..head and an already managed database."""
        m = make_migrator(tmp_path, basic_dir)
        with pytest.raises(UsageError):
            m.baseline(4)
        m.upgrade(1)
        with pytest.raises(UsageError, match="already managed"):
            m.baseline(1)


# --- dry runs -----------------------------------------------------------------------------------


class TestDryRun:
    """`dry_run=True` writes nothing and shows exactly what the real run executes."""

    def test_nothing_created_when_database_is_missing(self, tmp_path: Path, basic_dir: Path):
        """No database, journal, lock or backup file appears."""
        report = make_migrator(tmp_path, basic_dir).upgrade(dry_run=True)
        assert report.dry_run
        assert [s.version for s in report.plan.steps] == [1, 2, 3]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["migrations"]

    def test_no_event_when_database_exists(self, tmp_path: Path, basic_dir: Path):
        """A dry run on an existing database leaves both journals and the file untouched."""
        m = make_migrator(tmp_path, basic_dir)
        m.upgrade(1)
        db = tmp_path / "app.db"
        before, digest = table_events(db), file_digest(db)
        backups = sorted((tmp_path / "backups").iterdir())
        report = m.upgrade(dry_run=True)
        assert [s.version for s in report.plan.steps] == [2, 3]
        assert table_events(db) == before and jsonl_events(db) == before
        assert file_digest(db) == digest
        assert sorted((tmp_path / "backups").iterdir()) == backups
        down = m.downgrade(0, dry_run=True)
        assert [s.version for s in down.plan.steps] == [1]
        assert user_version(db) == 1

    def test_dry_run_refuses_what_the_real_run_refuses(self, tmp_path: Path, basic_dir: Path):
        """On an unmanaged non-empty database the dry run raises the real run's DriftDetected."""
        execute(tmp_path / "app.db", "CREATE TABLE legacy (x INTEGER)")
        m = make_migrator(tmp_path, basic_dir)
        with pytest.raises(DriftDetected):
            m.upgrade()
        with pytest.raises(DriftDetected):
            m.upgrade(dry_run=True)

    def test_plan_statements_equal_what_the_real_run_executes(self, tmp_path: Path):
        """The dry run's statements are the real run's, and step_applied counts match them."""
        scratch = tmp_path / "migrations"
        shutil.copytree(DEMO_MIGRATIONS, scratch)
        m = make_migrator(tmp_path, scratch)
        dry = m.upgrade(dry_run=True)
        real = m.upgrade()

        def shape(plan):
            return [(s.version, s.direction, s.statements, s.target_version) for s in plan.steps]

        assert shape(dry.plan) == shape(real.plan)
        assert (dry.plan.from_version, dry.plan.to_version) == (0, 8)
        applied = of_kind(table_events(tmp_path / "app.db"), "step_applied")
        counts = {e.version: e.data["statements"] for e in applied}
        for step in dry.plan.steps:
            assert counts[step.version] == len(step.statements or ())
        assert [s.statements for s in real.result.steps] == [
            len(s.statements or ()) for s in dry.plan.steps
        ]


# --- backups --------------------------------------------------------------------------------


class TestBackups:
    """Backups are journaled; restoring one brings database and journal back to its version."""

    def test_backup_create_is_journaled_and_listed(self, tmp_path: Path, basic_dir: Path):
        """`backup_create` records backup_taken and the backup appears in `backup_list`."""
        m = make_migrator(tmp_path, basic_dir)
        m.upgrade(2)
        record = m.backup_create()
        assert record.version == 2 and record.verified
        assert m.paths.backup_file(record.path).is_file()
        assert record.path == f"{record.id}.sqlite"  # relative to the backup directory
        assert record.id in [b.id for b in m.backup_list()]
        events = assert_journals_identical(tmp_path / "app.db")
        assert of_kind(events, "backup_taken")[-1].data["id"] == record.id
        assert user_version(tmp_path / "app.db") == m.replay().version == 2

    def test_restore_returns_to_the_backup_version(self, tmp_path: Path, basic_dir: Path):
        """After `backup_restore`, user_version, replay and schema are the backup's; history stays."""
        m = make_migrator(tmp_path, basic_dir)
        db = tmp_path / "app.db"
        m.upgrade(1)
        schema_v1 = schema_rows(db)
        record = m.backup_create()
        m.upgrade()
        m.backup_restore(record.id)
        assert user_version(db) == m.replay().version == 1
        assert schema_rows(db) == schema_v1
        events = assert_journals_identical(db)
        assert [e.version for e in of_kind(events, "step_applied")] == [1, 2, 3]
        assert of_kind(events, "backup_restored")[-1].data["backup_id"] == record.id
        assert m.status().needs_recovery is False


# --- the rest of the API ------------------------------------------------------------------


class TestMigratorApi:
    """Settings, progress, retention, history, events and the read-only commands."""

    def test_settings_from_overrides_and_evolve(self, tmp_path: Path, basic_dir: Path, monkeypatch):
        """Without Settings, the values are the settings (relative paths anchored at the working
        directory); with Settings, they replace fields."""
        monkeypatch.chdir(tmp_path)
        for var in ("SCHEMALOG_DATABASE", "SCHEMALOG_MIGRATIONS", "SCHEMALOG_TRANSACTION"):
            monkeypatch.delenv(var, raising=False)
        from schemalog.engine.migrator import Migrator

        m = Migrator(database="app.db", migrations="migrations")
        assert m.paths.database == tmp_path / "app.db"
        m.upgrade()
        assert user_version(tmp_path / "app.db") == 3
        evolved = Migrator(m.settings, transaction="step")
        assert evolved.settings.transaction == "step"
        assert evolved.settings.database == m.settings.database

    def test_progress_callback_sees_the_backup(self, tmp_path: Path, basic_dir: Path):
        """`progress(done, total)` is called while the run's backup is copied."""
        from schemalog.engine.base.context import Observer

        calls: list[tuple[int, int]] = []

        class Watching(Observer):
            def progress(self, done: int, total: int) -> None:
                calls.append((done, total))

        m = Migrator(make_migrator(tmp_path, basic_dir).settings, observer=Watching())
        m.upgrade(1)
        m.upgrade()
        assert calls and calls[-1][0] == calls[-1][1] > 0

    def test_retention_keeps_the_newest_backups(self, tmp_path: Path, basic_dir: Path):
        """With retention_count=2 older backups are removed, journaled and deleted from disk."""
        m = make_migrator(tmp_path, basic_dir, retention_count=2)
        m.upgrade(1)
        records = [m.backup_create() for _ in range(3)]
        kept = m.backup_list()
        assert [b.id for b in kept] == [r.id for r in records[-2:]]
        events = assert_journals_identical(tmp_path / "app.db")
        removed = {e.data["id"] for e in of_kind(events, "backup_removed")}
        assert len(removed) == 2
        for backup in (tmp_path / "backups").iterdir():
            assert backup.name.split(".")[0] not in removed
        assert m.backup_prune() == []  # already within budget

    def test_history_shows_failed_and_applied_attempts(self, tmp_path: Path, basic_dir: Path):
        """A failed attempt appears in `history` with its error; the applied ones too."""
        write_migrations(
            basic_dir, {"004_broken.sql": "-- migrate:up\nINSERT INTO nowhere VALUES (1);"}
        )
        m = make_migrator(tmp_path, basic_dir)
        with pytest.raises(Exception, match="no such table: nowhere"):
            m.upgrade()
        history = m.history()
        assert [(h.version, h.direction, h.outcome) for h in history] == [
            (1, "up", "applied"),
            (2, "up", "applied"),
            (3, "up", "applied"),
            (4, "up", "failed"),
        ]
        assert "no such table" in history[-1].error
        assert history[-1].finished_at is not None

    def test_replay_until_and_events(self, tmp_path: Path, basic_dir: Path):
        """`replay(until)` gives the state at that seq; `events()` lists every event."""
        m = make_migrator(tmp_path, basic_dir)
        m.upgrade()
        events = m.events()
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        first_applied = of_kind(events, "step_applied")[0].seq
        assert m.replay(until=first_applied).version == 1
        assert m.replay(until=first_applied - 1).version == 0
        assert m.replay().version == 3

    def test_status_and_lists_without_a_database(self, tmp_path: Path, basic_dir: Path):
        """Read-only commands on a missing database create nothing."""
        m = make_migrator(tmp_path, basic_dir)
        status = m.status()
        assert (status.exists, status.version, status.pending) == (False, 0, [1, 2, 3])
        assert m.backup_list() == []
        assert m.lock_status()["held"] is False
        assert sorted(p.name for p in tmp_path.iterdir()) == ["migrations"]

    def test_status_reports_a_registry_error(self, tmp_path: Path, basic_dir: Path):
        """A broken migrations directory is reported by status, not raised."""
        m = make_migrator(tmp_path, basic_dir)
        m.upgrade()
        write_migrations(basic_dir, {"009_far.sql": "-- migrate:up\nSELECT 1;"})
        status = m.status()
        assert status.registry_error and "missing" in status.registry_error
        assert status.version == 3

    def test_recover_and_lock_break_on_a_healthy_database_write_nothing(self, tmp_path, basic_dir):
        """Nothing to recover and no lock to break: no event is appended."""
        m = make_migrator(tmp_path, basic_dir)
        m.upgrade()
        before = table_events(tmp_path / "app.db")
        plan = m.recover()
        assert not plan.needed
        assert m.lock_status() == {"held": False, "holder": None, "last_holder": None}
        assert m.lock_break() is None
        assert table_events(tmp_path / "app.db") == before

    def test_verify_reports_drift_as_a_failed_check(self, tmp_path: Path, basic_dir: Path):
        """After a change behind schemalog's back `verify` raises CheckFailed with its checks."""
        from schemalog.engine.base.errors import CheckFailed

        m = make_migrator(tmp_path, basic_dir)
        m.upgrade()
        assert all(c["ok"] for c in m.verify())
        execute(tmp_path / "app.db", "CREATE TABLE sneaky (x)", "PRAGMA user_version = 2")
        with pytest.raises(CheckFailed) as info:
            m.verify()
        assert info.value.exit_code == 1
        failed = {c["check"] for c in info.value.checks if not c["ok"]}
        assert failed == {"schema", "version"}


def _tamper_jsonl_data(db: Path) -> None:
    """Change one past event's payload in the JSONL (its hash no longer matches)."""
    path = db.with_name("app.db.journal.jsonl")
    lines = path.read_text().splitlines(True)
    index = next(i for i, line in enumerate(lines) if '"step_applied"' in line)
    lines[index] = lines[index].replace('"statements":2', '"statements":7')
    assert lines[index] != path.read_text().splitlines(True)[index]
    path.write_text("".join(lines))


def _cut_seq_3_from_both(db: Path) -> None:
    """Remove seq 3 from the table and the last lines of the JSONL: the longer one has a gap."""
    execute(
        db,
        "DROP TRIGGER schemalog_journal_no_delete",
        "DELETE FROM schemalog_journal WHERE seq = 3",
    )
    path = db.with_name("app.db.journal.jsonl")
    lines = path.read_text().splitlines(True)
    path.write_text("".join(lines[:-3]))


class TestTampering:
    """A changed past event stops every writing command and is reported by the read-only ones."""

    def test_changed_event_refuses_upgrade_and_dry_run(self, tmp_path: Path, basic_dir: Path):
        """upgrade, its dry run and verify refuse with exit 4; nothing is written."""
        m = make_migrator(tmp_path, basic_dir)
        m.upgrade(2)
        db = tmp_path / "app.db"
        _tamper_jsonl_data(db)
        before, digest = table_events(db), file_digest(db)
        for call in (m.upgrade, lambda: m.upgrade(dry_run=True), m.verify, m.replay):
            with pytest.raises(Exception) as info:
                call()
            assert getattr(info.value, "exit_code", None) == 4, call
        assert table_events(db) == before and file_digest(db) == digest
        with pytest.raises(Exception) as info:
            m.verify()
        chain = [c for c in info.value.checks if c["check"] == "journal_chain"]
        assert chain and chain[0]["ok"] is False
        assert m.status().needs_recovery is True

    def test_status_reports_a_sequence_gap(self, tmp_path: Path, basic_dir: Path):
        """With a seq gap in the longer journal, status still answers: needs_recovery."""
        m = make_migrator(tmp_path, basic_dir)
        m.upgrade()
        _cut_seq_3_from_both(tmp_path / "app.db")
        status = m.status()
        assert status.needs_recovery is True
        assert status.journal["consistent"] is False

    def test_verify_lists_its_checks_for_a_sequence_gap(self, tmp_path: Path, basic_dir: Path):
        """verify refuses (exit 4) a seq gap and still carries the list of checks it ran."""
        m = make_migrator(tmp_path, basic_dir)
        m.upgrade()
        _cut_seq_3_from_both(tmp_path / "app.db")
        with pytest.raises(Exception) as info:
            m.verify()
        assert info.value.exit_code == 4
        chain = [c for c in info.value.checks if c["check"] == "journal_chain"]
        assert chain[0]["ok"] is False
