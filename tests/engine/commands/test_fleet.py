"""Fleets end to end: `fleet_up`/`fleet_status`/`fleet_history` on real databases in worker
processes, the CLI in real subprocesses (JSON documents, exit codes, kill -9 and resume),
and a Dask run on a local scheduler and workers on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import attrs
import pytest

from schemalog.engine.base.errors import ConfigError, LockHeld, RegistryError, UsageError
from schemalog.engine.base.settings import Settings
from schemalog.engine.commands import fleet as fleet_module
from schemalog.engine.commands import fleet_worker as fleet_worker_module
from schemalog.engine.commands.fleet import fleet_history, fleet_status, fleet_up
from schemalog.engine.commands.fleet_worker import (
    Job,
    migrate_one,
    migration_files_digest,
    status_one,
)
from schemalog.engine.migrator import Migrator
from schemalog.engine.shell.fleet_journal import read_fleet_journal
from schemalog.engine.shell.fleet_pool import Pool, _Opened
from schemalog.engine.shell.lock import Holder, MigrationLock
from tests.engine.conftest import (
    BASIC,
    assert_journals_identical,
    execute,
    jsonl_events,
    user_version,
    write_migrations,
)

REPO = Path(__file__).resolve().parents[3]
TIMEOUT = 120  # seconds: no test here may run longer

# Migration 002 fails on every database: the shape of a bad release.
BROKEN = {
    "001_create_items.sql": BASIC["001_create_items.sql"],
    "002_insert_into_missing_table.sql": """
        -- migrate:up
        INSERT INTO no_such_table VALUES (1);
        -- migrate:down
        SELECT 1;
        """,
}

# Migration 002 sleeps, so that a test can kill the fleet while databases are mid-migration.
SLOW = {
    "001_create_items.sql": BASIC["001_create_items.sql"],
    "002_slow.py": '''
        """Add a table, slowly."""
        import time

        def up(conn):
            time.sleep(1.0)
            conn.execute("CREATE TABLE slow (id INTEGER PRIMARY KEY)")

        def down(conn):
            conn.execute("DROP TABLE slow")
        ''',
}

# Migration 002 kills its worker process on the database named crash.db.
CRASHING = {
    "001_create_items.sql": BASIC["001_create_items.sql"],
    "002_crash_one.py": '''
        """Kill the worker on crash.db."""
        import os

        def up(conn):
            if conn.execute("PRAGMA database_list").fetchone()[2].endswith("crash.db"):
                os._exit(9)
            conn.execute("CREATE TABLE fine (id INTEGER PRIMARY KEY)")

        def down(conn):
            conn.execute("DROP TABLE fine")
        ''',
}


@pytest.fixture(autouse=True)
def bounded():
    """Every test here is bounded in time (SIGALRM fails it)."""

    def expire(_signum, _frame):
        raise TimeoutError(f"fleet test took longer than {TIMEOUT} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(TIMEOUT)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture(autouse=True)
def logging_restored(monkeypatch):
    """Jobs run in this process (threads, direct calls) set the worker's logging: undo it."""
    from schemalog.engine.base import logs

    monkeypatch.setattr(fleet_worker_module, "_logs_configured", None)
    yield
    logs.reset_logging()


def tenants(tmp_path: Path, count: int, prefix: str = "t") -> list[Path]:
    """`count` new, empty databases (empty files) in tmp_path/tenants, sorted."""
    directory = tmp_path / "tenants"
    directory.mkdir(exist_ok=True)
    paths = [directory / f"{prefix}{i:02d}.db" for i in range(count)]
    for path in paths:
        path.write_bytes(b"")
    return paths


def settings_for(migrations: Path, **values) -> Settings:
    return Settings(migrations=migrations, lock_timeout=values.pop("lock_timeout", 5.0), **values)


def run_fleet(tmp_path: Path, migrations: Path, databases, **options):
    """`fleet_up` with its journal in tmp_path and two jobs unless told otherwise."""
    options.setdefault("jobs", 2)
    options.setdefault("journal", tmp_path / "fleet.jsonl")
    lock_timeout = options.pop("lock_timeout", 5.0)
    return fleet_up(settings_for(migrations, lock_timeout=lock_timeout), databases, **options)


def outcomes(report) -> dict[str, str]:
    return {Path(r.database).name: r.outcome for r in report.databases}


@pytest.fixture
def basic(tmp_path) -> Path:
    return write_migrations(tmp_path / "migrations", BASIC)


