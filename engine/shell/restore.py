"""A journaled restore: the one path every restore takes (CLI, failed step, recovery).

Order, each step safe to crash after:
1. `restore_started` (JSONL first, then fsynced) names the backup and where the
   current database will be preserved — so a crash mid-restore is redone;
2. the current database and its -wal/-shm are preserved byte for byte, then the
   backup is copied in through SQLite's pager (`schemalog.engine.shell.preserve`);
3. the restored database's journal table (as old as the backup) is brought up to
   date from the JSONL, so history survives the restore;
4. `backup_restored` records the version and schema now in place.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from schemalog.engine.base.errors import IrreconcilableState
from schemalog.engine.core.fingerprint import schema_fingerprint
from schemalog.engine.shell.backup import BackupInfo
from schemalog.engine.shell.preserve import preservation_dir, restore_backup
from schemalog.journal import failpoints
from schemalog.journal.chain import now
from schemalog.journal.events import Kind
from schemalog.journal.replay import BackupRecord

if TYPE_CHECKING:
    from schemalog.engine.shell.session import Session

__all__ = ["info_from_record", "journaled_restore"]


def info_from_record(record: BackupRecord) -> BackupInfo:
    """The backup module's value for a backup the journal knows."""
    return BackupInfo(
        id=record.id,
        path=Path(record.path),
        version=record.version,
        created_at=record.created_at,
        size=record.size,
        sha256=record.sha256,
        verified=record.verified,
        compression=record.compression,
    )


def journaled_restore(
    session: Session,
    record: BackupRecord,
    *,
    reason: str,
    preserve_to: Path | None = None,
    progress=None,
) -> Path:
    """Restore `record` into the session's database, journaling every step.

    Returns the directory holding the preserved pre-restore files. Raises
    BackupVerificationFailed (nothing changed) or RestoreError (the preserved
    copy is kept and named).
    """
    journal = session.journal
    assert journal is not None and session.conn is not None
    if journal.conn.in_transaction:
        journal.commit()
    target = preserve_to or preservation_dir(session.paths.backup_dir, now())
    session.record(
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

    result = restore_backup(
        session.paths.database,
        info_from_record(record),
        target,
        integrity=session.settings.integrity,
        progress=on_progress,
    )
    if result.replaced_file:
        session.reopen()  # the old connection still reads the replaced (unlinked) file
    _catch_up_table(session)
    assert session.conn is not None and session.journal is not None
    session.journal.table_offline = False
    version = session.conn.execute("PRAGMA user_version").fetchone()[0]
    session.record(
        Kind.BACKUP_RESTORED,
        version,
        backup_id=record.id,
        version=version,
        fingerprint=schema_fingerprint(session.conn),
        preserved=str(result.preserved),
    )
    return result.preserved


def _catch_up_table(session: Session) -> None:
    """Mirror into the restored table the events it lacks (it is a prefix of the JSONL)."""
    journal = session.journal
    assert journal is not None
    snap = journal.snapshot()
    cons = snap.consistency
    if cons.diverged_at is not None or cons.table_only:
        msg = (
            f"the restored database's journal disagrees with {session.paths.jsonl.name} "
            f"at seq {cons.diverged_at or cons.table_only[0].seq}"
        )
        raise IrreconcilableState(
            msg,
            state="the backup was restored; the pre-restore database is preserved",
            hint="compare both journals with `schemalog verify` (see docs/recovery.md)",
        )
    journal.mirror_to_table(cons.jsonl_only)
    journal.set_head(snap.jsonl.events)
