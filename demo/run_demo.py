"""The schemalog demo: upgrade a task tracker's database, then watch a bad migration roll back.

Run from anywhere with `make demo` (or `.venv/bin/python demo/run_demo.py`). Everything it
creates is under demo/out/, which it deletes first. It drives the installed `schemalog`
command exactly as a user would, and exits 0 only if every step behaved as expected.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "demo" / "out"
DATABASE = OUT / "app.db"
MIGRATIONS = ROOT / "migrations"
BAD_MIGRATIONS = OUT / "migrations_with_bad"
SEED = ROOT / "demo" / "seed.sql"

BAD_MIGRATION = '''\
"""Give every user a unique handle: the initial of their surname.

Impact: adds a nullable column and a unique index on users. This migration is wrong on
purpose: two users share a surname initial, so the unique index cannot be built, and
schemalog rolls the whole migration back (the new column included).
"""

up = """
ALTER TABLE users ADD COLUMN handle TEXT;
UPDATE users SET handle = lower(substr(display_name, instr(display_name, ' ') + 1, 1));
CREATE UNIQUE INDEX ux_users_handle ON users (handle);
"""

down = """
DROP INDEX ux_users_handle;
ALTER TABLE users DROP COLUMN handle;
"""

verify = ["SELECT COUNT(*) = 0 FROM users WHERE handle IS NULL"]
'''


def schemalog_command() -> list[str]:
    """The installed console script next to this interpreter, else `python -m schemalog`."""
    script = Path(sys.executable).with_name("schemalog")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "schemalog"]


def header(title: str) -> None:
    """Print a step's header so that a reader can follow."""
    print(f"\n=== {title} " + "=" * max(3, 72 - len(title)), flush=True)


class Demo:
    """Runs the steps and remembers every expectation that did not hold."""

    def __init__(self) -> None:
        self.command = schemalog_command()
        self.problems: list[str] = []

    def run(
        self,
        *args: str,
        migrations: Path = MIGRATIONS,
        expect: int = 0,
        show: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run `schemalog --database ... --migrations ... ARGS`, print it, check its exit code."""
        argv = [
            *self.command,
            "--database",
            os.path.relpath(DATABASE, ROOT),
            "--migrations",
            os.path.relpath(migrations, ROOT),
            *args,
        ]
        shown = " ".join(["schemalog", *argv[len(self.command) :]])
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEMALOG_")}
        env["COLUMNS"] = env.get("COLUMNS", "160")
        if show:
            print(f"$ {shown}", flush=True)
        proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
        if show:
            sys.stdout.write(proc.stdout)
            if proc.stderr:
                sys.stdout.write(
                    "".join(f"  (stderr) {line}\n" for line in proc.stderr.splitlines())
                )
            print(f"  -> exit code {proc.returncode}", flush=True)
        self.expect(proc.returncode == expect, f"`{shown}` exited {proc.returncode}, not {expect}")
        return proc

    def json(self, *args: str, migrations: Path = MIGRATIONS) -> object:
        """The JSON document a `--json` command prints (not shown)."""
        proc = self.run(*args, "--json", migrations=migrations, show=False)
        return json.loads(proc.stdout or "null")

    def expect(self, ok: bool, problem: str) -> None:
        """Record `problem` unless `ok`."""
        if not ok:
            self.problems.append(problem)
            print(f"  !! unexpected: {problem}", flush=True)


def count_rows(table: str) -> int:
    """The number of rows of `table` in the demo database (read-only)."""
    conn = sqlite3.connect(f"{DATABASE.as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


def main() -> int:
    """Run the demo; 0 when everything behaved as expected."""
    demo = Demo()
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)

    header("1. Create demo/out/app.db at version 1")
    demo.run("up", "--to", "1")

    header("2. Load sample data (demo/seed.sql, valid at version 1)")
    conn = sqlite3.connect(DATABASE)
    try:
        conn.executescript(SEED.read_text(encoding="utf-8"))
    finally:
        conn.close()
    users, tasks = count_rows("users"), count_rows("tasks")
    print(f"loaded {users} users and {tasks} tasks")
    demo.expect(users > 0 and tasks > 0, "the seed loaded no rows")

    header("3. Preview the rest of the upgrade (first lines of `up --dry-run`)")
    proc = demo.run("up", "--dry-run", show=False)
    print("$ schemalog ... up --dry-run")
    print("\n".join(proc.stdout.splitlines()[:12]) + "\n  [...]")

    header("4. Upgrade to the newest version")
    demo.run("up")
    head = max(int(p.name.split("_", 1)[0]) for p in MIGRATIONS.iterdir() if p.name[0].isdigit())

    header("5. Status")
    demo.run("status")
    status = demo.json("status")
    assert isinstance(status, dict)
    demo.expect(status["version"] == head, f"version is {status['version']}, not {head}")
    demo.expect(status["pending"] == [], "migrations are still pending")

    header("6. History")
    demo.run("history")

    header("7. A bad migration is rolled back")
    shutil.copytree(MIGRATIONS, BAD_MIGRATIONS)
    bad = BAD_MIGRATIONS / f"{head + 1:03d}_add_unique_user_handles.py"
    bad.write_text(BAD_MIGRATION, encoding="utf-8")
    print(
        f"added {os.path.relpath(bad, ROOT)}: its unique index fails on duplicate surname initials"
    )
    demo.run("up", migrations=BAD_MIGRATIONS, expect=1)

    header("8. The database is still at the head of the real migrations, data intact")
    demo.run("status")
    status = demo.json("status")
    assert isinstance(status, dict)
    demo.expect(status["version"] == head, f"after the failure version is {status['version']}")
    demo.expect(status["user_version"] == head, "user_version moved")
    demo.expect(status["journal"]["consistent"], "the journals disagree")
    demo.expect(count_rows("users") == users, "users were lost")
    conn = sqlite3.connect(f"{DATABASE.as_uri()}?mode=ro", uri=True)
    columns = [r[1] for r in conn.execute("PRAGMA table_info(users)")]
    conn.close()
    demo.expect("handle" not in columns, "the failed migration's column is still there")
    print(f"users columns: {', '.join(columns)} (no `handle`: the whole migration was undone)")

    header("9. History records the failed attempt")
    demo.run("history", migrations=BAD_MIGRATIONS)
    entries = demo.json("history", migrations=BAD_MIGRATIONS)
    assert isinstance(entries, list)
    last = entries[-1] if entries else {}
    demo.expect(
        last.get("version") == head + 1 and last.get("outcome") == "failed",
        f"the last attempt is {last}, not a failed {head + 1}",
    )

    header("10. Verify the database and both journals")
    proc = demo.run("verify", show=False)
    print("$ schemalog ... verify")
    print(proc.stdout.splitlines()[-1] if proc.stdout else proc.stderr)

    header("11. Where everything is")
    journal = DATABASE.with_name(DATABASE.name + ".journal.jsonl")
    backups = DATABASE.with_name(DATABASE.name + ".backups")
    print(f"database:          {os.path.relpath(DATABASE, ROOT)}")
    print(
        f"journal (JSONL):   {os.path.relpath(journal, ROOT)}  ({len(journal.read_text().splitlines())} events)"
    )
    print("journal (table):   schemalog_journal inside the database")
    print(f"backups:           {os.path.relpath(backups, ROOT)}/")
    demo.run("backup", "list")

    print()
    if demo.problems:
        print(f"demo FAILED: {len(demo.problems)} unexpected result(s):")
        for problem in demo.problems:
            print(f"  - {problem}")
        return 1
    print("demo OK: every step behaved as expected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