class TestFleetUp:
    def test_every_database_is_migrated_as_by_up(self, tmp_path, basic):
        """Each database reaches the head through its own run: journals agree, backup taken."""
        dbs = tenants(tmp_path, 5)
        report = run_fleet(tmp_path, basic, dbs)
        assert set(outcomes(report).values()) == {"applied"}
        assert report.summary == {
            "applied": 5,
            "up_to_date": 0,
            "failed": 0,
            "refused": 0,
            "skipped": 0,
        }
        assert report.exit_code == 0
        for db, result in zip(dbs, report.databases, strict=True):
            assert result.database == str(db)
            assert (result.from_version, result.to_version) == (0, 3)
            assert user_version(db) == 3
            events = assert_journals_identical(db)
            assert any(e.run_id == result.run_id and e.kind == "run_finished" for e in events)
            assert (db.parent / f"{db.name}.backups").is_dir()

    def test_a_rerun_finds_every_database_up_to_date(self, tmp_path, basic):
        """Run twice: the second run changes nothing and says so."""
        dbs = tenants(tmp_path, 3)
        run_fleet(tmp_path, basic, dbs)
        before = [len(jsonl_events(db)) for db in dbs]
        report = run_fleet(tmp_path, basic, dbs)
        assert set(outcomes(report).values()) == {"up_to_date"}
        assert [(r.from_version, r.to_version) for r in report.databases] == [(3, 3)] * 3
        assert [len(jsonl_events(db)) for db in dbs] == before

    def test_to_version(self, tmp_path, basic):
        """--to V stops every database at V; above the head is a usage error."""
        dbs = tenants(tmp_path, 2)
        report = run_fleet(tmp_path, basic, dbs, target=2)
        assert [r.to_version for r in report.databases] == [2, 2]
        assert [user_version(db) for db in dbs] == [2, 2]
        with pytest.raises(UsageError, match="above the newest"):
            run_fleet(tmp_path, basic, dbs, target=9)

    def test_bad_input_is_reported_per_database_and_the_others_continue(self, tmp_path, basic):
        """Missing, not a file, not SQLite (in the middle of the fleet), locked by another run,
        newer than the files, tampered with: each is refused with its error, nothing is
        changed in it, and every other database is migrated."""
        dbs = tenants(tmp_path, 8)
        by_name = {db.name: db for db in dbs}
        by_name["t01.db"].unlink()  # missing
        by_name["t02.db"].unlink()
        by_name["t02.db"].mkdir()  # not a file
        garbage = b"this is not a SQLite database, just bytes " * 100
        by_name["t03.db"].write_bytes(garbage)  # corrupt, in the middle
        newer = write_migrations(
            tmp_path / "newer",
            {
                **BASIC,
                "004_more.sql": "-- migrate:up\nCREATE TABLE more (id INTEGER);\n-- migrate:down\nDROP TABLE more;\n",
            },
        )
        Migrator(database=by_name["t04.db"], migrations=newer).upgrade()  # at 4, files say 3
        Migrator(database=by_name["t05.db"], migrations=basic).upgrade(1)
        jsonl = by_name["t05.db"].with_name("t05.db.journal.jsonl")
        jsonl.write_text(jsonl.read_text().replace('"command":"up"', '"command":"uq"', 1))
        lock = MigrationLock(by_name["t06.db"].with_name("t06.db.lock"))
        lock.acquire(Holder.for_this_process("other-run", "up"), timeout=0)
        try:
            report = run_fleet(tmp_path, basic, dbs, lock_timeout=0.2)
        finally:
            lock.release()
        results = {Path(r.database).name: r for r in report.databases}
        assert outcomes(report) == {
            "t00.db": "applied",
            "t01.db": "refused",
            "t02.db": "refused",
            "t03.db": "refused",
            "t04.db": "refused",
            "t05.db": "refused",
            "t06.db": "refused",
            "t07.db": "applied",
        }
        assert "does not exist" in results["t01.db"].error
        assert not by_name["t01.db"].exists()  # never created
        assert "is not a file" in results["t02.db"].error
        assert "not a database" in results["t03.db"].error
        assert results["t03.db"].exit_code == 4
        assert by_name["t03.db"].read_bytes() == garbage
        assert "004_more" in results["t04.db"].error
        assert results["t04.db"].exit_code == 2
        assert user_version(by_name["t04.db"]) == 4
        assert results["t05.db"].exit_code == 4
        assert user_version(by_name["t05.db"]) == 1
        assert "other-run" in results["t06.db"].error
        assert results["t06.db"].exit_code == 3
        assert report.exit_code == 1

    def test_canary_stop(self, tmp_path):
        """A canary that fails stops the fleet: no other database starts or changes."""
        broken = write_migrations(tmp_path / "migrations", BROKEN)
        dbs = tenants(tmp_path, 6)
        report = run_fleet(tmp_path, broken, dbs, canary=2)
        assert list(outcomes(report).values()) == ["failed"] * 2 + ["skipped"] * 4
        assert "no_such_table" in report.databases[0].error
        assert report.stopped in {f"canary {dbs[0]} failed", f"canary {dbs[1]} failed"}
        assert report.databases[0].to_version == 1  # 001 applied, 002 rolled back
        for db in dbs[2:]:
            assert db.read_bytes() == b""  # never touched
        skipped = report.databases[-1]
        assert skipped.error == f"not started: {report.stopped}"
        assert report.exit_code == 1

    def test_the_canary_runs_before_the_others(self, tmp_path, basic):
        """No database past the canary starts before every canary has finished."""
        dbs = tenants(tmp_path, 6)
        run_fleet(tmp_path, basic, dbs, canary=2, jobs=3)
        events = read_fleet_journal(tmp_path / "fleet.jsonl")
        canary = {str(db) for db in dbs[:2]}
        finished = [
            e.seq for e in events if e.kind == "database_finished" and e.data["database"] in canary
        ]
        later = [
            e.seq
            for e in events
            if e.kind == "database_started" and e.data["database"] not in canary
        ]
        assert max(finished) < min(later)

    @pytest.mark.parametrize("jobs", [1, 2])
    def test_failure_budget(self, tmp_path, jobs):
        """After F failures no database starts; only those already running may add to them."""
        broken = write_migrations(tmp_path / "migrations", BROKEN)
        dbs = tenants(tmp_path, 8)
        report = run_fleet(tmp_path, broken, dbs, max_failures=3, jobs=jobs)
        failed = report.summary["failed"]
        assert 3 <= failed <= 3 + jobs - 1
        assert report.summary["skipped"] == 8 - failed
        assert "--max-failures 3" in report.stopped

    @pytest.mark.parametrize("jobs", [1, 3])
    def test_a_dead_worker_fails_its_database_only(self, tmp_path, jobs):
        """A migration that kills its worker process fails that database (after one more
        try); the databases stopped with the pool are run again and recover; the rest of
        the fleet is migrated."""
        crashing = write_migrations(tmp_path / "migrations", CRASHING)
        dbs = [*tenants(tmp_path, 5), tmp_path / "tenants" / "crash.db"]
        dbs[-1].write_bytes(b"")
        report = run_fleet(tmp_path, crashing, dbs, jobs=jobs)
        results = outcomes(report)
        assert results.pop("crash.db") == "failed"
        assert "worker process died" in report.databases[0].error
        # One stopped with the pool after its commit is found up to date by its second try.
        assert set(results.values()) <= {"applied", "up_to_date"}
        for db in dbs[:-1]:
            assert user_version(db) == 2
            assert_journals_identical(db)
        starts = [
            e.data["database"]
            for e in read_fleet_journal(tmp_path / "fleet.jsonl")
            if e.kind == "database_started"
        ]
        assert starts.count(str(dbs[-1])) == 2

    def test_refused_before_anything_runs(self, tmp_path, basic):
        """Bad files, a set backup directory or a busy fleet journal stop the fleet before
        any database starts."""
        dbs = tenants(tmp_path, 2)
        write_migrations(
            tmp_path / "gap",
            {
                "001_a.sql": BASIC["001_create_items.sql"],
                "003_c.sql": BASIC["003_add_item_note.sql"],
            },
        )
        with pytest.raises(RegistryError):
            run_fleet(tmp_path, tmp_path / "gap", dbs)
        with pytest.raises(ConfigError, match="backups next to it"):
            fleet_up(Settings(migrations=basic, backup_dir=tmp_path / "b"), dbs, jobs=1)
        journal = tmp_path / "busy.jsonl"
        lock = MigrationLock(journal.with_name("busy.jsonl.lock"))
        lock.acquire(Holder.for_this_process("f0", "fleet up"), timeout=0)
        try:
            with pytest.raises(LockHeld):
                run_fleet(tmp_path, basic, dbs, journal=journal)
        finally:
            lock.release()
        assert [db.read_bytes() for db in dbs] == [b"", b""]

    def test_bad_options(self, tmp_path, basic):
        """--canary 0 and an empty list of databases are usage errors."""
        with pytest.raises(UsageError, match="canary"):
            run_fleet(tmp_path, basic, tenants(tmp_path, 1), canary=0)
        with pytest.raises(UsageError, match="no databases"):
            run_fleet(tmp_path, basic, [])

    def test_a_torn_fleet_journal_is_repaired_and_recorded(self, tmp_path, basic, threads):
        """A fleet journal cut mid-line by a kill: the tail is saved, journal_repaired says where."""
        dbs = tenants(tmp_path, 1)
        run_fleet(tmp_path, basic, dbs)
        with open(tmp_path / "fleet.jsonl", "ab") as fh:
            fh.write(b'{"seq": 9')
        run_fleet(tmp_path, basic, dbs)
        repaired = [
            e for e in read_fleet_journal(tmp_path / "fleet.jsonl") if e.kind == "journal_repaired"
        ]
        assert len(repaired) == 1
        assert Path(repaired[0].data["saved_to"]).read_bytes() == b'{"seq": 9'

    def test_the_fleet_journal_records_every_step(self, tmp_path, basic):
        """fleet_started, then a start and a finish per database, then fleet_finished."""
        dbs = tenants(tmp_path, 2)
        report = run_fleet(tmp_path, basic, dbs, jobs=1)
        events = read_fleet_journal(tmp_path / "fleet.jsonl")
        assert [e.kind for e in events] == [
            "fleet_started",
            "database_started",
            "database_finished",
            "database_started",
            "database_finished",
            "fleet_finished",
        ]
        assert {e.run_id for e in events} == {report.fleet_id}
        assert events[0].data["databases"] == [str(db) for db in dbs]
        assert events[2].data["outcome"] == "applied"
        assert events[-1].data["summary"]["applied"] == 2


