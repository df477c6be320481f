"""Taking full, verified backups of a database.

In rollback-journal mode the backup is a byte-for-byte copy of the database file
(`engine.shell.copy`, hashed in the same pass) taken while a read transaction keeps writers
out; WAL databases and compressed backups go through SQLite's backup API. The copy is
written as `<id>.sqlite.tmp`, fsynced, checked, renamed and followed by an fsync of the
directory: a file with a final name is always complete (names and checks:
`engine.shell.backup_file`). This module writes no journal events; it returns the
`BackupRecord` the caller records, its `path` relative to the backup directory.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import threading
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime
from pathlib import Path

from schemalog.engine.base.connection import (
    Functions,
    IntegrityLevel,
    open_database,
    sqlite_reason,
)
from schemalog.engine.base.errors import BackupError, BackupUnusable, BackupVerificationFailed
from schemalog.engine.base.settings import COMPRESSIONS, INTEGRITIES, Compression, check_choice
from schemalog.engine.shell.backup_file import (
    SUFFIXES,
    backup_id,
    check_connection,
    hash_file,
    open_for_check,
)
from schemalog.engine.shell.copy import copy_database, gzip_verified, raw_copy
from schemalog.journal.clock import iso, utc_now
from schemalog.journal.durable import (
    create_private_file,
    fsync_dir,
    fsync_file,
    make_private_dir,
    os_reason,
)
from schemalog.journal.replay import BackupRecord

__all__ = ["Progress", "take_backup", "take_backup_deferred"]

#: Called with (copied pages, total pages) while a copy runs.
Progress = Callable[[int, int], None]

#: POSIX renames a file SQLite has open; Windows refuses (no FILE_SHARE_DELETE), so there the
#: check of a deferred backup runs before its rename, as for `take_backup`.
_RENAME_WHILE_OPEN = os.name != "nt"
_CHUNK = 1 << 20
_BUSY_TIMEOUT_S = 10.0
_GZIP_LEVEL = 1


def take_backup(
    database: Path,
    backup_dir: Path,
    *,
    run_id: str = "",
    compression: Compression = "none",
    integrity: IntegrityLevel = "quick",
    functions: Functions | None = None,
    progress: Progress | None = None,
    pages_per_step: int = 16384,
) -> BackupRecord:
    """Copy `database` into a new, checked backup file in `backup_dir` and describe it.

    The copy is one consistent snapshot of the committed database (a read transaction is held
    on a connection of its own for the whole copy: in WAL mode writers go on, in rollback mode
    they wait for it, up to their busy timeout; a caller holding the write lock on another
    connection keeps every writer out). The database's content is never modified (SQLite
    itself may roll back a crashed writer's hot journal, or checkpoint the WAL when ours is
    the last connection to close). `progress(copied_pages, total_pages)` is called after
    every step of `pages_per_step` pages (<= 0: one step). `run_id` labels error messages and
    the record. `integrity` "quick"/"full" checks the copy ("off": none; then `verified` is
    False), on a connection with the application's SQL `functions`.

    Raises BackupUnusable (exit 2) when `backup_dir` cannot be created or written;
    BackupError when the database is missing or locked, or the copy fails (disk full, I/O
    error) -- no partial file is left behind; BackupVerificationFailed when the copy fails
    its check (it is deleted).
    """
    job = _Job(database, backup_dir, run_id, compression, integrity, functions)
    result = _take_cleanly(job, progress, pages_per_step, False)
    assert isinstance(result, BackupRecord)
    return result


def take_backup_deferred(
    database: Path,
    backup_dir: Path,
    *,
    run_id: str = "",
    integrity: IntegrityLevel = "quick",
    functions: Functions | None = None,
    progress: Progress | None = None,
    pages_per_step: int = 16384,
) -> tuple[BackupRecord, Callable[[], None]]:
    """Like `take_backup` (no compression), but the integrity check of the copy runs in the
    background: returns (record with `verified` False, `wait`). `wait()` blocks until the check
    is done and raises BackupVerificationFailed, having deleted the file, if it failed.

    The executor calls `wait()` before its first COMMIT, so a run that would rely on a bad
    backup is rolled back whole while the check overlaps the run's first steps.
    """
    job = _Job(database, backup_dir, run_id, "none", integrity, functions)
    result = _take_cleanly(job, progress, pages_per_step, True)
    if isinstance(result, BackupRecord):  # integrity "off": nothing to wait for
        return result, lambda: None
    return result


def _take_cleanly(
    job: _Job, progress: Progress | None, pages_per_step: int, defer: bool
) -> BackupRecord | tuple[BackupRecord, Callable[[], None]]:
    """`_take` after the input checks; on any failure every file it created is removed and
    OS/SQLite errors become BackupError naming the reason (see `take_backup`)."""
    database, backup_dir, label = job.database, job.backup_dir, job.label
    check_choice("compression", job.compression, COMPRESSIONS)
    check_choice("integrity", job.integrity, INTEGRITIES)
    if not database.is_file():
        msg = f"{label} failed: no database file at {database}"
        raise BackupError(msg, path=str(database), hint="check --database")
    _ensure_backup_dir(backup_dir)
    written: list[Path] = []  # every file this call created; all removed unless it succeeds
    try:
        return _take(job, progress, pages_per_step, written, defer)
    except BaseException as e:
        _remove_all(written)
        if isinstance(e, OSError):
            raise _copy_failed(label, database, backup_dir, os_reason(e)) from e
        if isinstance(e, sqlite3.Error):
            raise _copy_failed(label, database, backup_dir, sqlite_reason(e)) from e
        raise


class _Job:
    """What one backup copies where, and how it is checked."""

    def __init__(
        self,
        database: Path,
        backup_dir: Path,
        run_id: str,
        compression: Compression,
        integrity: IntegrityLevel,
        functions: Functions | None,
    ) -> None:
        self.database = Path(database)
        self.backup_dir = Path(backup_dir)
        self.run_id = run_id
        self.compression = compression
        self.integrity = integrity
        self.functions = functions
        self.label = f"backup of {self.database}" + (f" for run {run_id}" if run_id else "")

    def record(
        self,
        backup: str,
        final: Path,
        version: int,
        when: datetime,
        size: int,
        sha256: str,
        verified: bool,
    ) -> BackupRecord:
        """The journal's record of the finished backup (path relative to the backup dir)."""
        return BackupRecord(
            id=backup,
            path=final.name,
            version=version,
            created_at=iso(when),
            size=size,
            sha256=sha256,
            verified=verified,
            compression=self.compression,
            run_id=self.run_id,
        )


