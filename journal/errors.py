"""The root of schemalog's exception hierarchy and the journal's own errors.

The root class lives here, in the lowest package, so that `journal` (which must
not import `engine`) and `engine` share one hierarchy. `schemalog.engine.base.errors` re-exports
everything defined here; users import errors from there.
"""

from __future__ import annotations


class SchemalogError(Exception):
    """Raised for every failure schemalog reports to a user.

    Each error says, in one line, what failed (`what`), what state the database
    is in now (`state`) and what to do next (`hint`). Only the CLI turns it into
    output and an exit code (`exit_code`).
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


class JournalError(SchemalogError):
    """Raised when a journal cannot be read or trusted; a human must look (exit 4)."""

    exit_code = 4
    default_state = "nothing was changed"


class JournalCorrupt(JournalError):
    """Raised when a journal line or row cannot be decoded (not a torn last line)."""


class JournalChainBroken(JournalError):
    """Raised when the hash chain or the sequence of a journal is broken (tampering)."""


class JournalsDiverged(JournalError):
    """Raised when the table and the JSONL hold different events at the same seq."""


class JournalLayoutError(JournalError):
    """Raised when `schemalog_journal` has an unknown shape or a newer layout version."""


class JournalUnavailable(JournalError):
    """Raised when the JSONL file cannot be read or written (permissions, disk)."""
