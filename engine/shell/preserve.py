"""A restore that destroys nothing: verify the backup, preserve the live files, copy, check.

The live database files (`app.db` and its `-wal`, `-shm`, `-journal` when present) are first
copied byte for byte into a preservation directory next to the backups; then the backup is
copied into the live database through SQLite's own pager, so a crash in the middle leaves the
old content (SQLite rolls the copy back) and open readers see the restored data. This module
writes no journal events: the engine journals `preservation_dir(...)` before calling
`restore_backup` and records the `RestoreResult` it returns.

Raw descriptors are needed to copy the files byte for byte, and closing any descriptor of a
database file drops every POSIX lock this process holds on it -- including those of
connections the caller keeps open (sqlite.org/howtocorrupt.html, 2.2). So the descriptors of
the files SQLite locks (the database and its `-shm`) are never closed: they are kept for the
life of the process and reused by later restores of the same files.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Callable
from contextlib import ExitStack, suppress
from datetime import UTC, datetime
from pathlib import Path

import attrs

from schemalog.engine.base.errors import RestoreError, UsageError
from schemalog.engine.base.paths import DatabasePaths
from schemalog.engine.shell.backup import INTEGRITY_LEVELS, BackupInfo, sqlite_uri, verified_backup
from schemalog.journal.durable import FILE_MODE, KEPT_DESCRIPTORS, fsync_dir, make_private_dir

__all__ = ["MANIFEST_NAME", "RestoreResult", "preservation_dir", "restore_backup"]

MANIFEST_NAME = "preserved.json"
_PRESERVE_ATTEMPTS = 3
_PAGES_PER_STEP = 4096
_BUSY_TIMEOUT_S = 10.0
_CHUNK = 1 << 20
_STAMP = "%Y%m%dT%H%M%S.%fZ"


@attrs.frozen
class RestoreResult:
    """A finished restore: the backup now in place, and where the replaced files were kept."""

    backup: BackupInfo
    preserved: Path  # directory holding the byte-for-byte copy of the replaced database files
    replaced_file: bool = False  # the database file was unusable and replaced by a new inode


def preservation_dir(backup_dir: Path, when: str) -> Path:
    """The directory `<backup_dir>/pre-restore-<yyyymmddTHHMMSS.ffffff>Z` for the instant `when`.

    Pure: computed before anything is written, so that the engine can journal it first.
    `when` is an ISO-8601 time (naive means UTC). Raises UsageError for anything else.
    """
    try:
        instant = datetime.fromisoformat(when)
    except (TypeError, ValueError) as e:
        msg = f"not an ISO-8601 time: {when!r}"
        raise UsageError(msg) from e
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return Path(backup_dir) / f"pre-restore-{instant.astimezone(UTC).strftime(_STAMP)}"


def restore_backup(
    database: Path,
    info: BackupInfo,
    preserve_to: Path,
    *,
    integrity: str = "quick",
    progress: Callable[[int, int], None] | None = None,
) -> RestoreResult:
    """Replace the content of `database` with the backup `info`, keeping the old files.

    In order: (1) the backup is verified (SHA-256, `integrity` check, version); on failure
    BackupVerificationFailed is raised and nothing is changed. (2) The live database files
    are copied byte for byte (files 0600, directory 0700, all fsynced) into `preserve_to`
    while a connection of ours keeps writers out, followed by a `preserved.json` manifest
    (names, sizes, SHA-256) written last. If `preserve_to` already holds files (a redone
    restore), a fresh sibling `<preserve_to>-N` is used instead, so nothing preserved before
    is overwritten; the result names the directory used. (3) The backup is copied into the
    database through SQLite (`progress(copied_pages, total_pages)` after each step), and
    (4) the database is checked (`integrity`, and `user_version == info.version`).

    Running it again from the same backup gives the same content: recovery redoes an
    interrupted restore this way. Raises UsageError for a bad `integrity`; RestoreError when
    preservation fails (the database was not changed) or anything after it fails (the error
    names the preserved copy).
    """
    database = Path(database)
    if integrity not in INTEGRITY_LEVELS:
        msg = f"unknown integrity {integrity!r} (choose one of: {', '.join(INTEGRITY_LEVELS)})"
        raise UsageError(msg)
    paths = DatabasePaths.for_database(database)
    with verified_backup(info, integrity=integrity) as source, ExitStack() as descriptors:
        # Descriptors of -wal/-journal are closed after our connection (ExitStack exits last).
        files = _LiveFiles(paths, descriptors)
        files.refresh()
        existed = database.exists()
        live = sqlite3.connect(
            sqlite_uri(database, mode="rw" if existed else "rwc"),
            uri=True,
            isolation_level=None,
            timeout=_BUSY_TIMEOUT_S,
        )
        if existed and not _usable(live):
            live.close()
            preserved = _replace_unusable(database, source, files, Path(preserve_to), info)
            check = sqlite3.connect(sqlite_uri(database, mode="rw"), uri=True)
            try:
                _check_live(check, info, integrity)
            except sqlite3.Error as e:
                now = "the backup was put in place but fails its check"
                raise _failed_after(database, info, preserved, str(e), now) from e
            finally:
                check.close()
            return RestoreResult(backup=info, preserved=preserved, replaced_file=True)
        try:
            preserved = _preserve(live, files, database, Path(preserve_to), info)
            now = "SQLite rolled the copy back: the database holds its previous content"
            try:
                _copy_backup(source, live, progress)
                now = "the backup was copied in but the database fails its check"
                _check_live(live, info, integrity)
            except (sqlite3.Error, OSError) as e:
                raise _failed_after(database, info, preserved, str(e), now) from e
        finally:
            live.close()
    return RestoreResult(backup=info, preserved=preserved)


# (device, inode) -> read descriptor, for files SQLite puts POSIX locks on; never closed.
_KEPT_DESCRIPTORS = KEPT_DESCRIPTORS


class _LiveFiles:
    """Raw read descriptors of the live database files.

    Descriptors of the database and its `-shm` are kept for the life of the process (see the
    module docstring); those of `-wal` and `-journal`, which SQLite never locks, are closed
    when `stack` exits.
    """

    def __init__(self, paths: DatabasePaths, stack: ExitStack) -> None:
        self._locked = (paths.database, paths.shm)
        self._paths = (paths.database, paths.wal, paths.rollback_journal, paths.shm)
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
            fd = _KEPT_DESCRIPTORS.get(key, self._fds.get(key))
            if fd is None:
                fd = self._open(path)
            if fd is not None:
                present.append((path, fd))
        return present

    def _open(self, path: Path) -> int | None:
        """A new descriptor of the file now at `path` (None if it vanished), registered."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        key = _inode(os.fstat(fd))
        if path in self._locked:
            # If the file was replaced since `stat`, `key` may already be kept: this second
            # descriptor then stays open untracked (harmless, and never closed for that reason).
            _KEPT_DESCRIPTORS.setdefault(key, fd)
        else:
            self._stack.callback(os.close, fd)
            self._fds[key] = fd
        return fd


