"""Every file schemalog creates is 0600 and every directory 0700, whatever the umask; and
SQLite's own `-journal`, `-wal` and `-shm` get the database file's mode. Real
`python -m schemalog` processes, run with umask 000 and 077."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.engine.procs import DB, TIMEOUT, document, make_project, ok, schemalog, seed_rows

JSONL = DB + ".journal.jsonl"


def modes(root: Path) -> dict[str, int]:
    """The permission bits of everything under `root` but the migrations, by relative path."""
    return {
        str(p.relative_to(root)): stat.S_IMODE(p.lstat().st_mode)
        for p in sorted(root.rglob("*"))
        if "migrations" not in p.relative_to(root).parts
    }


def wrong(root: Path) -> dict[str, str]:
    """Every file not 0600 and every directory not 0700 under `root` (migrations aside)."""
    found = {}
    for name, mode in modes(root).items():
        want = 0o700 if (root / name).is_dir() else 0o600
        if mode != want:
            found[name] = oct(mode)
    return found


@pytest.mark.parametrize("umask", [0o000, 0o077, 0o022], ids=["000", "077", "022"])
def test_every_file_and_directory_schemalog_creates_is_private(tmp_path: Path, umask: int):
    """up, backups, a torn and a damaged JSONL repaired, a restore: all 0600 / 0700."""
    root = make_project(tmp_path / "p", count=3)

    def run(*args: str, code: int = 0):
        return ok(schemalog(root, *args, umask=umask), code)

    run("up", "--to", "1")
    seed_rows(root / DB, 50)
    run("up")
    run("backup", "create")
    jsonl = root / JSONL
    raw = jsonl.read_bytes()
    jsonl.write_bytes(raw[:200] + bytes(300) + raw[500:] + b'{"seq":')  # zero page + torn
    run("recover")
    backups = document(run("backup", "list", "--json"))
    run("backup", "restore", backups[0]["id"])
    with jsonl.open("ab") as fh:
        fh.write(b'{"seq":')  # a torn last line alone: cut and kept as .torn-*
    run("recover")
    made = modes(root)
    assert any(".torn-" in name for name in made)
    assert DB in made and JSONL in made and DB + ".lock" in made
    assert any(".damaged-" in name for name in made)
    assert any(name.startswith(DB + ".backups/pre-restore-") for name in made)
    assert any(name.endswith("preserved.json") for name in made)
    assert sum(name.endswith(".sqlite") for name in made) >= 3
    assert wrong(root) == {}


SQLITE_FILES = textwrap.dedent(
    """
    import os, sqlite3, stat, sys
    db = sys.argv[1]
    def mode(p):
        return oct(stat.S_IMODE(os.stat(p).st_mode))
    c = sqlite3.connect(db, isolation_level=None)
    c.execute("BEGIN IMMEDIATE")
    c.execute("CREATE TABLE IF NOT EXISTS app_writes (x)")
    c.execute("INSERT INTO app_writes VALUES (1)")
    journal = mode(db + "-journal")
    c.execute("COMMIT")
    c.execute("PRAGMA journal_mode = WAL")
    c.execute("INSERT INTO app_writes VALUES (2)")
    print(journal, mode(db + "-wal"), mode(db + "-shm"))
    c.execute("PRAGMA journal_mode = DELETE")
    c.close()
    """
)


@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_sqlite_gives_its_own_files_the_database_file_s_mode(tmp_path: Path, umask: int):
    """SQLite's -journal, -wal and -shm (SQLite's files, not schemalog's) are created with the
    mode of the 0600 database file schemalog created, whatever the umask."""
    root = make_project(tmp_path / "p", count=1)
    ok(schemalog(root, "up", umask=umask))
    proc = subprocess.run(
        [sys.executable, "-c", SQLITE_FILES, str(root / DB)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        preexec_fn=lambda: os.umask(umask),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0o600", "0o600", "0o600"]
