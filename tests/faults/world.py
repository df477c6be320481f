"""The database every fault case runs on, and the one way the campaign runs schemalog.

A world is a directory holding `app.db` (seeded application rows), its journals, its lock
file, its backups and the migrations. It is built once per session as a template and copied
for every case, so cases are independent and can run in parallel. schemalog only ever runs
as a real subprocess, `python -m schemalog`, from the case's directory with no `SCHEMALOG_*`
variable and no config file; its outcome is read from the files directly.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path

import attrs

DB = "app.db"
JSONL = DB + ".journal.jsonl"
LOCK = DB + ".lock"
BACKUPS = DB + ".backups"
SEEDED_ROWS = 300
HEAD = 5
TIMEOUT = 90.0

# Five migrations covering every way a step runs: SQL, a Python function, a table rebuild
# with foreign keys off (a transaction of its own) and VACUUM (non-transactional).
MIGRATIONS: dict[str, str] = {
    "001_create_notes.sql": """
        -- Notes (seeded with SEEDED_ROWS rows once this is applied).
        -- migrate:up
        CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
        -- migrate:down
        DROP TABLE notes;
        """,
    "002_create_labels.sql": """
        -- One label per note.
        -- migrate:up
        CREATE TABLE labels (
            id INTEGER PRIMARY KEY,
            note_id INTEGER NOT NULL REFERENCES notes (id) ON DELETE CASCADE,
            name TEXT NOT NULL
        );
        INSERT INTO labels (note_id, name) SELECT id, 'seeded' FROM notes;
        CREATE INDEX idx_labels_name ON labels (name);
        -- migrate:down
        DROP TABLE labels;
        """,
    "003_add_note_title.py": '''
        """A title per note, filled from its id (a Python step)."""


        def up(conn):
            conn.execute("ALTER TABLE notes ADD COLUMN title TEXT")
            conn.execute("UPDATE notes SET title = 'note ' || id")


        down = "ALTER TABLE notes DROP COLUMN title;"
        verify = ["SELECT COUNT(*) = 0 FROM notes WHERE title IS NULL"]
        ''',
    "004_rebuild_notes.py": '''
        """Rebuild notes with a CHECK on body (foreign keys off: its own transaction)."""

        foreign_keys = False

        up = """
        CREATE TABLE new_notes (
            id INTEGER PRIMARY KEY, body TEXT NOT NULL CHECK (length(body) > 0), title TEXT
        );
        INSERT INTO new_notes (id, body, title) SELECT id, body, title FROM notes;
        DROP TABLE notes;
        ALTER TABLE new_notes RENAME TO notes;
        """
        down = """
        CREATE TABLE old_notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL, title TEXT);
        INSERT INTO old_notes (id, body, title) SELECT id, body, title FROM notes;
        DROP TABLE notes;
        ALTER TABLE old_notes RENAME TO notes;
        """
        ''',
    "005_compact.py": '''
        """Compact the file (VACUUM cannot run in a transaction)."""

        transactional = False
        up = "VACUUM;"
        down = "VACUUM;"
        ''',
}


@attrs.frozen
class Run:
    """One finished schemalog process."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def line(self) -> str:
        """The command as a user would type it (schemalog's own part)."""
        return "schemalog " + " ".join(self.argv)

    def summary(self) -> str:
        """`schemalog ARGS -> rc N: last stderr line` (for reports)."""
        last = self.stderr.strip().splitlines()[-1] if self.stderr.strip() else ""
        return f"{self.line} -> rc {self.returncode}" + (f": {last}" if last else "")


def base_argv() -> list[str]:
    """The global options every run gets (relative paths: the case directory is the cwd)."""
    return ["--database", DB, "--migrations", "migrations", "--lock-timeout", "2"]


def python_argv(args: Sequence[str]) -> list[str]:
    """The full argv of `python -m schemalog <globals> ARGS`."""
    return [sys.executable, "-m", "schemalog", *base_argv(), *args]


def clean_env() -> dict[str, str]:
    """This environment without any SCHEMALOG_* variable, and without coverage's: a measured
    process writes its data file at exit, and an injected fault must meet schemalog's own
    system calls, not coverage's."""
    return {
        k: v for k, v in os.environ.items() if not k.startswith(("SCHEMALOG_", "COVERAGE_PROCESS_"))
    }