class ThreadPool(Pool):
    """Jobs in threads of this process, so that a test can watch and steer the loop."""

    def __init__(self, slots: int = 2) -> None:
        self.slots, self.where = slots, "threads"
        self.executor = ThreadPoolExecutor(slots)
        self.restarts = 0

    def submit(self, fn, *args):
        return self.executor.submit(fn, *args)

    def map(self, fn, items):
        return list(self.executor.map(fn, items))

    def restart(self):
        self.restarts += 1

    def close(self, *, wait=True):
        self.executor.shutdown(wait=wait)


@pytest.fixture
def threads(monkeypatch):
    """fleet_up/fleet_status run their jobs in a new ThreadPool each."""
    monkeypatch.setattr(fleet_module, "open_pool", lambda **_kw: _Opened(ThreadPool()))


class TestDriveLoop:
    def test_ctrl_c_starts_nothing_new_and_lets_running_ones_finish(
        self, tmp_path, basic, threads, monkeypatch
    ):
        """A first Ctrl-C: the running databases finish, the rest are skipped, the run is
        recorded as interrupted."""
        calls = []
        real_wait = fleet_module.wait

        def interrupting_wait(fs, **kw):
            calls.append(1)
            if len(calls) == 1:
                raise KeyboardInterrupt
            return real_wait(fs, **kw)

        monkeypatch.setattr(fleet_module, "wait", interrupting_wait)
        dbs = tenants(tmp_path, 5)
        report = run_fleet(tmp_path, basic, dbs)
        assert report.outcome == "interrupted"
        assert list(outcomes(report).values()) == ["applied"] * 2 + ["skipped"] * 3
        assert report.stopped.startswith("interrupted")
        runs = fleet_history(tmp_path / "fleet.jsonl")
        assert runs[0].outcome == "interrupted"

    def test_a_second_ctrl_c_stops_at_once(self, tmp_path, basic, threads, monkeypatch):
        """A second Ctrl-C propagates; the fleet journal then has no fleet_finished."""

        def always(fs, **kw):
            raise KeyboardInterrupt

        monkeypatch.setattr(fleet_module, "wait", always)
        with pytest.raises(KeyboardInterrupt):
            run_fleet(tmp_path, basic, tenants(tmp_path, 3))
        assert fleet_history(tmp_path / "fleet.jsonl")[0].outcome == "interrupted"

    def test_a_job_that_raises_fails_its_database(self, tmp_path, basic, threads, monkeypatch):
        """An exception outside schemalog's own handling is that database's failure."""

        def boom(job):
            raise MemoryError("no room")

        monkeypatch.setattr(fleet_module, "migrate_one", boom)
        report = run_fleet(tmp_path, basic, tenants(tmp_path, 2))
        assert set(outcomes(report).values()) == {"failed"}
        assert "MemoryError: no room" in report.databases[0].error


