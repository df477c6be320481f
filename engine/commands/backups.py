"""Backups: `backup_create`, `backup_list`, `backup_restore` and `backup_prune`."""

from __future__ import annotations

import contextlib

from schemalog.engine.base.context import Context
from schemalog.engine.base.errors import (
    BackupError,
    BackupNotFound,
    DatabaseCorrupt,
    IrreconcilableState,
)
from schemalog.engine.commands.inspect import replay as replay_state
from schemalog.engine.shell.recovery import recover, salvage_journal
from schemalog.engine.shell.restore import RestoreResult, catch_up, journaled_restore
from schemalog.engine.shell.run import Run
from schemalog.engine.shell.session import Session
from schemalog.journal.jsonl import JsonlStore
from schemalog.journal.replay import BackupRecord, replay

__all__ = ["backup_create", "backup_list", "backup_prune", "backup_restore"]


def backup_create(ctx: Context) -> BackupRecord:
    """Take a verified backup now (journaled), then apply the retention budget."""
    with Session(ctx, command="backup create", write=True) as session:
        recover(session)
        known = replay(session.journal.recent().longest).backups
        with Run(session) as run:
            record = run.fresh_backup()
            run.prune(known=known)
            run.finish("succeeded")
        return record


def backup_list(ctx: Context) -> list[BackupRecord]:
    """Backups the journal knows, oldest first. Read-only.

    When the database cannot be read, the JSONL alone still knows them.
    """
    if not ctx.settings.paths.database.exists():
        return []
    try:
        return list(replay_state(ctx).backups)
    except DatabaseCorrupt:
        return list(replay(JsonlStore(ctx.settings.paths.jsonl).read().events).backups)


def backup_restore(ctx: Context, backup_id: str) -> RestoreResult:
    """Restore backup `backup_id`; the replaced database is preserved first, byte for byte.

    Nothing is written into the database before it is preserved: the command's events go to
    the JSONL only until the restore is done. Returns what was restored, where the replaced
    files are kept, and what they held beyond the backup. Raises BackupNotFound, then what
    `journaled_restore` raises.
    """
    with Session(ctx, command="backup restore", write=True, tolerate_damage=True) as session:
        session.journal.take_table_offline()
        try:
            recover(session)
            state = replay(session.journal.recent().longest)
        except (IrreconcilableState, DatabaseCorrupt):
            # A restore is the way out these refusals point to: go on from the journals as
            # they are (the JSONL brought up to date). Tampering is never bypassed.
            state = salvage_journal(session)
        record = state.backup_by_id.get(backup_id)
        if record is None:
            catch_up(session)  # the table takes what recovery wrote to the JSONL alone
            known = ", ".join(b.id for b in state.backups[-5:]) or "none"
            msg = f"no backup with id {backup_id!r}"
            raise BackupNotFound(msg, hint=f"see `schemalog backup list` (recent: {known})")
        with Run(session, backup_id=backup_id) as run:
            result = journaled_restore(
                session, record, reason="requested", progress=ctx.observer.progress
            )
            # The preservation just made counts against the budget too; the backup just
            # restored stays. A removal that fails does not undo the restore.
            with contextlib.suppress(BackupError):
                run.prune(known=state.backups, protected={record.id})
            run.finish("succeeded", preserved=str(result.preserved), discarded=result.discarded)
        return result


def backup_prune(ctx: Context) -> list[BackupRecord]:
    """Apply the retention budget now (journaled); returns the removed backups."""
    with Session(ctx, command="backup prune", write=True) as session:
        recover(session)
        known = replay(session.journal.recent().longest).backups
        with Run(session) as run:
            removed = run.prune(known=known)
            run.finish("succeeded", removed=len(removed))
        return removed
