"""The one exception hierarchy of schemalog.

Every class says in its docstring when it is raised. Messages are built by the
raiser as `what` (what failed, naming the file/migration/value), `state` (what
the database holds now) and `hint` (the next command). `exit_code` follows the
contract: 1 failed and rolled back / check found a problem, 2 usage or file
error (nothing ran), 3 lock held, 4 needs a human (nothing was changed).
"""

from __future__ import annotations

from schemalog.journal.errors import (
    JournalChainBroken,
    JournalCorrupt,
    JournalError,
    JournalLayoutError,
    JournalsDiverged,
    JournalUnavailable,
    SchemalogError,
)

__all__ = [
    "BackupError",
    "BackupNotFound",
    "BackupUnusable",
    "BackupVerificationFailed",
    "CheckFailed",
    "ConfigError",
    "DatabaseCorrupt",
    "DriftDetected",
    "FleetIncomplete",
    "IrreconcilableState",
    "JournalChainBroken",
    "JournalCorrupt",
    "JournalError",
    "JournalLayoutError",
    "JournalUnavailable",
    "JournalsDiverged",
    "LockHeld",
    "LockTimeout",
    "MigrationFailed",
    "MigrationFileError",
    "NeedsHuman",
    "NotReversible",
    "RegistryError",
    "RestoreError",
    "SchemalogError",
    "StepFailed",
    "UsageError",
    "VerificationFailed",
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


# --- exit 4: a human must look -----------------------------------------------


class NeedsHuman(SchemalogError):
    """Raised when the database or journal is in a state that must not be repaired blindly."""

    exit_code = 4
    default_state = "nothing was changed"


class IrreconcilableState(NeedsHuman):
    """Raised when the journal and the database disagree in a way recovery cannot resolve."""


class DatabaseCorrupt(NeedsHuman):
    """Raised when the database fails its integrity check and no run's own backup applies."""


class NotReversible(UsageError):
    """Raised when `down` would pass a migration that has no `down`; nothing was run."""