class TestWorkerJobs:
    def job(self, db: Path, migrations: Path, **settings) -> Job:
        return Job(
            str(db), settings_for(migrations, **settings), None, migration_files_digest(migrations)
        )

    def test_migrate_one_in_process(self, tmp_path, basic):
        """The job applies, then finds the database up to date."""
        (db,) = tenants(tmp_path, 1)
        first = migrate_one(self.job(db, basic))
        assert (first.outcome, first.from_version, first.to_version) == ("applied", 0, 3)
        assert first.run_id is not None and first.seconds > 0
        assert migrate_one(self.job(db, basic)).outcome == "up_to_date"

    def test_other_migration_files_on_the_worker_are_refused(self, tmp_path, basic):
        """A worker whose files differ from the fleet's refuses, changing nothing."""
        (db,) = tenants(tmp_path, 1)
        job = self.job(db, basic)
        (basic / "004_new.sql").write_text("-- migrate:up\nCREATE TABLE n (id INTEGER);\n")
        result = migrate_one(job)
        assert result.outcome == "refused"
        assert "differ from those the fleet run was started with" in result.error
        assert db.read_bytes() == b""

    def test_missing_migrations_directory_on_the_worker(self, tmp_path, basic):
        """No migration files at the fleet's path on the worker: refused, exit 2."""
        (db,) = tenants(tmp_path, 1)
        job = attrs.evolve(self.job(db, basic), settings=settings_for(tmp_path / "nowhere"))
        result = migrate_one(job)
        assert (result.outcome, result.exit_code) == ("refused", 2)
        assert "cannot read the migration files" in result.error

    def test_missing_and_not_a_file(self, tmp_path, basic):
        """A missing path is never created; a directory is not a database."""
        missing = migrate_one(self.job(tmp_path / "nowhere.db", basic))
        assert (missing.outcome, missing.exit_code) == ("refused", 2)
        assert not (tmp_path / "nowhere.db").exists()
        assert "is not a file" in migrate_one(self.job(tmp_path, basic)).error
        row = status_one(self.job(tmp_path / "nowhere.db", basic))
        assert row.version is None and "does not exist" in row.error

    def test_a_failed_migration_in_process(self, tmp_path):
        """A failing step: failed, exit 1, the version after is the one before the step."""
        broken = write_migrations(tmp_path / "migrations", BROKEN)
        (db,) = tenants(tmp_path, 1)
        result = migrate_one(self.job(db, broken))
        assert (result.outcome, result.exit_code, result.to_version) == ("failed", 1, 1)

    def test_worker_logs_follow_the_fleet_settings(self, tmp_path, basic, capsys):
        """With a log format set, a worker logs in it (on its stderr)."""
        (db,) = tenants(tmp_path, 1)
        migrate_one(self.job(db, basic, log_format="json"))
        assert '"event"' in capsys.readouterr().err
        migrate_one(self.job(db, basic, log_format="auto"))  # silenced again

    def test_status_one_reports_drift_and_newer_versions(self, tmp_path, basic):
        """status: a hand-changed schema and a version above the files are errors."""
        a, b = tenants(tmp_path, 2)
        Migrator(database=a, migrations=basic).upgrade()
        execute(a, "CREATE TABLE sneaky (id INTEGER)")
        assert "changed outside schemalog" in status_one(self.job(a, basic)).error
        newer = write_migrations(
            tmp_path / "newer",
            {**BASIC, "004_x.sql": "-- migrate:up\nCREATE TABLE x (id INTEGER);\n"},
        )
        Migrator(database=b, migrations=newer).upgrade()
        row = status_one(self.job(b, basic))
        assert "newer than the migration files" in row.error
        assert row.version == 4


