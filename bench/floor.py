"""The floor: the least a correct migration runner for SQLite does, in bare Python.

Usage: python bench/floor.py DATABASE MIGRATIONS_DIR

1. Back up: a plain copy of the database file, then fsync of the copy and its folder
   (nothing else has the database open, so the raw copy is consistent).
2. For each `NNNN_name.sql` above `PRAGMA user_version`, in order: one transaction
   (BEGIN IMMEDIATE), the statements split with `sqlite3.complete_statement`, a bump of
   `PRAGMA user_version`, COMMIT. A file whose first line is `-- foreign_keys: off` (a
   table rebuild) runs with `PRAGMA foreign_keys = OFF`, set before BEGIN, and a
   `PRAGMA foreign_key_check` before COMMIT; the setting is restored afterwards.

No journal, no lock, no verification: every real tool does more, so its time as a ratio
of this one is the price of what it adds. Standard library only; exits 1 on failure.
"""

import os
import shutil
import sqlite3
import sys
from pathlib import Path


def statements(script):
    """Complete statements of `script`, in order (comment-only tails are dropped)."""
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            yield buf
            buf = ""


def backup(db):
    """Copy `db` to `db.bak` and make the copy durable."""
    dest = db + ".bak"
    shutil.copyfile(db, dest)
    fd = os.open(dest, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    dfd = os.open(os.path.dirname(os.path.abspath(dest)), os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def main(db, folder):
    backup(db)
    conn = sqlite3.connect(db, isolation_level=None)
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    files = sorted(Path(folder).glob("*.sql"), key=lambda p: int(p.name.split("_", 1)[0]))
    for path in files:
        version = int(path.name.split("_", 1)[0])
        if version <= current:
            continue
        text = path.read_text(encoding="utf-8")
        fk_off = text.startswith("-- foreign_keys: off")
        if fk_off:
            fk_before = conn.execute("PRAGMA foreign_keys").fetchone()[0]
            conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("BEGIN IMMEDIATE")
        try:
            for stmt in statements(text):
                conn.execute(stmt)
            if fk_off and conn.execute("PRAGMA foreign_key_check").fetchone():
                raise RuntimeError(f"{path.name}: foreign key check failed")
            conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        finally:
            if fk_off:
                conn.execute(f"PRAGMA foreign_keys = {fk_before}")
    conn.close()
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
