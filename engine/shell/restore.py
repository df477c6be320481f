"""A restore that destroys nothing, and its journal: the one path every restore takes.

`restore_backup` works on files: the backup is verified (SHA-256, integrity, version); then
it is copied into the live database through SQLite's own pager (`Connection.backup`), which
holds the database's write lock from its first step to its COMMIT: right after the first
step, while no page of ours has reached the database file yet, the live files are preserved
byte for byte (`engine.shell.preserve`). So no writer can commit between the preservation and
the copy, a crash in the middle leaves the old content (SQLite rolls the copy back), and open
readers see the restored data. A database SQLite cannot read is preserved, then replaced on
the file level.

`journaled_restore` records it, each step safe to crash after:
1. the journal table is taken offline: nothing is written into the database being replaced
   until it has been preserved; `restore_started` (JSONL, fsynced) names the backup and where
   the current files will be kept, so a crash mid-restore is redone (when the preserved
   copy's manifest corroborates it) or closed;
2. preservation and copy as above;
3. the restored database's journal table (as old as the backup) is brought up to date from
   the JSONL, so history survives the restore;
4. `backup_restored` records the version, the schema now in place and what was discarded
   (rows per table that the replaced database held beyond the backup, and since when);
   a refused or failed restore is closed by `restore_failed` instead.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from contextlib import ExitStack, closing
from pathlib import Path
from typing import Protocol

import attrs

from schemalog.engine.base.connection import (
    Functions,
    IntegrityLevel,
    integrity_problems,
    open_database,
)
from schemalog.engine.base.errors import (
    BackupVerificationFailed,
    IrreconcilableState,
    PlantedSymlink,
    RestoreError,
    SchemalogError,
)
from schemalog.engine.base.paths import DatabasePaths
from schemalog.engine.core.fingerprint import schema_fingerprint
from schemalog.engine.shell.backup_file import verified_backup
from schemalog.engine.shell.preserve import (
    MANIFEST_NAME,
    LiveFiles,
    copy_files,
    fresh_dir,
    preservation_dir,
    preserved_row_counts,
    remove_tree,
    row_counts,
)
from schemalog.journal import failpoints
from schemalog.journal.clock import now
from schemalog.journal.durable import fsync_dir, open_private_file, os_reason, refuse_symlink
from schemalog.journal.events import Kind
from schemalog.journal.journal import Journal
from schemalog.journal.replay import BackupRecord

__all__ = ["RestoreResult", "Restorer", "catch_up", "journaled_restore", "restore_backup"]

_PAGES_PER_STEP = 256  # 1 MiB steps: the first one stays in the page cache (see _copy_in)
_CACHE_KIB = 8192
_BUSY_TIMEOUT_S = 10.0
_CHUNK = 1 << 20


@attrs.frozen
class RestoreResult:
    """A finished restore: the backup now in place, where the replaced files were kept, and
    what the replaced database held that the backup does not (rows per table)."""

    backup: BackupRecord
    preserved: Path  # directory holding the byte-for-byte copy of the replaced database files
    replaced_file: bool = False  # the database file was unusable and replaced by a new inode
    discarded: dict[str, int] = attrs.field(factory=dict)  # table -> rows beyond the backup


def restore_backup(
    paths: DatabasePaths,
    record: BackupRecord,
    preserve_to: Path,
    *,
    integrity: IntegrityLevel = "quick",
    functions: Functions | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RestoreResult:
    """Replace the content of the database with the backup `record`, keeping the old files.

    In order: (1) the backup is verified; on failure BackupVerificationFailed is raised and
    nothing is changed. (2) The backup is copied in through SQLite; right after the copy's
    first step the live files are preserved into `preserve_to` (or `<preserve_to>-N` if that
    already holds files; the result names the directory used), with `preserved.json` last.
    (3) The database is checked (`integrity`, and `user_version == record.version`). Every
    check runs with the application's SQL `functions`.

    Running it again from the same backup gives the same content. Raises RestoreError when
    preservation fails (the database was not changed) or anything after it fails (the error
    names the preserved copy and says what the database holds).
    """
    database = paths.database
    backup_file = paths.backup_file(record.path)
    with verified_backup(record, backup_file, integrity=integrity, functions=functions) as source:
        with ExitStack() as descriptors:
            # Descriptors of -wal/-journal are closed after our connection (ExitStack exits last).
            files = LiveFiles(paths, descriptors)
            existed = database.exists()
            live = open_database(
                database,
                mode="rw" if existed else "rwc",
                timeout=_BUSY_TIMEOUT_S,
                functions=functions,
            )
            with closing(live):
                if existed and not _usable(live):
                    live.close()
                    preserved = _replace_unusable(database, source, files, preserve_to, record)
                    _check_after(database, record, preserved, integrity, functions)
                    return RestoreResult(backup=record, preserved=preserved, replaced_file=True)
                preserved, before = _copy_in(
                    source, live, files, database, preserve_to, record, progress
                )
                try:
                    _check_live(live, record, integrity)
                except sqlite3.Error as e:
                    state = "the backup was copied in but the database fails its check"
                    raise _failed_after(database, record, preserved, str(e), state) from e
        discarded = _discarded(before, source)
    return RestoreResult(backup=record, preserved=preserved, discarded=discarded)


class Restorer(Protocol):
    """What `journaled_restore` needs from its caller: the journal, the files, the events."""

    @property
    def journal(self) -> Journal: ...

    @property
    def paths(self) -> DatabasePaths: ...

    @property
    def integrity(self) -> IntegrityLevel: ...

    @property
    def functions(self) -> Functions | None: ...

    def record(self, kind: Kind, version: int | None = None, /, **data: object) -> None: ...

    def reopen(self) -> None: ...


def journaled_restore(
    owner: Restorer,
    record: BackupRecord,
    *,
    reason: str,
    preserve_to: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RestoreResult:
    """Restore `record` into the owner's database, journaling every step (see module doc).

    Raises BackupVerificationFailed (nothing changed) or RestoreError (the preserved copy is
    named), after recording `restore_failed`; IrreconcilableState if the restored journal
    table disagrees with the JSONL.
    """
    journal = owner.journal
    if journal.conn.in_transaction:  # the caller's transaction must not span a restore
        journal.rollback()
    journal.take_table_offline()
    target = preserve_to or preservation_dir(owner.paths.backup_dir, now())
    owner.record(
        Kind.RESTORE_STARTED,
        record.version,
        backup_id=record.id,
        preserved=str(target),
        reason=reason,
    )
    journal.sync()  # the table's copy of these events is about to be replaced

    def on_progress(done: int, total: int) -> None:
        failpoints.hit("mid_restore")
        if progress is not None:
            progress(done, total)

    try:
        result = restore_backup(
            owner.paths,
            record,
            target,
            integrity=owner.integrity,
            functions=owner.functions,
            progress=on_progress,
        )
    except (BackupVerificationFailed, RestoreError) as exc:
        owner.record(
            Kind.RESTORE_FAILED,
            record.version,
            backup_id=record.id,
            error=exc.what,
            state=exc.state,
        )
        catch_up(owner)
        raise
    if result.replaced_file:
        owner.reopen()  # the old connection still reads the replaced (unlinked) file
        journal = owner.journal
    _catch_up_table(owner)
    journal.bring_table_online()
    version = journal.conn.execute("PRAGMA user_version").fetchone()[0]
    owner.record(
        Kind.BACKUP_RESTORED,
        version,
        backup_id=record.id,
        version=version,
        fingerprint=schema_fingerprint(journal.conn),
        preserved=str(result.preserved),
        backup_taken_at=record.created_at,
        discarded=result.discarded,
    )
    return result


# --- copying -------------------------------------------------------------------------------


def _copy_in(
    source: Path,
    live: sqlite3.Connection,
    files: LiveFiles,
    database: Path,
    preserve_to: Path,
    record: BackupRecord,
    progress: Callable[[int, int], None] | None,
) -> tuple[Path, dict[str, int]]:
    """Copy the backup into `live` through SQLite; preserve the live files after step one.

    The first step opens the copy's write transaction (writers now wait; SQLite first rolls
    back a crashed writer's hot journal) and changes only pages in our page cache, which is
    large enough for a step: the database file and its `-wal` still hold the last committed
    state, and are copied then. The step size keeps the first step from being the last (the
    last step commits). Returns the preservation directory and the rows per table it holds.
    """
    live.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
    counted: dict[str, int] = {}
    preserved: list[Path] = []
    failure: list[BaseException] = []

    def preserve() -> None:
        try:
            target = fresh_dir(preserve_to)
            preserved.append(target)
            ours = f"{database.name}-journal"  # the copy's own rollback journal, not the database's
            present = [(p, fd) for p, fd in files.refresh() if p.name != ours]
            copy_files(present, target, database, record.id)
            counted.update(preserved_row_counts(database, target))
        except BaseException as e:
            failure.append(e)
            raise  # aborts the copy: SQLite rolls it back, nothing was changed

    started = time.monotonic()

    def step(status: int, remaining: int, total: int) -> None:
        if status in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):  # SQLite would retry forever
            if time.monotonic() - started > _BUSY_TIMEOUT_S:
                msg = f"the database is locked by another connection (waited {_BUSY_TIMEOUT_S:g} s)"
                raise sqlite3.OperationalError(msg)
            return
        if not preserved:
            preserve()
        if progress is not None:
            progress(total - remaining, total)

    backup = open_database(source, mode="ro", immutable=True)
    try:
        total = backup.execute("PRAGMA page_count").fetchone()[0]
        if total <= 1:  # one step copies everything: preserve under the write lock first
            live.execute("BEGIN IMMEDIATE")
            try:
                preserve()
            finally:
                if live.in_transaction:
                    live.execute("ROLLBACK")
        backup.backup(live, pages=min(_PAGES_PER_STEP, max(1, total - 1)), progress=step)
    except BaseException as e:
        if failure or not preserved:
            for partial in preserved:
                remove_tree(partial)
            cause = failure[0] if failure else e
            if isinstance(cause, PlantedSymlink):
                raise cause from None  # exit 2, its own message: nothing was written through it
            reason = os_reason(cause) if isinstance(cause, OSError) else str(cause)
            msg = f"cannot preserve {database} before restoring backup {record.id}: {reason}"
            raise RestoreError(
                msg,
                path=str(database),
                state="the database was not changed",
                hint="free space in the backup directory (or stop the writer), then retry",
            ) from e
        state = "SQLite rolled the copy back: the database holds its previous content"
        raise _failed_after(database, record, preserved[0], str(e), state) from e
    finally:
        backup.close()
    return preserved[0], counted


def _usable(live: sqlite3.Connection) -> bool:
    """Whether SQLite can read the live database at all (its header and schema)."""
    try:
        live.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError:
        return False
    return True


def _replace_unusable(
    database: Path, source: Path, files: LiveFiles, preserve_to: Path, record: BackupRecord
) -> Path:
    """Put the backup in place of a database SQLite cannot read; returns the preserved dir.

    SQLite cannot copy into a file it cannot read, and no process can be using it, so the
    restore works on files: the unusable files are preserved byte for byte first, then the
    backup is written next to the database (a new 0600 file, never through a link), fsynced
    and renamed over it; its stale `-journal`/`-wal`/`-shm` (already preserved) are removed so
    they are never applied to the restored content; the directory is fsynced.
    """
    tmp = database.with_name(database.name + ".restore-tmp")
    refuse_symlink(tmp)  # planted: refused (PlantedSymlink) before anything is written
    target = fresh_dir(preserve_to)
    try:
        copy_files(files.refresh(), target, database, record.id)
        tmp.unlink(missing_ok=True)  # a leftover of an interrupted attempt
        with open_private_file(tmp) as out, open(source, "rb") as src:
            while chunk := src.read(_CHUNK):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, database)
        for suffix in ("-journal", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        fsync_dir(database.parent)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        msg = f"cannot put backup {record.id} in place of the unreadable {database}: {os_reason(e)}"
        raise RestoreError(
            msg,
            path=str(database),
            state=f"the unreadable files are preserved in {target}; the database is unchanged",
            hint="free disk space, then retry the restore",
        ) from e
    return target


def _check_after(
    database: Path,
    record: BackupRecord,
    preserved: Path,
    integrity: IntegrityLevel,
    functions: Functions | None,
) -> None:
    """Check a database put in place on the file level (RestoreError naming the copy)."""
    with closing(open_database(database, mode="rw", functions=functions)) as check:
        try:
            _check_live(check, record, integrity)
        except sqlite3.Error as e:
            state = "the backup was put in place but fails its check"
            raise _failed_after(database, record, preserved, str(e), state) from e


def _check_live(live: sqlite3.Connection, record: BackupRecord, integrity: IntegrityLevel) -> None:
    """Raise sqlite3.DatabaseError unless the restored database passes its check."""
    problems = integrity_problems(live, integrity)
    if problems:
        msg = f"{integrity} integrity check after the copy: " + "; ".join(problems)
        raise sqlite3.DatabaseError(msg)
    version = live.execute("PRAGMA user_version").fetchone()[0]
    if version != record.version:
        msg = f"user_version is {version} after the copy, the backup holds {record.version}"
        raise sqlite3.DatabaseError(msg)


def _discarded(before: dict[str, int], backup: Path) -> dict[str, int]:
    """Rows per table that the replaced database held beyond the backup (none if unreadable)."""
    try:
        after = row_counts(backup)
    except sqlite3.Error:
        return {}
    return {t: n - after.get(t, 0) for t, n in sorted(before.items()) if n > after.get(t, 0)}


def _failed_after(
    database: Path, record: BackupRecord, preserved: Path, reason: str, state: str
) -> RestoreError:
    """The RestoreError for a failure once the live files were preserved."""
    return RestoreError(
        f"restore of backup {record.id} into {database} failed: {reason}",
        path=str(database),
        state=(
            f"{state}; the pre-restore database is preserved, byte for byte, in {preserved} "
            f"(see {MANIFEST_NAME} there)"
        ),
        hint=(
            f"retry `schemalog backup restore {record.id}`, or copy the files in {preserved} "
            "back by hand while nothing uses the database"
        ),
    )


# --- the journal table after a restore --------------------------------------------------------


def _catch_up_table(owner: Restorer) -> None:
    """Mirror into the restored table the events it lacks (it is a prefix of the JSONL)."""
    journal = owner.journal
    snap = journal.snapshot()
    cons = snap.consistency
    if cons.diverged_at is not None or cons.table_only:
        msg = (
            f"the restored database's journal disagrees with {owner.paths.jsonl.name} "
            f"at seq {cons.diverged_at or cons.table_only[0].seq}"
        )
        raise IrreconcilableState(
            msg,
            state="the backup was restored; the pre-restore database is preserved",
            hint="compare both journals with `schemalog verify` (see the recovery runbook, "
            "`schemalog help recovery`)",
        )
    journal.mirror_to_table(cons.jsonl_only)
    journal.continue_after(snap.jsonl.events)


def catch_up(owner: Restorer) -> None:
    """When no restore replaces the database after all: bring the table up to date with the
    JSONL if it can be read, and online; else leave it offline (the next command's recovery
    mirrors the JSONL into it)."""
    try:
        _catch_up_table(owner)
    except (sqlite3.Error, SchemalogError):
        return
    owner.journal.bring_table_online()