def _preserve(
    live: sqlite3.Connection, files: _LiveFiles, database: Path, preserve_to: Path, info: BackupInfo
) -> Path:
    """Copy the live files into a fresh preservation directory while writers are kept out.

    Returns the directory. Raises RestoreError (the database was not changed) on failure.
    """
    target = preserve_to
    for _attempt in range(_PRESERVE_ATTEMPTS):
        created = None
        try:
            target = created = _fresh_dir(preserve_to)
            live.execute("BEGIN IMMEDIATE")  # writers wait; a hot journal is rolled back first
            try:
                version = live.execute("PRAGMA data_version").fetchone()[0]
                _copy_files(files.refresh(), target, database, info)
            finally:
                _end_transaction(live)
            # The copy below needs `live` outside a transaction, so writers can slip in between
            # the ROLLBACK above and the copy's first step. PRAGMA data_version changes when
            # another connection commits: if it did, the preserved files miss that write, so
            # they are preserved again (into a fresh directory; the older one stays).
            # A commit in the microseconds between this check and the copy's first step is not
            # caught: Python's backup API cannot start the copy inside our own transaction.
            if live.execute("PRAGMA data_version").fetchone()[0] == version:
                return target
        except (sqlite3.Error, OSError) as e:
            if created is not None:
                _remove_tree(created)
            msg = f"cannot preserve {database} into {target} before restoring {info.id}: {e}"
            raise RestoreError(
                msg,
                path=str(database),
                state="the database was not changed",
                hint="free space in the backup directory (or wait for the writer), then retry",
            ) from e
    msg = (
        f"{database} kept being written while it was preserved ({_PRESERVE_ATTEMPTS} tries); "
        f"restore of {info.id} not started"
    )
    raise RestoreError(
        msg,
        path=str(database),
        state=f"the database was not changed; the last copy of it is in {target}",
        hint="stop the application writing to the database, then retry the restore",
    )


def _usable(live: sqlite3.Connection) -> bool:
    """Whether SQLite can read the live database at all (its header and schema)."""
    try:
        live.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError:
        return False
    return True


