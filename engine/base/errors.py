"""The one exception hierarchy of schemalog.

Every class says in its docstring when it is raised. Messages are built by the raiser as
`what` (what failed, naming the file/migration/value), `state` (what the database holds now)
and `hint` (the next command). `exit_code` follows the contract: 1 failed and rolled back /
check found a problem, 2 usage or file error (nothing ran), 3 lock held or database busy,
4 needs a human (nothing was changed); 130/143 interrupted by SIGINT/SIGTERM. The roots
(`SchemalogError`, and `NeedsHuman` for every exit-4 error, journal errors included) live in
`schemalog.journal.errors`; `schemalog.errors` re-exports everything.
"""

from __future__ import annotations

from schemalog.journal.errors import (
    JournalChainBroken,
    JournalCorrupt,
    JournalError,
    JournalLayoutError,
    JournalNotKeyed,
    JournalsDiverged,
    JournalTableUnwritable,
    JournalUnavailable,
    JournalUnsettled,
    NeedsHuman,
    PlantedSymlink,
    SchemalogError,
)

__all__ = [
    "BackupError",
    "BackupNotFound",
    "BackupUnusable",
    "BackupVerificationFailed",
    "CheckFailed",
    "ConfigError",
    "DatabaseBusy",
    "DatabaseCorrupt",
    "DriftDetected",
    "FleetIncomplete",
    "Interrupted",
    "IrreconcilableState",
    "JournalChainBroken",
    "JournalCorrupt",
    "JournalError",
    "JournalLayoutError",
    "JournalNotKeyed",
    "JournalTableUnwritable",
    "JournalUnavailable",
    "JournalUnsettled",
    "JournalsDiverged",
    "LockHeld",
    "LockTimeout",
    "MigrationFailed",
    "MigrationFileError",
    "NeedsHuman",
    "NotReversible",
    "PlantedSymlink",
    "RecoveryPending",
    "RegistryError",
    "RestoreError",
    "SchemalogError",
    "StepFailed",
    "StorageError",
    "Unwritable",
    "UsageError",
    "VerificationFailed",
    "WaitedRunFailed",
]


# --- exit 2: nothing was run -------------------------------------------------


class UsageError(SchemalogError):
    """Raised for a bad command line or argument value; nothing was run."""

    exit_code = 2
    default_state = "nothing was run"


class ConfigError(UsageError):
    """Raised for an unknown configuration key, a bad value or an unusable path."""


class MigrationFileError(UsageError):
    """Raised when a migration file cannot be loaded (syntax error, missing `up`, bad name)."""

    def __init__(self, what: str, *, path: str | None = None, **kw) -> None:
        super().__init__(what, path=path, **kw)


class RegistryError(UsageError):
    """Raised when the set of migration files is inconsistent with itself or the journal.

    Gaps, duplicates, versions <= 0, a never-applied file below the applied head,
    an applied migration edited (checksum) or deleted.
    """


class BackupNotFound(UsageError):
    """Raised when a backup id names no backup known to the journal or on disk."""


class Unwritable(UsageError):
    """Raised before anything is written when the database, its directory, the JSONL or the
    backup directory cannot be written (read-only file or file system, permissions)."""

    default_state = "nothing was written"


# --- exit 1: failed and rolled back, or a problem found ----------------------


class MigrationFailed(SchemalogError):
    """Raised when a migration step failed and was rolled back."""

    default_state = "the failed step was rolled back; earlier steps of the run stay applied"

    def __init__(self, what: str, *, version: int | None = None, **kw) -> None:
        self.version = version
        super().__init__(what, **kw)


class StepFailed(MigrationFailed):
    """Raised when a statement (or Python step) of a migration raised an error."""


class VerificationFailed(MigrationFailed):
    """Raised when a verify query, the foreign-key check or the schema check of a step failed."""


class DriftDetected(SchemalogError):
    """Raised when the live schema differs from the one the journal last recorded."""


class CheckFailed(SchemalogError):
    """Raised when `check` or `verify` found a problem."""


class FleetIncomplete(SchemalogError):
    """Raised when a fleet run ends with a database failed, refused or not started."""

    default_state = "every other database was migrated or left as it was; none is half-migrated"


class StorageError(SchemalogError):
    """Raised when the disk or SQLite fails under a command outside a migration step (I/O
    error, disk full, a file that cannot be opened): what was committed is journaled, what was
    not is rolled back, and the next command's recovery finishes the journals."""

    default_state = (
        "everything committed before the failure is journaled; what was not committed was "
        "rolled back"
    )


class BackupError(SchemalogError):
    """Raised when a backup could not be written (disk full, I/O error); the database is untouched."""


class BackupUnusable(BackupError):
    """Raised when the backup directory is missing and cannot be created, or is not writable."""

    exit_code = 2


class BackupVerificationFailed(BackupError):
    """Raised when a backup file fails its check (integrity, size or SHA-256 mismatch)."""


class RestoreError(SchemalogError):
    """Raised when a restore could not complete; the pre-restore copy is kept."""


# --- exit 3: the lock --------------------------------------------------------


class LockHeld(SchemalogError):
    """Raised when the migration lock is held by another live run."""

    exit_code = 3
    default_state = "another run holds the lock; nothing was changed by this one"


class LockTimeout(LockHeld):
    """Raised when the lock was not acquired within `--lock-timeout` seconds."""


class DatabaseBusy(LockHeld):
    """Raised when another connection (the application) kept SQLite's write lock past the
    `--lock-timeout` budget; nothing of the run was applied."""

    default_state = "nothing of this run was applied"


class RecoveryPending(SchemalogError):
    """Raised by a read-only command that meets a hot journal (a writer was killed inside a
    transaction): reading would mean rolling it back, which only a writing command does."""

    default_state = "the database holds its last committed state plus a pending rollback"


class WaitedRunFailed(SchemalogError):
    """Raised in a process that waited for the lock behind a run that then failed: it
    reports that failure instead of trying the same migration again (unless retrying is
    asked for)."""

    default_state = "this process changed nothing"


class Interrupted(SchemalogError):
    """Raised when SIGINT or SIGTERM stopped a command; what it had not committed is rolled
    back and the attempt is recorded as interrupted. `exit_code` is 128 + the signal."""

    default_state = "what had not been committed was rolled back"

    def __init__(self, what: str, *, signum: int = 2, **kw) -> None:
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(what, **kw)


# --- exit 4: a human must look -----------------------------------------------


class IrreconcilableState(NeedsHuman):
    """Raised when the journal and the database disagree in a way recovery cannot resolve."""


class DatabaseCorrupt(NeedsHuman):
    """Raised when the database fails its integrity check and no run's own backup applies."""


class NotReversible(UsageError):
    """Raised when `down` would pass a migration that has no `down`; nothing was run."""
