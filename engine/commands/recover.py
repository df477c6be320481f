"""`recover`: reconcile the journals and the database after a crash, on demand.

Every writing command already runs recovery after taking the lock; this command runs it
alone, with a forced integrity check, or (`dry_run`) only says what it would do. It is also the
one command that seals a journal started without a key when a journal key is configured.
"""

from __future__ import annotations

from schemalog.engine.base.context import Context
from schemalog.engine.core.diagnosis import RecoveryPlan
from schemalog.engine.shell.recovery import recover as recover_session
from schemalog.engine.shell.session import Session

__all__ = ["recover"]


def recover(ctx: Context, *, dry_run: bool = False) -> RecoveryPlan:
    """Bring journals and database to a consistent state; with `dry_run`, change nothing.

    A dry run opens the database read-only and never creates it. Raises the refusal
    (NeedsHuman, exit 4) when a human must look; nothing is changed then.
    """
    if dry_run and not ctx.settings.paths.database.exists():
        return RecoveryPlan()
    with Session(ctx, command="recover", write=not dry_run) as session:
        # The one command that seals a journal started without a key (`schemalog help events`).
        return recover_session(session, force_integrity=True, dry_run=dry_run, adopt_key=True)
