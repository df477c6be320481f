"""How schemalog opens SQLite (engine/base/connection.py): durable commits on writable
connections, checked on the pragma and on the system calls SQLite makes."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from schemalog.engine.base.connection import open_database

STRACE = shutil.which("strace")


def make_database(path: Path, rows: int = 200) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE t (x BLOB)")
        conn.executemany("INSERT INTO t VALUES (randomblob(1000))", [()] * rows)
        conn.commit()


class TestSynchronous:
    @pytest.mark.parametrize("mode", ["rw", "rwc"])
    def test_writable_connections_commit_with_extra(self, tmp_path: Path, mode):
        db = tmp_path / "app.db"
        make_database(db, rows=1)
        with closing(open_database(db, mode=mode)) as conn:
            assert conn.execute("PRAGMA synchronous").fetchone()[0] == 3  # EXTRA

    def test_read_only_connections_are_left_alone(self, tmp_path: Path):
        db = tmp_path / "app.db"
        make_database(db, rows=1)
        with closing(sqlite3.connect(db)) as plain:
            default = plain.execute("PRAGMA synchronous").fetchone()[0]
        for conn in (open_database(db, mode="ro"), open_database(db, mode="ro", immutable=True)):
            with closing(conn):
                assert conn.execute("PRAGMA synchronous").fetchone()[0] == default


SHRINK = """
import sys
from pathlib import Path
from schemalog.engine.base.connection import open_database
conn = open_database(Path(sys.argv[1]), mode="rw")
conn.execute("BEGIN IMMEDIATE")
conn.execute("DELETE FROM t")
conn.execute("COMMIT")
conn.execute("VACUUM")  # shrinks the file: SQLite truncates it after deleting its journal
conn.close()
"""


@pytest.mark.skipif(STRACE is None, reason="strace is not installed")
def test_the_journal_deletion_is_durable_before_the_truncation(tmp_path: Path):
    """Between deleting the rollback journal (the commit) and truncating the database, SQLite
    syncs the directory: a power cut can no longer keep the truncation and bring the journal
    back (whose rollback would restore the old size without the truncated pages)."""
    db = tmp_path / "app.db"
    make_database(db)
    trace = tmp_path / "trace"
    argv = [STRACE, "-f", "-qq", "-y", "-o", str(trace)]
    argv += ["-e", "trace=unlink,unlinkat,fsync,fdatasync,ftruncate"]
    subprocess.run([*argv, sys.executable, "-c", SHRINK, str(db)], check=True, timeout=60)
    calls = [line.split(None, 1)[1] for line in trace.read_text().splitlines() if " " in line]
    unlinks = [i for i, c in enumerate(calls) if "app.db-journal" in c and "unlink" in c]
    truncates = [i for i, c in enumerate(calls) if c.startswith("ftruncate(") and "app.db>" in c]
    assert unlinks and truncates, calls
    last_truncate = truncates[-1]
    unlink = max(i for i in unlinks if i < last_truncate)
    between = calls[unlink + 1 : last_truncate]
    assert any(c.startswith(("fsync(", "fdatasync(")) and f"<{tmp_path}>" in c for c in between), (
        calls
    )
