"""Several processes and writers at once: one run at a time, nothing slips in (invariant 5)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from schemalog.engine.shell.run import Run
from schemalog.journal.clock import parse_iso, utc_now
from tests.engine.conftest import (
    REPO,
    assert_journals_identical,
    make_migrator,
    of_kind,
    user_version,
)
from tests.engine.procs import make_project, ok, schemalog


class TestRacingProcesses:
    def test_each_migration_applied_exactly_once(self, tmp_path: Path, basic_dir: Path):
        """Four processes racing `up` apply every migration once; the others exit 0 or 3."""
        db = tmp_path / "app.db"
        cmd = [
            sys.executable,
            "-m",
            "schemalog",
            "--database",
            str(db),
            "--migrations",
            str(basic_dir),
            "--lock-timeout",
            "20",
            "up",
        ]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        procs = [
            subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(4)
        ]
        codes = [p.wait(timeout=120) for p in procs]
        assert set(codes) <= {0, 3}, [p.stderr.read() for p in procs]
        events = assert_journals_identical(db)
        applied = [e.version for e in of_kind(events, "step_applied")]
        assert sorted(applied) == [1, 2, 3]
        assert user_version(db) == 3
        # Exactly one run did the work; the others found nothing to do and wrote no event.
        assert len(of_kind(events, "run_started")) == 1


class TestWriterBetweenBackupAndRun:
    def test_no_commit_can_fall_between_the_backup_and_the_run(
        self, tmp_path: Path, basic_dir: Path, monkeypatch
    ):
        """The run holds SQLite's write lock from before its backup to its COMMIT: an
        application's commit attempted right after the backup waits, and lands after the run."""
        m = make_migrator(tmp_path, basic_dir)
        m.upgrade(target=1)
        db = tmp_path / "app.db"
        real = Run.take_backup
        seen: list[str] = []

        def backup_then_write(self):
            record = real(self)
            app = sqlite3.connect(db, timeout=0.1, isolation_level=None)
            try:
                app.execute("INSERT INTO items (name) VALUES ('slipped in')")
                seen.append("committed")
            except sqlite3.OperationalError as exc:
                seen.append(str(exc))
            finally:
                app.close()
            return record

        monkeypatch.setattr(Run, "take_backup", backup_then_write)
        report = m.upgrade()
        assert seen == ["database is locked"]
        assert report.backup is not None
        with sqlite3.connect(m.paths.backup_file(report.backup.path)) as copy:
            assert copy.execute("PRAGMA user_version").fetchone()[0] == 1
        copy.close()
        with sqlite3.connect(db) as app:
            app.execute("INSERT INTO items (name) VALUES ('after the run')")
        app.close()
        assert_journals_identical(db)


FAILING_SLOWLY = '''\
"""Fails after a while, so that other processes come to wait behind it."""
import time


def up(conn):
    time.sleep(float(__import__("os").environ.get("SLOW_FAIL_S", "0")))
    conn.execute("INSERT INTO no_such_table VALUES (1)")
'''


class TestWaitersOfAFailedRun:
    """A process that waited behind a run that failed reports that failure; one that started
    after the failure tries again (the rule of `up`'s waiters, decided by the process's start)."""

    @staticmethod
    def _project(tmp_path: Path) -> Path:
        project = make_project(tmp_path / "p", count=2)
        (project / "migrations" / "003_fails.py").write_text(FAILING_SLOWLY)
        return project

    def test_a_failure_from_before_this_process_is_tried_again(self, tmp_path: Path):
        """Back to back: the second `up` runs the migration again (and fails on it itself)."""
        project = self._project(tmp_path)
        first = ok(schemalog(project, "up"), 1)
        second = ok(schemalog(project, "up"), 1)
        for proc in (first, second):
            assert "no such table: no_such_table" in proc.stderr
            assert "while this process waited" not in proc.stderr
        assert len(of_kind(assert_journals_identical(project / "app.db"), "step_failed")) == 2

    def test_a_waiter_reports_the_failure_instead_of_trying_again(self, tmp_path: Path):
        """A second `up` started while the first runs waits, then names the failed run."""
        project = self._project(tmp_path)
        ok(schemalog(project, "up", "--to", "2"))
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEMALOG_")}
        env["SLOW_FAIL_S"] = "2"
        argv = [sys.executable, "-m", "schemalog", "--database", "app.db"]
        argv += ["--migrations", "migrations", "--lock-timeout", "30", "up"]
        first = subprocess.Popen(argv, cwd=project, env=env, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while "003" not in (project / "app.db.lock").read_text(errors="replace"):
            assert time.monotonic() < deadline, "the first run never reached 003"
            time.sleep(0.05)
        second = schemalog(project, "up")
        assert first.wait(timeout=60) == 1
        run_id = of_kind(assert_journals_identical(project / "app.db"), "step_failed")[0].run_id
        assert second.returncode == 1, second.stderr
        assert f"run {run_id} failed on 003_fails.py while this process waited" in second.stderr
        assert "no such table: no_such_table" in second.stderr
        assert len(of_kind(assert_journals_identical(project / "app.db"), "step_failed")) == 1


def test_the_process_start_is_exact_to_the_tick():
    """`began_at` is when the process started (not the second before, as /proc/stat's btime
    would give): a process started after a failure never counts as one that arrived behind it."""
    script = "from schemalog.engine.shell.session import PROCESS_STARTED as p; print(p)"
    before = utc_now()
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    after = utc_now()
    started = parse_iso(out)
    assert before - timedelta(milliseconds=20) <= started <= after
