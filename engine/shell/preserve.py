"""Preservation: a byte-for-byte copy of a database's live files before anything replaces them.

The live files (`app.db` and its `-wal`, `-journal`, `-shm` when present) are copied into a
fresh directory `<backup_dir>/pre-restore-<UTC stamp>Z` (0700, files 0600, all fsynced) while a
connection of ours holds SQLite's write lock, so no writer can change them meanwhile; a
`preserved.json` manifest (names, sizes, SHA-256, the backup being restored) is written last,
so a directory with a manifest is always complete. Recovery redoes an interrupted restore
only when that manifest corroborates it (invariant 11).

Raw descriptors are needed to copy the files byte for byte, and closing any descriptor of a
database file drops every POSIX lock this process holds on it -- including those of
connections the caller keeps open (sqlite.org/howtocorrupt.html, 2.2). So the descriptors of
the files SQLite locks (the database and its `-shm`) are never closed: they are kept for the
life of the process (`KEPT_DESCRIPTORS`) and reused by later restores of the same files.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from contextlib import ExitStack, closing, suppress
from pathlib import Path
from typing import Any

from schemalog.engine.base.connection import open_database
from schemalog.engine.base.errors import UsageError
from schemalog.engine.base.paths import DatabasePaths
from schemalog.journal.clock import now, parse_iso, stamp
from schemalog.journal.durable import (
    KEPT_DESCRIPTORS,
    fsync_dir,
    make_private_dir,
    open_private_file,
    read_at,
)

__all__ = [
    "MANIFEST_NAME",
    "PREFIX",
    "LiveFiles",
    "copy_files",
    "finished_preservations",
    "fresh_dir",
    "preservation_dir",
    "preserved_row_counts",
    "read_manifest",
    "remove_tree",
    "row_counts",
]

MANIFEST_NAME = "preserved.json"
PREFIX = "pre-restore-"
_CHUNK = 1 << 20


def preservation_dir(backup_dir: Path, when: str) -> Path:
    """The directory `<backup_dir>/pre-restore-<yyyymmddTHHMMSS.ffffff>Z` for the instant `when`.

    Pure: computed before anything is written, so that the engine can journal it first.
    `when` is an ISO-8601 time (naive means UTC). Raises UsageError for anything else.
    """
    try:
        instant = parse_iso(when)
    except (TypeError, ValueError) as e:
        msg = f"not an ISO-8601 time: {when!r}"
        raise UsageError(msg) from e
    return Path(backup_dir) / f"{PREFIX}{stamp(instant)}Z"


def read_manifest(directory: Path) -> dict[str, Any] | None:
    """The manifest of a finished preservation directory, or None if it has none. Read-only."""
    try:
        data = json.loads((Path(directory) / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class LiveFiles:
    """Raw read descriptors of a database's live files.

    Descriptors of the database and its `-shm` are kept for the life of the process (see the
    module docstring); those of `-wal` and `-journal`, which SQLite never locks, are closed
    when `stack` exits.
    """

    def __init__(self, paths: DatabasePaths, stack: ExitStack) -> None:
        self._locked = (paths.database, paths.shm)
        self._paths = paths.sqlite_files
        self._stack = stack
        self._fds: dict[tuple[int, int], int] = {}

    def refresh(self) -> list[tuple[Path, int]]:
        """The files present now, each with a descriptor of its current inode."""
        present = []
        for path in self._paths:
            try:
                key = _inode(path.stat())
            except FileNotFoundError:
                continue
            fd = KEPT_DESCRIPTORS.get(key, self._fds.get(key))
            if fd is None:
                fd = self._open(path)
            if fd is not None:
                present.append((path, fd))
        return present

    def _open(self, path: Path) -> int | None:
        """A new descriptor of the file now at `path` (None if it vanished), registered."""
        try:
            fd = os.open(
                path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
            )
        except FileNotFoundError:
            return None
        key = _inode(os.fstat(fd))
        if path in self._locked:
            # If the file was replaced since `stat`, `key` may already be kept: this second
            # descriptor then stays open untracked (harmless, and never closed for that reason).
            KEPT_DESCRIPTORS.setdefault(key, fd)
        else:
            self._stack.callback(os.close, fd)
            self._fds[key] = fd
        return fd


def copy_files(
    present: list[tuple[Path, int]], target: Path, database: Path, backup_id: str
) -> None:
    """Copy each (path, descriptor) into `target` byte for byte; manifest last; all fsynced."""
    entries = []
    for path, fd in present:
        tmp = target / f"{path.name}.tmp"
        digest = hashlib.sha256()
        size = 0
        with open_private_file(tmp) as out:
            while chunk := read_at(fd, _CHUNK, size):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target / path.name)
        entries.append({"name": path.name, "size": size, "sha256": digest.hexdigest()})
    manifest = {
        "database": str(database),
        "restoring_backup": backup_id,
        "preserved_at": now(),
        "files": entries,
    }
    tmp = target / f"{MANIFEST_NAME}.tmp"
    with open_private_file(tmp) as out:
        out.write((json.dumps(manifest, indent=2) + "\n").encode())
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, target / MANIFEST_NAME)
    fsync_dir(target)
    fsync_dir(target.parent)


def fresh_dir(preserve_to: Path) -> Path:
    """Create (0700) and return `preserve_to`, or `<preserve_to>-N` if it already holds files."""
    candidate, n = preserve_to, 0
    while candidate.exists() and (not candidate.is_dir() or any(candidate.iterdir())):
        n += 1
        candidate = preserve_to.with_name(f"{preserve_to.name}-{n}")
    make_private_dir(candidate)
    return candidate


def finished_preservations(backup_dir: Path) -> list[tuple[Path, str, int]]:
    """(directory, preserved_at, bytes) of each finished `pre-restore-*` directory (one with
    a manifest) in `backup_dir`. Read-only."""
    found = []
    try:
        entries = [e for e in os.scandir(backup_dir) if e.name.startswith(PREFIX) and e.is_dir()]
    except OSError:
        return []
    for entry in entries:
        manifest = read_manifest(Path(entry.path))
        if manifest is None:
            continue  # unfinished: recovery's business, never retention's
        with suppress(OSError):
            size = sum(f.stat().st_size for f in os.scandir(entry.path) if f.is_file())
            found.append((Path(entry.path), str(manifest.get("preserved_at", "")), size))
    return found


def remove_tree(directory: Path) -> None:
    """Remove the files of a partial preservation directory, then the directory itself."""
    with suppress(OSError):
        for child in directory.iterdir():
            child.unlink(missing_ok=True)
        directory.rmdir()


def _inode(st: os.stat_result) -> tuple[int, int]:
    """The (device, inode) identity of a file."""
    return st.st_dev, st.st_ino


def preserved_row_counts(database: Path, preserved: Path) -> dict[str, int]:
    """Rows per application table of the database as preserved (empty if it cannot be read).

    In WAL mode a reader of the live database sees the committed content, the WAL's included
    (the copy in progress holds only the write lock); in rollback-journal mode the copy holds the
    EXCLUSIVE lock, and the preserved file alone holds that content.
    """
    try:
        with closing(open_database(database, mode="ro", timeout=0.1)) as conn:
            return _count(conn)
    except sqlite3.Error:
        pass
    try:
        return row_counts(preserved / database.name)
    except sqlite3.Error:
        return {}


def row_counts(path: Path) -> dict[str, int]:
    """Rows in each application table of the SQLite file `path` (read-only, immutable)."""
    with closing(open_database(path, mode="ro", immutable=True)) as conn:
        return _count(conn)


def _count(conn: sqlite3.Connection) -> dict[str, int]:
    """Rows in each application table `conn` sees."""
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' "
            "ESCAPE '\\' AND name NOT LIKE 'schemalog\\_%' ESCAPE '\\'"
        )
    ]
    quoted = {t: '"' + t.replace('"', '""') + '"' for t in tables}
    return {t: conn.execute(f"SELECT count(*) FROM {q}").fetchone()[0] for t, q in quoted.items()}
