"""`repair`: accept the current file of an applied migration that was edited after it was applied.

An applied migration whose file changed is refused by every run (invariant 6) — rightly, since
its effect may have changed; but a fixed comment or typo in a docstring changes nothing it
does. `repair VERSION --reason TEXT` records `checksum_accepted` `{version, old, new, reason}`
(nothing else: no SQL runs, the schema is not touched); replay then gives the applied record
the new checksum, so the edited file is accepted, and `history` shows the repair with both
checksums and the reason. Writing command: lock → recover → run → record → finish.
"""

from __future__ import annotations

import attrs

from schemalog.engine.base.context import Context
from schemalog.engine.base.errors import UsageError
from schemalog.engine.files.registry import load_registry
from schemalog.engine.shell.recovery import recover
from schemalog.engine.shell.run import Run
from schemalog.engine.shell.session import Session
from schemalog.journal.events import Kind
from schemalog.journal.replay import replay

__all__ = ["RepairResult", "repair"]


@attrs.frozen
class RepairResult:
    """What `repair` did: `accepted` False when the file already matched (nothing recorded)."""

    version: int
    filename: str
    old: str
    new: str
    reason: str
    accepted: bool
    run_id: str | None = None


def repair(ctx: Context, version: int, reason: str) -> RepairResult:
    """Accept the current file of applied migration `version`, journaling `reason`.

    Raises UsageError (exit 2, nothing recorded) for an empty reason, a version without a
    file, a database that does not exist, a migration that was never applied, or a file that
    now holds another migration (another name); and what any writing command raises (lock,
    recovery refusals).
    """
    reason = reason.strip()
    if not reason:
        msg = "repair needs a reason"
        raise UsageError(msg, hint='e.g. --reason "fixed a typo in the docstring"')
    registry = load_registry(ctx.settings.migrations)
    migration = registry.get(version)
    if migration is None:
        msg = f"no migration file has version {version} in {registry.directory}"
        raise UsageError(msg, hint="pick the version of the edited file (`schemalog status`)")
    database = ctx.settings.paths.database
    if not database.exists():
        msg = f"database {database} does not exist, so no migration was applied to it"
        raise UsageError(msg, hint="check --database")
    with Session(ctx, command="repair", write=True) as session:
        recovery = recover(session)
        state = recovery.state
        if state is None or recovery.actions:
            state = replay(session.journal.snapshot().longest)
        record = state.applied_by_version.get(version)
        if record is None:
            msg = f"{migration.filename} was never applied to {database}; repair only accepts an applied migration's edited file"
            raise UsageError(msg, hint="apply it with `schemalog up` (it is run as it is now)")
        if record.name and record.name != migration.name:
            msg = (
                f"version {version} was applied as {version:03d}_{record.name}, but "
                f"{migration.filename} holds another migration"
            )
            raise UsageError(
                msg, hint=f"restore {version:03d}_{record.name} and renumber the new file"
            )
        result = RepairResult(
            version=version,
            filename=migration.filename,
            old=record.checksum,
            new=migration.checksum,
            reason=reason,
            accepted=False,
        )
        if record.checksum == migration.checksum:
            return result
        with Run(session, version=version) as run:
            run.record(
                Kind.CHECKSUM_ACCEPTED,
                version,
                version=version,
                old=record.checksum,
                new=migration.checksum,
                reason=reason,
            )
            run.finish("succeeded", version=state.version)
        return attrs.evolve(result, accepted=True, run_id=run.run_id)