class TestFleetStatus:
    def test_histogram_recovery_and_errors(self, tmp_path, basic):
        """Versions are counted; a torn journal needs recovery; corrupt and missing ones have errors."""
        dbs = tenants(tmp_path, 6)
        for db, version in zip(dbs[:4], [1, 3, 3, 2], strict=True):
            Migrator(database=db, migrations=basic).upgrade(version)
        with open(dbs[2].with_name(dbs[2].name + ".journal.jsonl"), "ab") as fh:
            fh.write(b'{"seq": 99, "torn')
        dbs[4].write_bytes(b"not sqlite " * 200)
        dbs[5].unlink()
        report = fleet_status(settings_for(basic), dbs, jobs=2)
        assert report.versions == {"1": 1, "2": 1, "3": 2}
        rows = {Path(r.database).name: r for r in report.databases}
        assert rows["t00.db"].pending == [2, 3]
        assert rows["t01.db"].pending == []
        assert [Path(r.database).name for r in report.needing_recovery] == ["t02.db"]
        assert [Path(r.database).name for r in report.with_errors] == ["t04.db", "t05.db"]
        assert rows["t05.db"].head == 3

    def test_status_is_read_only(self, tmp_path, basic):
        """fleet status writes nothing: no journal, lock or backup appears."""
        dbs = tenants(tmp_path, 2)
        before = sorted(p.name for p in (tmp_path / "tenants").iterdir())
        fleet_status(settings_for(basic), dbs, jobs=1)
        assert sorted(p.name for p in (tmp_path / "tenants").iterdir()) == before


class TestFleetHistory:
    def test_every_run_with_its_databases(self, tmp_path):
        """history lists each run with each database's outcome, oldest first."""
        broken = write_migrations(tmp_path / "migrations", BROKEN)
        dbs = tenants(tmp_path, 3)
        first = run_fleet(tmp_path, broken, dbs, canary=1)
        second = run_fleet(tmp_path, broken, dbs[:1], jobs=1)
        runs = fleet_history(tmp_path / "fleet.jsonl")
        assert [r.fleet_id for r in runs] == [first.fleet_id, second.fleet_id]
        assert runs[0].outcome == "stopped"
        assert [d.outcome for d in runs[0].databases] == ["failed", "skipped", "skipped"]
        assert runs[1].outcome == "completed"
        assert runs[1].options["canary"] is None


