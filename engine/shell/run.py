"""A run: one journaled execution of a writing command, and the backups it takes.

`Run` records `run_started` + `lock_acquired` when it starts and `run_finished` +
`lock_released` when it finishes; as a context manager, a run left by an exception is
finished as failed (or interrupted) with the error's one line. It holds what belongs to this
run only: the backups it took, the one whose background check is still running, and the one
that failed its check. It is also the executor's hooks object: the executor asks it for the
run's backup (right after taking the write lock), to confirm that backup before the first
COMMIT, and for a fresh backup before a step that runs outside a transaction.
"""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Callable, Collection, Sequence
from types import TracebackType
from typing import Any

import attrs

from schemalog.engine.base.errors import BackupVerificationFailed, Interrupted, SchemalogError
from schemalog.engine.core.retention import Preservation, plan_budget
from schemalog.engine.shell import signals
from schemalog.engine.shell.backup import take_backup, take_backup_deferred
from schemalog.engine.shell.backup_file import remove_backup
from schemalog.engine.shell.preserve import finished_preservations, remove_tree
from schemalog.engine.shell.session import Session
from schemalog.journal import failpoints
from schemalog.journal.checkpoint import checkpoint_if_due
from schemalog.journal.durable import fsync_dir
from schemalog.journal.events import Draft, Kind
from schemalog.journal.replay import BackupRecord

__all__ = ["Run", "one_line"]