def run_cli(
    root: Path, args: Sequence[str], *, prefix: Sequence[str] = (), timeout: float = TIMEOUT
) -> Run:
    """Run `schemalog ARGS` in `root` (behind `prefix`, e.g. strace), to its end or timeout.

    A timeout is reported as return code -9 with a note on stderr; it never raises.
    """
    argv = [*prefix, *python_argv(args)]
    start = time.monotonic()
    try:
        proc = subprocess.run(
            argv,
            cwd=root,
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        code = -9
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else ""
        err = (exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else "") + (
            f"\n[campaign] timed out after {timeout:.0f} s\n"
        )
    return Run(tuple(args), code, out, err, time.monotonic() - start)


# --- building worlds ---------------------------------------------------------------------


def write_migrations(directory: Path) -> None:
    """Write MIGRATIONS into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in MIGRATIONS.items():
        (directory / name).write_text(textwrap.dedent(text).strip() + "\n", encoding="utf-8")


def seed(db: Path) -> None:
    """Insert SEEDED_ROWS notes behind schemalog's back, as the application would."""
    with closing(sqlite3.connect(db, isolation_level=None)) as conn:
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            "INSERT INTO notes (id, body) "
            "SELECT i, 'note body ' || i || ' ' || printf('%040d', i * 7919) FROM n",
            (SEEDED_ROWS,),
        )


def must(run: Run) -> Run:
    """`run`, or an AssertionError naming it when it failed."""
    assert run.returncode == 0, f"fixture step failed: {run.summary()}\n{run.stderr}"
    return run


@attrs.frozen
class Template:
    """The prepared worlds every case copies: one per operation's starting state."""

    at_head: Path  # version HEAD, seeded rows, backups from its runs
    at_one: Path  # version 1, seeded rows, one backup; the starting point of `up`
    restore_id: str  # a backup of version 1 (in `at_head`), for `backup restore`


def build_template(root: Path) -> Template:
    """Build the template worlds under `root` with real schemalog runs."""
    at_one = root / "at_one"
    at_one.mkdir(parents=True)
    write_migrations(at_one / "migrations")
    must(run_cli(at_one, ["up", "--to", "1"]))
    seed(at_one / DB)
    at_head = root / "at_head"
    shutil.copytree(at_one, at_head, symlinks=True)
    must(run_cli(at_head, ["backup", "create"]))
    listed = json.loads(must(run_cli(at_head, ["backup", "list", "--json"])).stdout)
    restore_id = next(b["id"] for b in reversed(listed) if b["version"] == 1)
    must(run_cli(at_head, ["up"]))
    return Template(at_head=at_head, at_one=at_one, restore_id=restore_id)


def copy_world(source: Path, target: Path) -> Path:
    """Copy a template world to `target` (created); return `target`."""
    shutil.copytree(source, target, symlinks=True)
    return target


# --- operations ----------------------------------------------------------------------------


@attrs.frozen
class Operation:
    """A command the campaign faults, and the world it starts from."""

    name: str  # up | down | backup-create | backup-restore
    start: str  # at_one | at_head

    def args(self, template: Template) -> list[str]:
        """The command's arguments."""
        return {
            "up": ["up"],
            "down": ["down", "--to", "0"],
            "backup-create": ["backup", "create"],
            "backup-restore": ["backup", "restore", template.restore_id],
        }[self.name]

    def source(self, template: Template) -> Path:
        """The template world the operation starts from."""
        return getattr(template, self.start)


OPERATIONS: tuple[Operation, ...] = (
    Operation("up", "at_one"),
    Operation("down", "at_head"),
    Operation("backup-create", "at_head"),
    Operation("backup-restore", "at_head"),
)


def operation(name: str) -> Operation:
    """The operation called `name`."""
    return next(op for op in OPERATIONS if op.name == name)


# --- reading the outcome from the files ----------------------------------------------------


def notes_digest(db: Path) -> tuple[int, str] | None:
    """(count, SHA-256 of id|body of every note) or None when there is no notes table."""
    # Read-write, as an application opens it: a read-only connection cannot roll back a hot
    # journal and would fail on a healthy database (DESIGN.md, pitfalls).
    try:
        with closing(sqlite3.connect(db, isolation_level=None)) as conn:
            rows = conn.execute("SELECT id, body FROM notes ORDER BY id").fetchall()
    except sqlite3.Error:
        return None
    digest = hashlib.sha256()
    for row_id, body in rows:
        digest.update(f"{row_id}|{body}\n".encode())
    return len(rows), digest.hexdigest()