def _take(
    job: _Job,
    progress: Progress | None,
    pages_per_step: int,
    written: list[Path],
    defer: bool = False,
) -> BackupRecord | tuple[BackupRecord, Callable[[], None]]:
    """Copy, check and publish the backup; every file it creates is listed in `written`.

    With `defer` (plain copies only), the file is published unchecked and the check runs
    in a background thread; returns (record, wait) where `wait()` raises
    BackupVerificationFailed (after deleting the file) if the copy fails its check.
    """
    deferring = defer and job.compression == "none" and job.integrity != "off"
    deferring = deferring and _RENAME_WHILE_OPEN
    copy = _Copy(utc_now())
    try:
        source = open_database(job.database, mode="rw", timeout=_BUSY_TIMEOUT_S)
        try:
            # The read transaction pins one snapshot for the whole copy and its hash: the
            # backup never restarts because of a concurrent commit, and `version` is the
            # copy's version.
            source.execute("BEGIN")
            copy.version = source.execute("PRAGMA user_version").fetchone()[0]
            copy.name = backup_id(job.backup_dir, copy.version, copy.when)
            copy.tmp = job.backup_dir / f"{copy.name}.sqlite.tmp"
            copy.final = job.backup_dir / f"{copy.name}{SUFFIXES[job.compression]}"
            _create_tmp(copy.tmp, job.backup_dir, written)
            if job.compression == "none" and _stable_single_file(source, job.database):
                with raw_copy(job.database, copy.tmp, progress, pages_per_step) as (size, digest):
                    # The copy is complete: its check and its flush overlap the rest of the hash.
                    copy.check = _Check.start(job, copy.tmp, copy.final if deferring else copy.tmp)
                    fsync_file(copy.tmp)
                    copy.hashed = size, digest()
            else:
                copy_database(source, copy.tmp, pages_per_step, progress)
            source.execute("ROLLBACK")
        finally:
            source.close()
        if deferring:
            return _publish_unchecked(job, copy, written)
        return _publish_checked(job, copy, written)
    except BaseException:
        if copy.check is not None:
            copy.check.join()  # its connection is closed before the files are removed
        raise


