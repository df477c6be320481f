"""Preflight: before a writing command writes anything, every file it will write is writable.

A read-only database file or directory, an unwritable JSONL or backup directory would
otherwise fail halfway (after the lock, a journal append, a backup): they are refused first,
with exit 2 and the path to fix. The operating system decides (`os.access`), so a superuser
or an ACL may write where the permission bits alone say no.
"""

from __future__ import annotations

import os
from pathlib import Path

from schemalog.engine.base.errors import Unwritable
from schemalog.engine.base.paths import DatabasePaths
from schemalog.journal.durable import refuse_symlink

__all__ = ["check_writable"]


def check_writable(paths: DatabasePaths) -> None:
    """Raise Unwritable naming the first file or directory a writing command cannot write.

    Checks the database (or, when it does not exist yet, its directory), the directory (SQLite
    creates its `-journal`/`-wal` there), the JSONL, the lock file and the backup directory
    (or the nearest existing directory it would be created in). Raises PlantedSymlink for a
    symbolic link at the JSONL path. Reads only.
    """
    db = paths.database
    directory = db.parent
    if db.exists() and not os.access(db, os.W_OK):
        raise _refuse(db, "the database file is read-only", f"make it writable (chmod u+w {db})")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise _refuse(
            directory,
            "the database's directory is not writable (SQLite writes its journal there)",
            f"make {directory} writable",
        )
    refuse_symlink(paths.jsonl)
    for path, what in ((paths.jsonl, "the JSONL journal"), (paths.lock, "the lock file")):
        if path.exists() and not os.access(path, os.W_OK):
            raise _refuse(path, f"{what} is read-only", f"make it writable (chmod u+w {path})")
    backups = _nearest_existing(paths.backup_dir)
    if not backups.is_dir() or not os.access(backups, os.W_OK | os.X_OK):
        raise _refuse(
            paths.backup_dir,
            "the backup directory cannot be written",
            "make it writable or choose another with --backup-dir",
        )


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def _refuse(path: Path, why: str, fix: str) -> Unwritable:
    return Unwritable(f"{path}: {why}", path=str(path), hint=fix)
