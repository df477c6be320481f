"""The state of a database as its journal tells it: plain frozen values, built by replay.

`journal.replay` folds events into a `State`; `journal.checkpoint` stores the part of a state
that later events build on, so a command can start from it instead of from the first event.
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = [
    "AppliedMigration",
    "Attempt",
    "BackupRecord",
    "ChecksumRepair",
    "LockRecord",
    "RestoreRecord",
    "RunRecord",
    "State",
]


@attrs.frozen
class AppliedMigration:
    """A migration the journal says is applied (or adopted by `baseline`)."""

    version: int
    name: str
    checksum: str
    applied_at: str
    run_id: str
    fingerprint_before: str | None = None
    fingerprint_after: str | None = None
    baselined: bool = False
    file: str | None = None  # the file name (older journals hold only `name`)
    #: What `up` changed in the schema (`step_applied`'s `schema_changes`), for `down`'s
    #: message; not kept in checkpoints (None for a record read from one).
    schema_changes: Any = attrs.field(default=None, eq=False, repr=False)


@attrs.frozen
class Attempt:
    """One try at applying or reverting one migration; `outcome` None while open."""

    run_id: str
    version: int
    direction: str
    name: str
    started_at: str
    started_seq: int
    outcome: str | None = None
    finished_at: str | None = None
    error: str | None = None
    checksum: str = ""  # of the migration file that was tried


@attrs.frozen
class LockRecord:
    """Who the journal says holds the migration lock."""

    run_id: str
    pid: int | None
    host: str | None
    command: str | None
    acquired_at: str


@attrs.frozen
class BackupRecord:
    """A backup the journal knows of (taken and not removed)."""

    id: str
    path: str
    version: int
    created_at: str
    size: int
    sha256: str
    verified: bool
    compression: str
    run_id: str


@attrs.frozen
class RunRecord:
    """One command run that changed something; `outcome` None while open."""

    run_id: str
    command: str
    started_at: str
    outcome: str | None = None
    finished_at: str | None = None
    error: str | None = None
    direction: str | None = None  # up/down runs: where they were going
    from_version: int | None = None
    to_version: int | None = None


@attrs.frozen
class RestoreRecord:
    """A restore that was started; cleared when `backup_restored` follows."""

    run_id: str
    backup_id: str
    preserved: str | None
    started_at: str


@attrs.frozen
class ChecksumRepair:
    """`repair`: the current file of an applied migration accepted (`checksum_accepted`)."""

    run_id: str
    version: int
    old: str
    new: str
    reason: str
    at: str


@attrs.frozen
class State:
    """What the journal says about the database at `seq`."""

    seq: int = 0
    head_hash: str | None = None
    version: int = 0
    fingerprint: str | None = None
    applied: tuple[AppliedMigration, ...] = ()
    attempts: tuple[Attempt, ...] = ()
    runs: tuple[RunRecord, ...] = ()
    lock: LockRecord | None = None
    backups: tuple[BackupRecord, ...] = ()
    pending_restore: RestoreRecord | None = None
    repairs: tuple[ChecksumRepair, ...] = ()
    #: The seq of the `journal_keyed` event: from it on the chain is keyed (None: plain).
    keyed_since: int | None = None

    @property
    def applied_by_version(self) -> dict[int, AppliedMigration]:
        """Applied migrations keyed by version."""
        return {a.version: a for a in self.applied}

    @property
    def open_attempts(self) -> tuple[Attempt, ...]:
        """Attempts with a `step_started` and no outcome yet."""
        return tuple(a for a in self.attempts if a.outcome is None)

    @property
    def open_runs(self) -> tuple[RunRecord, ...]:
        """Runs with a `run_started` and no `run_finished`."""
        return tuple(r for r in self.runs if r.outcome is None)

    @property
    def last_run(self) -> RunRecord | None:
        """The most recent run, if any."""
        return self.runs[-1] if self.runs else None

    @property
    def backup_by_id(self) -> dict[str, BackupRecord]:
        """Known backups keyed by id."""
        return {b.id: b for b in self.backups}