class _Copy:
    """The copy `_take` is making: its names, its version, its hash and its check."""

    def __init__(self, when: datetime) -> None:
        self.when = when
        self.version = 0
        self.name = ""
        self.tmp = self.final = Path()
        self.hashed: tuple[int, str] | None = None  # (size, sha256) once known
        self.check: _Check | None = None

    def record(self, job: _Job, verified: bool) -> BackupRecord:
        """The journal's record of the published copy."""
        assert self.hashed is not None
        size, sha256 = self.hashed
        return job.record(self.name, self.final, self.version, self.when, size, sha256, verified)


def _publish_checked(job: _Job, copy: _Copy, written: list[Path]) -> BackupRecord:
    """Check, flush, hash (or compress) the copy, then publish it under its final name."""
    gz_tmp = job.backup_dir / f"{copy.name}.sqlite.gz.tmp"
    if copy.hashed is None:
        # The integrity check reads the copy in a second thread while this one flushes it to
        # disk and hashes (or compresses) it: SQLite, fsync, hashlib and zlib release the GIL.
        copy.check = _Check.start(job, copy.tmp, copy.tmp)
        fsync_file(copy.tmp)
        if job.compression == "gzip":
            copy.hashed = gzip_verified(copy.tmp, gz_tmp, written, job.label)
        else:
            copy.hashed = hash_file(copy.tmp)
    if copy.check is not None:
        copy.check.wait()  # raises BackupVerificationFailed
    if job.compression == "gzip":
        os.replace(gz_tmp, copy.final)
        written.append(copy.final)
        copy.tmp.unlink()
    else:
        os.replace(copy.tmp, copy.final)
        written.append(copy.final)
    fsync_dir(job.backup_dir)
    return copy.record(job, job.integrity != "off")


def _publish_unchecked(
    job: _Job, copy: _Copy, written: list[Path]
) -> tuple[BackupRecord, Callable[[], None]]:
    """Flush and publish the copy now; its check goes on in the background (see `_take`).

    The check starts before the fsync, on a connection opened under the temporary name
    (an open file survives the rename), so it overlaps the flush as well as the run.
    """
    if copy.hashed is None:
        copy.check = _Check.start(job, copy.tmp, copy.final)
        fsync_file(copy.tmp)
        copy.hashed = hash_file(copy.tmp)
    os.replace(copy.tmp, copy.final)
    written.append(copy.final)
    fsync_dir(job.backup_dir)
    started, final = copy.check, copy.final

    def wait() -> None:
        if started is None:
            return
        try:
            started.wait()
        except BaseException:
            with suppress(FileNotFoundError):
                final.unlink()
            raise

    return copy.record(job, False), wait


