"""The root of schemalog's exception hierarchy, the exit-4 root, and the journal's own errors.

The roots live here, in the lowest package, so that `journal` (which must not import
`engine`) and `engine` share one hierarchy: `SchemalogError` for everything a user can meet,
`NeedsHuman` for every state that must not be repaired blindly (exit 4) — journal errors
included, so `except NeedsHuman` catches them all. `schemalog.errors` re-exports every class.
"""

from __future__ import annotations

__all__ = [
    "JournalChainBroken",
    "JournalCorrupt",
    "JournalError",
    "JournalLayoutError",
    "JournalNotKeyed",
    "JournalTableUnwritable",
    "JournalUnavailable",
    "JournalUnsettled",
    "JournalsDiverged",
    "NeedsHuman",
    "PlantedSymlink",
    "SchemalogError",
]


class SchemalogError(Exception):
    """Raised for every failure schemalog reports to a user.

    Each error says, in one line, what failed (`what`), what state the database is in now
    (`state`) and what to do next (`hint`). Only the CLI turns it into output and an exit
    code (`exit_code`).
    """

    exit_code = 1
    default_state = "the database was not changed"

    def __init__(
        self,
        what: str,
        *,
        state: str | None = None,
        hint: str | None = None,
        path: str | None = None,
    ) -> None:
        self.what = what
        self.state = state if state is not None else self.default_state
        self.hint = hint
        self.path = path
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """The one-line message: what failed; state now; next step."""
        parts = [self.what, self.state]
        if self.hint:
            parts.append(f"next: {self.hint}")
        return "; ".join(p for p in parts if p)


class NeedsHuman(SchemalogError):
    """Raised when the database or journal is in a state that must not be repaired blindly."""

    exit_code = 4
    default_state = "nothing was changed"


class JournalError(NeedsHuman):
    """Raised when a journal cannot be read or trusted."""


class JournalCorrupt(JournalError):
    """Raised when a journal line or row cannot be decoded (not a torn last line)."""


class JournalChainBroken(JournalError):
    """Raised when the hash chain or the sequence of a journal is broken (tampering)."""


class JournalsDiverged(JournalError):
    """Raised when the table and the JSONL hold different events at the same seq."""


class JournalNotKeyed(JournalError):
    """Raised when a journal key is configured for a journal whose events were all sealed
    without one: sealed from the next event on only by `schemalog recover`."""


class JournalLayoutError(JournalError):
    """Raised when `schemalog_journal` has an unknown shape or a newer layout version."""


class JournalUnavailable(SchemalogError):
    """Raised when the JSONL file cannot be read or written (permissions, disk full, I/O).

    Not a state for a human to untangle: the other journal holds the events, and the next
    command mirrors them once the file can be written (exit 1).
    """


class JournalTableUnwritable(SchemalogError):
    """Raised when the journal table cannot be written (disk full, I/O error, read-only file);
    the JSONL holds the events and the next command copies them into the table."""


class JournalUnsettled(SchemalogError):
    """Raised when a COMMIT's outcome could not be read back: the journal takes no more events
    in this process; the next command reads the truth from the table."""

    default_state = "the database holds either all or none of the last transaction"


class PlantedSymlink(SchemalogError):
    """Raised when a path schemalog creates or replaces is a symbolic link; nothing was written
    through it."""

    exit_code = 2
    default_state = "nothing was written through the link"
