"""Several processes and writers at once: one run at a time, nothing slips in (invariant 5)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from schemalog.engine.shell.run import Run
from tests.engine.conftest import (
    REPO,
    assert_journals_identical,
    make_migrator,
    of_kind,
    user_version,
)


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