def _replace_unusable(
    database: Path, source: Path, files: _LiveFiles, preserve_to: Path, info: BackupInfo
) -> Path:
    """Put the backup in place of a database SQLite cannot read; returns the preserved dir.

    SQLite cannot copy into a file it cannot read, and no process can be using it, so the
    restore works on files: the unusable files are preserved byte for byte first, then the
    backup is written next to the database, fsynced and renamed over it; its stale
    `-journal`/`-wal`/`-shm` (already preserved) are removed so they are never applied to
    the restored content; the directory is fsynced.
    """
    target = _fresh_dir(preserve_to)
    try:
        _copy_files(files.refresh(), target, database, info)
        tmp = database.with_name(database.name + ".restore-tmp")
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
        try:
            with open(source, "rb") as src:
                while chunk := src.read(_CHUNK):
                    _write_all(out, chunk)
            os.fsync(out)
        finally:
            os.close(out)
        os.replace(tmp, database)
        for suffix in ("-journal", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        fsync_dir(database.parent)
    except OSError as e:
        msg = f"cannot put backup {info.id} in place of the unreadable {database}: {e}"
        raise RestoreError(
            msg,
            path=str(database),
            state=f"the unreadable files are preserved in {target}",
            hint="free disk space, then retry the restore",
        ) from e
    return target


def _end_transaction(live: sqlite3.Connection) -> None:
    """End the (read-only) transaction that kept writers out during preservation."""
    live.execute("ROLLBACK")


def _copy_files(
    present: list[tuple[Path, int]], target: Path, database: Path, info: BackupInfo
) -> None:
    """Copy each (path, descriptor) into `target` byte for byte; manifest last; all fsynced."""
    entries = []
    for path, fd in present:
        tmp = target / f"{path.name}.tmp"
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
        digest = hashlib.sha256()
        size = 0
        try:
            while chunk := os.pread(fd, _CHUNK, size):
                digest.update(chunk)
                _write_all(out, chunk)
                size += len(chunk)
            os.fsync(out)
        finally:
            os.close(out)
        os.rename(tmp, target / path.name)
        entries.append({"name": path.name, "size": size, "sha256": digest.hexdigest()})
    manifest = {
        "database": str(database),
        "restoring_backup": info.id,
        "preserved_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "files": entries,
    }
    tmp = target / f"{MANIFEST_NAME}.tmp"
    out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    try:
        _write_all(out, (json.dumps(manifest, indent=2) + "\n").encode())
        os.fsync(out)
    finally:
        os.close(out)
    os.rename(tmp, target / MANIFEST_NAME)
    fsync_dir(target)
    fsync_dir(target.parent)


def _copy_backup(
    source: Path, live: sqlite3.Connection, progress: Callable[[int, int], None] | None
) -> None:
    """Copy the SQLite file `source` into `live` through SQLite (one write transaction)."""
    backup = sqlite3.connect(sqlite_uri(source, mode="ro", immutable=True), uri=True)
    try:
        step_progress = None
        if progress is not None:

            def step_progress(_status: int, remaining: int, total: int) -> None:
                progress(total - remaining, total)

        backup.backup(live, pages=_PAGES_PER_STEP, progress=step_progress)
    finally:
        backup.close()


def _check_live(live: sqlite3.Connection, info: BackupInfo, integrity: str) -> None:
    """Raise sqlite3.DatabaseError unless the restored database passes its check."""
    if integrity != "off":
        pragma = "quick_check" if integrity == "quick" else "integrity_check"
        rows = [r[0] for r in live.execute(f"PRAGMA {pragma}(10)")]
        if rows != ["ok"]:
            msg = f"PRAGMA {pragma} after the copy: " + "; ".join(map(str, rows))
            raise sqlite3.DatabaseError(msg)
    version = live.execute("PRAGMA user_version").fetchone()[0]
    if version != info.version:
        msg = f"user_version is {version} after the copy, the backup holds {info.version}"
        raise sqlite3.DatabaseError(msg)


def _fresh_dir(preserve_to: Path) -> Path:
    """Create (0700) and return `preserve_to`, or `<preserve_to>-N` if it already holds files."""
    candidate, n = preserve_to, 0
    while candidate.exists() and (not candidate.is_dir() or any(candidate.iterdir())):
        n += 1
        candidate = preserve_to.with_name(f"{preserve_to.name}-{n}")
    make_private_dir(candidate)
    return candidate


def _failed_after(
    database: Path, info: BackupInfo, preserved: Path, reason: str, now: str
) -> RestoreError:
    """The RestoreError for a failure once the live files were preserved."""
    return RestoreError(
        f"restore of backup {info.id} into {database} failed: {reason}",
        path=str(database),
        state=(
            f"{now}; the pre-restore database is preserved, byte for byte, in {preserved} "
            f"(see {MANIFEST_NAME} there)"
        ),
        hint=(
            f"retry `schemalog backup restore {info.id}`, or copy the files in {preserved} "
            "back by hand while nothing uses the database"
        ),
    )


def _write_all(fd: int, data: bytes) -> None:
    """Write all of `data` to `fd`."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _inode(st: os.stat_result) -> tuple[int, int]:
    """The (device, inode) identity of a file."""
    return st.st_dev, st.st_ino


def _remove_tree(directory: Path) -> None:
    """Remove the files of a partial preservation directory, then the directory itself."""
    with suppress(OSError):
        for child in directory.iterdir():
            child.unlink(missing_ok=True)
        directory.rmdir()
