"""Several processes and writers at once: one run at a time, nothing slips in (invariant 5)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from schemalog.engine.migrator import Migrator
from tests.engine.conftest import (
    REPO,
    assert_journals_identical,
    make_migrator,
    of_kind,
    rows,
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
    def test_a_commit_after_the_backup_forces_a_new_backup(
        self, tmp_path: Path, basic_dir: Path, monkeypatch
    ):
        """A row committed by another connection after the backup is in the backup actually used."""
        m = make_migrator(tmp_path, basic_dir)
        m.upgrade(target=1)
        db = tmp_path / "app.db"
        real = Migrator._take_backup_deferred
        calls = {"n": 0}

        def backup_then_write(self, s):
            record, wait = real(self, s)
            calls["n"] += 1
            if calls["n"] == 1:  # an application commits right after the first backup
                with sqlite3.connect(db) as app:
                    app.execute("INSERT INTO items (name) VALUES ('slipped in')")
                app.close()
            return record, wait

        monkeypatch.setattr(Migrator, "_take_backup_deferred", backup_then_write)
        report = m.upgrade()
        assert calls["n"] == 2
        events = assert_journals_identical(db)
        run_backups = [e for e in of_kind(events, "backup_taken") if e.run_id == report.run_id]
        assert len(run_backups) == 2
        # The backup the run relies on holds the row written between backup and run.
        used = Path(run_backups[-1].data["path"])
        with sqlite3.connect(used) as copy:
            names = [r[0] for r in copy.execute("SELECT name FROM items ORDER BY id")]
        copy.close()
        assert "slipped in" in names
        assert ("slipped in",) in [(r[1],) for r in rows(db, "items")]