class _Check:
    """The integrity check of a new copy, in a thread of its own.

    Its connection is opened by the caller, under the copy's temporary name (the open file
    survives the rename). It reads through a memory map: the copy was just written, so its
    pages are in memory, and a mapped read costs about half of SQLite's page-by-page reads
    (an I/O error reading a mapped page would end the process like kill -9, after which the
    next command reconciles; backups being restored are checked with plain reads).
    """

    def __init__(self, thread: threading.Thread | None, outcome: list[BaseException]) -> None:
        self._thread = thread
        self._outcome = outcome

    @classmethod
    def start(cls, job: _Job, tmp: Path, named: Path) -> _Check | None:
        """Start checking the copy `tmp` (errors name `named`); None with integrity "off"."""
        if job.integrity == "off":
            return None
        label = f"the new {job.label}"
        outcome: list[BaseException] = []
        try:
            conn = open_for_check(tmp, job.functions, mapped=True)
        except sqlite3.DatabaseError as e:
            msg = f"{label} is not a readable SQLite database ({e})"
            outcome.append(BackupVerificationFailed(msg, path=str(named)))
            return cls(None, outcome)

        def check() -> None:
            try:
                check_connection(conn, named, job.integrity, label)
            except BaseException as e:  # handed to wait()
                outcome.append(e)

        thread = threading.Thread(target=check, name="schemalog-backup-check", daemon=True)
        thread.start()
        return cls(thread, outcome)

    def join(self) -> None:
        """Wait for the check to end, whatever its outcome."""
        if self._thread is not None:
            self._thread.join()

    def wait(self) -> None:
        """Wait for the check; raise what it found (BackupVerificationFailed)."""
        self.join()
        if self._outcome:
            raise self._outcome[0]


def _stable_single_file(source: sqlite3.Connection, database: Path) -> bool:
    """Whether the database file alone holds the committed state and cannot change now.

    True in rollback-journal modes while `source` holds its read transaction (SHARED lock):
    no writer can commit until it ends, and no hot journal is pending (SQLite rolled it back
    when `source` started reading). In WAL mode committed pages may live in `-wal`: False.
    """
    mode = source.execute("PRAGMA journal_mode").fetchone()[0]
    return str(mode).lower() != "wal" and not Path(f"{database}-wal").exists()


def _ensure_backup_dir(backup_dir: Path) -> None:
    """Create `backup_dir` (0700) if missing; raises BackupUnusable if that fails or it is read-only."""
    existed = backup_dir.is_dir()
    try:
        make_private_dir(backup_dir)
        if not existed:
            fsync_dir(backup_dir.parent)  # the new directory's entry is durable too
    except OSError as e:
        raise _unusable(backup_dir, f"cannot be created ({e.strerror})") from e
    if not os.access(backup_dir, os.W_OK | os.X_OK):
        raise _unusable(backup_dir, "is not writable")


def _create_tmp(path: Path, backup_dir: Path, written: list[Path]) -> None:
    """Create the 0600 temporary file `path`; a directory refusing it is BackupUnusable."""
    try:
        create_private_file(path)
    except (PermissionError, NotADirectoryError) as e:
        raise _unusable(backup_dir, f"refuses new files ({e.strerror})") from e
    except OSError as e:
        if e.errno == errno.EROFS:
            raise _unusable(backup_dir, "is on a read-only file system") from e
        raise
    written.append(path)


def _unusable(backup_dir: Path, why: str) -> BackupUnusable:
    """The BackupUnusable error for `backup_dir`."""
    return BackupUnusable(
        f"backup directory {backup_dir} {why}",
        path=str(backup_dir),
        state="no backup was taken; the database was not changed",
        hint="choose a writable directory with --backup-dir",
    )


def _copy_failed(label: str, database: Path, backup_dir: Path, reason: str) -> BackupError:
    """The BackupError for a copy that failed for `reason`."""
    if "locked" in reason:
        hint = "retry when the application's write transaction has ended"
    elif "disk full" in reason:
        hint = "free space in the backup directory or choose another with --backup-dir, then retry"
    else:
        hint = "check the disk (an I/O error: see dmesg), then retry"
    return BackupError(
        f"{label} into {backup_dir} failed: {reason}",
        path=str(database),
        state="no backup was taken (the partial file was removed); the database was not changed",
        hint=hint,
    )


def _remove_all(paths: list[Path]) -> None:
    """Remove every file in `paths`, ignoring those already gone."""
    for path in paths:
        with suppress(OSError):
            path.unlink(missing_ok=True)
