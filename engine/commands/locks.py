"""The migration lock: `lock_status` (read-only) and `lock_break`."""

from __future__ import annotations

from typing import Any

import attrs

from schemalog.engine.base.context import Context
from schemalog.engine.commands.inspect import lock_document
from schemalog.engine.shell.lock import break_lock, probe
from schemalog.engine.shell.recovery import recover
from schemalog.engine.shell.session import Session

__all__ = ["lock_break", "lock_status"]


def lock_status(ctx: Context) -> dict[str, Any]:
    """Whether the migration lock is held, and by whom. Read-only."""
    return lock_document(probe(ctx.settings.paths.lock))


def lock_break(ctx: Context) -> dict[str, Any] | None:
    """Close a dead holder's lock record (journaled); refuses while the holder lives.

    The kernel releases the lock itself when its holder dies: this clears the holder's record
    in the lock file and closes it in the journal (`lock_released`). Raises LockHeld naming a
    live holder. Returns the dead holder's record, or None when none was recorded.
    """
    stale = break_lock(ctx.settings.paths.lock)  # raises LockHeld while the holder lives
    with Session(ctx, command="lock break", write=True) as session:
        recover(session)  # closes the dead holder's record in the journal
    return attrs.asdict(stale) if stale else None