# --- the CLI, in real subprocesses -----------------------------------------------------------


def cli(tmp_path: Path, *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    """`python -m schemalog ARGS` in tmp_path, bounded in time."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEMALOG_")}
    return subprocess.run(
        [sys.executable, "-m", "schemalog", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class TestFleetCli:
    def test_json_document_and_exit_codes(self, tmp_path, basic):
        """--json prints one document; exit 0 when all went well, 1 with a refused one."""
        tenants(tmp_path, 3)
        done = cli(
            tmp_path,
            "--migrations",
            "migrations",
            "fleet",
            "up",
            "--jobs",
            "2",
            "tenants/*.db",
            "--json",
        )
        assert done.returncode == 0, done.stderr
        doc = json.loads(done.stdout)
        assert set(doc) >= {"databases", "summary"}
        assert doc["summary"]["applied"] == 3
        row = doc["databases"][0]
        assert set(row) >= {"database", "outcome", "from_version", "to_version", "error"}
        assert (tmp_path / "schemalog-fleet.journal.jsonl").is_file()

        (tmp_path / "tenants" / "t01.db").write_bytes(b"garbage " * 300)
        done = cli(tmp_path, "--migrations", "migrations", "fleet", "up", "tenants/*.db", "--json")
        assert done.returncode == 1
        doc = json.loads(done.stdout)
        assert doc["summary"] == {
            "applied": 0,
            "up_to_date": 2,
            "failed": 0,
            "refused": 1,
            "skipped": 0,
        }
        assert "1 of 3 database(s) failed or were refused" in done.stderr

    @pytest.mark.parametrize(
        "args",
        [
            ["fleet", "up"],
            ["fleet", "up", "nothing/*.db"],
            ["fleet", "up", "--canary", "0", "x.db"],
            ["fleet", "up", "@missing.txt"],
            ["fleet", "status"],
        ],
    )
    def test_usage_errors_exit_2(self, tmp_path, basic, args):
        """No database, a pattern matching nothing, a bad option or list: exit 2, nothing ran."""
        done = cli(tmp_path, "--migrations", "migrations", *args)
        assert done.returncode == 2, done.stderr
        assert not (tmp_path / "schemalog-fleet.journal.jsonl").exists()

    def test_at_file_status_and_history(self, tmp_path, basic):
        """@FILE lists the databases; status --json has the histogram; history shows runs."""
        dbs = tenants(tmp_path, 3)
        (tmp_path / "list.txt").write_text("\n".join(str(db) for db in dbs[:2]) + "\n")
        done = cli(tmp_path, "--migrations", "migrations", "fleet", "up", "--to", "2", "@list.txt")
        assert done.returncode == 0, done.stderr
        assert "applied" in done.stdout
        done = cli(
            tmp_path, "--migrations", "migrations", "fleet", "status", "tenants/*.db", "--json"
        )
        assert done.returncode == 0, done.stderr
        doc = json.loads(done.stdout)
        assert doc["versions"] == {"0": 1, "2": 2}
        assert set(doc["databases"][0]) >= {
            "database",
            "version",
            "head",
            "pending",
            "needs_recovery",
            "error",
        }
        done = cli(
            tmp_path, "--migrations", "migrations", "fleet", "status", "--exit-code", "tenants/*.db"
        )
        assert done.returncode == 1  # pending migrations
        done = cli(tmp_path, "fleet", "history", "--json")
        (run,) = json.loads(done.stdout)
        assert [d["outcome"] for d in run["databases"]] == ["applied", "applied"]
        done = cli(tmp_path, "fleet", "history")
        assert run["fleet_id"] in done.stdout

    @pytest.mark.parametrize("victims", ["group", "fleet process"])
    def test_resume_after_kill_9(self, tmp_path, victims):
        """kill -9 of the fleet process (alone, or with its workers) mid-run: the re-run
        resumes, every database reaches the head, interrupted ones recover by themselves,
        none is half-migrated."""
        write_migrations(tmp_path / "migrations", SLOW)
        dbs = tenants(tmp_path, 8)
        journal = tmp_path / "schemalog-fleet.journal.jsonl"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEMALOG_")}
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "schemalog",
                "--migrations",
                "migrations",
                "fleet",
                "up",
                "--jobs",
                "2",
                "tenants/*.db",
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                kinds = [e.kind for e in read_fleet_journal(journal)] if journal.exists() else []
                started, finished = (
                    kinds.count("database_started"),
                    kinds.count("database_finished"),
                )
                if finished >= 2 and started > finished:
                    break
                time.sleep(0.02)
            else:
                pytest.fail("the fleet made no progress")
            time.sleep(0.3)  # the running ones are inside their slow step now
        finally:
            if victims == "group":
                os.killpg(proc.pid, signal.SIGKILL)
            else:  # the workers finish the database they are migrating, then exit
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        first = next(e for e in read_fleet_journal(journal) if e.kind == "fleet_started").run_id

        done = cli(
            tmp_path,
            "--migrations",
            "migrations",
            "fleet",
            "up",
            "--jobs",
            "2",
            "tenants/*.db",
            "--json",
        )
        assert done.returncode == 0, done.stderr
        doc = json.loads(done.stdout)
        assert doc["resumes"] == first
        assert {r["outcome"] for r in doc["databases"]} <= {"applied", "up_to_date"}
        assert doc["summary"]["up_to_date"] >= 2
        recovered = 0
        for db in dbs:
            assert user_version(db) == 2
            events = assert_journals_identical(db)
            recovered += any(e.kind == "recovery_started" for e in events)
        if victims == "group":
            assert recovered >= 1
        runs = fleet_history(journal)
        assert runs[0].outcome == "interrupted"
        assert "interrupted" in {d.outcome for d in runs[0].databases}
        assert runs[1].resumes == first and runs[1].outcome == "completed"


# --- Dask ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_cluster():
    """A local Dask scheduler and two worker processes on 127.0.0.1 (skips without dask)."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        worker_dashboard_address=None,
        resources={"tenants": 1},
    )
    try:
        yield cluster
    finally:
        cluster.close(timeout=30)