class Run:
    """One run of a writing command on an open, locked session."""

    def __init__(self, session: Session, **details: Any) -> None:
        """Record `run_started` (with `details`) and `lock_acquired` in one append."""
        self.session = session
        self.run_id = session.run_id
        self.backups: list[BackupRecord] = []  # taken by this run, in order
        self.failed_backup: BackupRecord | None = None
        self._checking: tuple[BackupRecord, Callable[[], None]] | None = None
        self.open = False
        who = {"pid": os.getpid(), "host": platform.node(), "command": session.command}
        session.journal.append_many(
            [
                Draft(self.run_id, Kind.RUN_STARTED, None, {**who, **details}),
                Draft(self.run_id, Kind.LOCK_ACQUIRED, None, who),
            ]
        )
        self.open = True
        failpoints.hit("after_run_started")

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None or not self.open:
            return
        outcome = "interrupted" if isinstance(exc, Interrupted | KeyboardInterrupt) else "failed"
        # the journal cannot take more (disk full...): the original error is reported
        with contextlib.suppress(SchemalogError):
            self.finish(outcome, error=one_line(exc))

    # -- events ---------------------------------------------------------------------

    def record(self, kind: Kind, version: int | None = None, /, **data: Any) -> None:
        """Append one event of this run."""
        self.session.record(kind, version, **data)

    def finish(self, outcome: str, error: str | None = None, **details: Any) -> None:
        """Settle the run's backups, record `run_finished` and `lock_released`, sync the JSONL."""
        journal = self.session.journal
        if journal.conn.in_transaction:  # the executor always ends its own; this is a guard
            journal.rollback()
        self.settle_backup()
        if self.failed_backup is not None:  # its file is gone: say so in the journal
            bad, self.failed_backup = self.failed_backup, None
            self.record(Kind.BACKUP_REMOVED, bad.version, id=bad.id, reason="failed check")
        journal.append_many(
            [
                Draft(
                    self.run_id,
                    Kind.RUN_FINISHED,
                    None,
                    {"outcome": outcome, "error": error, **details},
                ),
                Draft(self.run_id, Kind.LOCK_RELEASED, None, {"reason": "finished"}),
            ]
        )
        self.open = False
        checkpoint_if_due(journal, self.run_id)
        journal.sync()

    # -- backups (the executor's hooks) ------------------------------------------------

    def take_backup(self) -> BackupRecord:
        """The run's backup, taken now; its check may go on in the background.

        Called by the executor while its transaction holds the write lock, so nothing can be
        committed between the copy and the run's first step. Journaled at once
        (`backup_taken`, in both journals whatever happens to the transaction).
        """
        settings = self.session.settings
        if self.session.lock is not None:
            self.session.lock.note("taking the run's backup")
        if settings.compression != "none":
            return self.fresh_backup()
        record, wait = take_backup_deferred(
            self.session.paths.database,
            self.session.paths.backup_dir,
            run_id=self.run_id,
            integrity=settings.integrity,
            functions=self.session.functions,
            progress=self._progress,
        )
        self._add(record)
        self._checking = (record, wait)
        return record

    def confirm_backup(self) -> None:
        """Wait for the run's backup check (before the first COMMIT); record `backup_verified`.

        Raises BackupVerificationFailed (the file is deleted): the executor then rolls the
        whole run back, and nothing of it stays in the database.
        """
        if self._checking is None:
            return
        record, wait = self._checking
        self._checking = None
        try:
            wait()
        except BackupVerificationFailed:
            self.failed_backup = record
            raise
        self._mark_verified(record)

    def settle_backup(self) -> None:
        """Finish a check the run did not wait for (it ended before its first COMMIT)."""
        if self._checking is None:
            return
        # recorded as removed by `finish`
        with contextlib.suppress(BackupVerificationFailed):
            self.confirm_backup()

    def fresh_backup(self) -> BackupRecord:
        """A verified backup now (before a step outside a transaction, or a compressed one)."""
        settings = self.session.settings
        record = take_backup(
            self.session.paths.database,
            self.session.paths.backup_dir,
            run_id=self.run_id,
            compression=settings.compression,
            integrity=settings.integrity,
            functions=self.session.functions,
            progress=self._progress,
        )
        self._add(record)
        return record

    def step_started(self, version: int, filename: str, direction: str) -> None:
        """A step is about to run: say so in the lock file, where readers look."""
        if self.session.lock is not None:
            self.session.lock.note(f"{direction} {version} ({filename})", version)

    def step_done(self, version: int, name: str, direction: str, outcome: str) -> None:
        """A step ended: tell the observer and the log."""
        self.session.ctx.observer.step_done(version, name, direction, outcome)
        log = self.session.log
        (log.error if outcome == "failed" else log.info)(
            f"step {outcome}", version=version, name=name, direction=direction
        )

    def prune(
        self, known: Sequence[BackupRecord], *, protected: Collection[str] = ()
    ) -> list[BackupRecord]:
        """Remove backups and `pre-restore-*` preservations beyond the retention budget
        (journaled, each before it is deleted); returns the removed backups.

        `known` are the backups the journal knew before this run; the run's own are added.
        The rule is `engine.core.retention`'s: the newest verified backup, the newest
        preservation and the backup ids or preservation names in `protected` are never
        removed.
        """
        settings, paths = self.session.settings, self.session.paths
        preserved = finished_preservations(paths.backup_dir)
        found = {path.name: path for path, _, _ in preserved}
        plan = plan_budget(
            [*known, *self.backups],
            [Preservation(path.name, when, size) for path, when, size in preserved],
            keep=settings.retention_count,
            max_bytes=settings.retention_bytes,
            protected=protected,
        )
        for kept in plan.preservations:
            self.record(
                Kind.BACKUP_REMOVED,
                None,
                id=kept.name,
                preservation=True,
                reason="retention",
                size=kept.size,
            )
            remove_tree(found[kept.name])
            fsync_dir(paths.backup_dir)
        doomed = list(plan.backups)
        for record in doomed:
            self.record(
                Kind.BACKUP_REMOVED,
                record.version,
                id=record.id,
                reason="retention",
                size=record.size,
            )
            remove_backup(record, paths.backup_file(record.path))
        return doomed

    def _add(self, record: BackupRecord) -> None:
        data = attrs.asdict(record)
        del data["run_id"]
        self.session.journal.append_lasting(
            [Draft(self.run_id, Kind.BACKUP_TAKEN, record.version, data)]
        )
        self.backups.append(record)

    def _mark_verified(self, record: BackupRecord) -> None:
        if record.verified or self.session.settings.integrity == "off":
            return
        self.record(Kind.BACKUP_VERIFIED, None, id=record.id, backup_version=record.version)
        # Retention must count it as verified (it never deletes the newest verified one).
        self.backups = [
            attrs.evolve(b, verified=True) if b.id == record.id else b for b in self.backups
        ]

    def _progress(self, done: int, total: int) -> None:
        failpoints.hit("mid_backup")
        signals.check()  # SIGINT/SIGTERM stops the copy; its partial file is removed
        self.session.ctx.observer.progress(done, total)


def one_line(exc: BaseException) -> str:
    """The error's one line, as a run records it."""
    if isinstance(exc, SchemalogError):
        return exc.what
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:300]
