"""Running schemalog as a real process: `python -m schemalog` in a project directory.

A project is a directory with `app.db`, its migrations (`migrations/`, many small SQL steps so
that the JSONL spans several 4 KiB pages) and application rows written behind schemalog's
back. Every run has a timeout, no `SCHEMALOG_*` variable but the ones a test passes, and
optionally a umask of its own.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

from tests.engine.conftest import write_migrations

TIMEOUT = 60.0
DB = "app.db"
STEPS = 12


def migrations(count: int = STEPS) -> dict[str, str]:
    """`count` small SQL migrations: a table, then one column at a time."""
    files = {
        "001_create_notes.sql": """
            -- Notes.
            -- migrate:up
            CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
            -- migrate:down
            DROP TABLE notes;
            -- migrate:verify
            SELECT COUNT(*) = 1 FROM sqlite_master WHERE name = 'notes';
            """
    }
    for v in range(2, count + 1):
        files[f"{v:03d}_add_c{v}.sql"] = f"""
            -- Column c{v}.
            -- migrate:up
            ALTER TABLE notes ADD COLUMN c{v} TEXT;
            -- migrate:down
            ALTER TABLE notes DROP COLUMN c{v};
            """
    return files


def make_project(root: Path, *, count: int = STEPS) -> Path:
    """A project directory under `root` with its migrations written; returns it."""
    root.mkdir(parents=True, exist_ok=True)
    write_migrations(root / "migrations", migrations(count))
    return root


def schemalog(
    cwd: Path,
    *args: str,
    env: dict[str, str] | None = None,
    umask: int | None = None,
    database: str = DB,
) -> subprocess.CompletedProcess[str]:
    """Run `python -m schemalog --database app.db --migrations migrations ARGS` in `cwd`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SCHEMALOG_")}
    clean.update(env or {})
    argv = [sys.executable, "-m", "schemalog", "--database", database]
    argv += ["--migrations", "migrations", "--lock-timeout", "5", *args]
    return subprocess.run(
        argv,
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        preexec_fn=(lambda: os.umask(umask)) if umask is not None else None,
    )


def ok(proc: subprocess.CompletedProcess[str], code: int = 0) -> subprocess.CompletedProcess[str]:
    """`proc`, after asserting its exit code (the message shows stderr)."""
    assert proc.returncode == code, f"exit {proc.returncode}: {proc.stderr}{proc.stdout}"
    return proc


def document(proc: subprocess.CompletedProcess[str]) -> Any:
    """The JSON document a `--json` command printed."""
    return json.loads(proc.stdout)


def seed_rows(db: Path, count: int = 200) -> str:
    """Insert `count` application rows into `notes` behind schemalog's back; their digest."""
    with closing(sqlite3.connect(db, isolation_level=None)) as conn:
        conn.executemany(
            "INSERT INTO notes (body) VALUES (?)", [(f"row {i}",) for i in range(count)]
        )
    return rows_digest(db)


def rows_digest(db: Path) -> str:
    """SHA-256 of every (id, body) of `notes`, in id order."""
    with closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)) as conn:
        rows = conn.execute("SELECT id, body FROM notes ORDER BY id").fetchall()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def digests(cwd: Path) -> dict[str, str]:
    """SHA-256 of every file under `cwd` except the migrations, by relative path."""
    return {
        str(p.relative_to(cwd)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(cwd.rglob("*"))
        if p.is_file() and not p.is_symlink() and "migrations" not in p.parts
    }