class TestDask:
    def test_a_fleet_on_a_dask_cluster(self, tmp_path, basic, dask_cluster):
        """--dask runs each database's job on the cluster's workers, through the same path."""
        dbs = tenants(tmp_path, 4)
        report = run_fleet(tmp_path, basic, dbs, jobs=None, dask=dask_cluster.scheduler_address)
        assert set(outcomes(report).values()) == {"applied"}
        assert all("dask worker" in r.worker for r in report.databases)
        for db in dbs:
            assert user_version(db) == 3
            assert_journals_identical(db)
        status = fleet_status(settings_for(basic), dbs, dask=dask_cluster.scheduler_address)
        assert status.versions == {"3": 4}

    def test_pinned_to_one_worker(self, tmp_path, basic, dask_cluster):
        """--dask-workers NAME runs every job on that worker only."""
        name = str(next(iter(dask_cluster.workers)))
        dbs = tenants(tmp_path, 3)
        report = run_fleet(
            tmp_path,
            basic,
            dbs,
            jobs=None,
            dask=dask_cluster.scheduler_address,
            dask_workers=[name],
        )
        assert set(outcomes(report).values()) == {"applied"}
        assert {r.worker.rsplit(" ", 1)[1] for r in report.databases} == {name}
        assert report.databases[0].worker.startswith(socket.gethostname())

    def test_pinned_by_resource(self, tmp_path, basic, dask_cluster):
        """--dask-resources NAME=N runs the jobs on workers offering that resource."""
        dbs = tenants(tmp_path, 2)
        address = dask_cluster.scheduler_address
        report = run_fleet(
            tmp_path, basic, dbs, jobs=None, dask=address, dask_resources="tenants=1"
        )
        assert set(outcomes(report).values()) == {"applied"}

    @pytest.mark.parametrize(
        ("option", "match"),
        [
            ({"dask_workers": ["no-such-worker"]}, "no worker named no-such-worker"),
            ({"dask_resources": "gpus=1"}, "can take the jobs"),
        ],
    )
    def test_a_restriction_no_worker_meets(self, tmp_path, basic, dask_cluster, option, match):
        """A worker name or resource no worker has: exit 2 at once (no job waits forever)."""
        dbs = tenants(tmp_path, 1)
        with pytest.raises(UsageError, match=match):
            run_fleet(
                tmp_path, basic, dbs, jobs=None, dask=dask_cluster.scheduler_address, **option
            )
        assert dbs[0].read_bytes() == b""

    def test_an_unreachable_scheduler_is_a_usage_error(self, tmp_path, basic):
        """A scheduler that does not answer: exit 2 before any database starts."""
        pytest.importorskip("distributed")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        dbs = tenants(tmp_path, 1)
        with pytest.raises(UsageError, match="cannot reach the Dask scheduler"):
            fleet_up(
                settings_for(basic),
                dbs,
                dask=f"tcp://127.0.0.1:{port}",
                journal=tmp_path / "f.jsonl",
            )

    def test_cli_with_dask(self, tmp_path, basic, dask_cluster):
        """`fleet up --dask ADDRESS` from the command line."""
        tenants(tmp_path, 2)
        done = cli(
            tmp_path,
            "--migrations",
            "migrations",
            "fleet",
            "up",
            "--dask",
            dask_cluster.scheduler_address,
            "tenants/*.db",
            "--json",
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["summary"]["applied"] == 2


# --- the CLI in this process (click's runner), for its human output ---------------------------


def invoke(tmp_path: Path, monkeypatch, *args: str):
    """`schemalog ARGS` through click's runner, in tmp_path."""
    from click.testing import CliRunner

    from schemalog.engine.cli import cli as root

    monkeypatch.chdir(tmp_path)
    for name in [k for k in os.environ if k.startswith("SCHEMALOG_")]:
        monkeypatch.delenv(name)
    return CliRunner().invoke(root, list(args), catch_exceptions=False)


class TestFleetCliOutput:
    def test_up_status_history_human_output(self, tmp_path, basic, threads, monkeypatch):
        """The tables name the database that needs attention, the counts, the histogram,
        the errors and every run."""
        dbs = tenants(tmp_path, 3)
        dbs[1].write_bytes(b"not a database " * 100)
        result = invoke(
            tmp_path, monkeypatch, "--migrations", "migrations", "fleet", "up", "tenants/*.db"
        )
        assert result.exit_code == 1
        assert "databases that need attention" in result.output
        assert "t01.db" in result.output and "refused" in result.output
        assert "1 of 3 database(s) failed or were refused" in result.output
        with open(dbs[2].with_name("t02.db.journal.jsonl"), "ab") as fh:
            fh.write(b'{"torn')
        result = invoke(
            tmp_path, monkeypatch, "--migrations", "migrations", "fleet", "status", "tenants/*.db"
        )
        assert result.exit_code == 0, result.output
        assert "3 (head)" in result.output
        assert "need recovery" in result.output and "errors" in result.output
        result = invoke(tmp_path, monkeypatch, "fleet", "history")
        assert "fleet runs, oldest first" in result.output and "completed" in result.output
        fleet_id = fleet_history(tmp_path / "schemalog-fleet.journal.jsonl")[0].fleet_id
        result = invoke(tmp_path, monkeypatch, "fleet", "history", "--run", fleet_id, "--json")
        assert json.loads(result.output)[0]["fleet_id"] == fleet_id
        result = invoke(tmp_path, monkeypatch, "fleet", "history", "--run", "nope")
        assert result.exit_code == 2

    def test_history_of_an_empty_journal(self, tmp_path, monkeypatch):
        """No fleet journal yet: nothing is recorded."""
        result = invoke(tmp_path, monkeypatch, "fleet", "history")
        assert "no fleet run is recorded" in result.output

    def test_stopped_and_interrupted_runs(self, tmp_path, threads, monkeypatch):
        """A canary stop says so; Ctrl-C exits 130 after the summary."""
        write_migrations(tmp_path / "migrations", BROKEN)
        tenants(tmp_path, 4)
        result = invoke(
            tmp_path,
            monkeypatch,
            "--migrations",
            "migrations",
            "fleet",
            "up",
            "--canary",
            "1",
            "tenants/*.db",
        )
        assert result.exit_code == 1
        assert "stopped: canary" in result.output
        calls = []
        real_wait = fleet_module.wait

        def interrupting_wait(fs, **kw):
            calls.append(1)
            if len(calls) == 1:
                raise KeyboardInterrupt
            return real_wait(fs, **kw)

        monkeypatch.setattr(fleet_module, "wait", interrupting_wait)
        write_migrations(tmp_path / "migrations", BASIC)
        (tmp_path / "migrations" / "002_insert_into_missing_table.sql").unlink()
        result = invoke(
            tmp_path, monkeypatch, "--migrations", "migrations", "fleet", "up", "tenants/*.db"
        )
        assert result.exit_code == 130
        assert "interrupted" in result.output

    def test_progress_bar(self, tmp_path, capsys):
        """On a terminal the bar counts done, failed and remaining."""
        from schemalog.engine.cli.fleet import _Progress
        from schemalog.engine.core.fleet import DatabaseResult

        class FakeApp:
            quiet = False

        progress = _Progress(FakeApp())  # type: ignore[arg-type]
        progress.enabled = True
        progress.start(2, "threads")
        progress.result(DatabaseResult("a", "failed"))
        progress.result(DatabaseResult("b", "applied"))
        assert progress._failed == 1 and progress._done == 2
        progress.stop()

    @pytest.mark.parametrize("spec", ["=1", "gpu=0", "gpu=x"])
    def test_bad_dask_resources(self, spec):
        """A malformed --dask-resources is a configuration error."""
        from schemalog.engine.shell.fleet_pool import _parse_resources

        with pytest.raises(ConfigError, match="NAME=AMOUNT"):
            _parse_resources(spec)

    def test_dask_resources_parse(self):
        """NAME=AMOUNT pairs, comma-separated; a bare NAME means 1."""
        from schemalog.engine.shell.fleet_pool import _parse_resources

        assert _parse_resources("a=2, b") == {"a": 2.0, "b": 1.0}
        assert _parse_resources(None) is None
