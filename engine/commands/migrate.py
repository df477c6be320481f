"""Migrating: `upgrade` (CLI `up`), `downgrade` (CLI `down`) and `baseline`.

Each writing command reads as its algorithm: lock → recover → plan → start the run →
backup → execute → retention → finish. The lock is the session's; the backup is taken by
the run when the executor holds SQLite's write lock; the executor owns every transaction.
Errors are `schemalog.errors` classes; nothing is printed.
"""

from __future__ import annotations

import sqlite3

import attrs

from schemalog.engine.base.context import Context
from schemalog.engine.base.errors import DriftDetected, UsageError, WaitedRunFailed
from schemalog.engine.core.diagnosis import RecoveryPlan, diagnose
from schemalog.engine.core.fingerprint import EMPTY_FINGERPRINT, schema_fingerprint
from schemalog.engine.core.plan import Plan, plan_down, plan_up
from schemalog.engine.core.schema import read_schema, recorded_schema, schema_changes
from schemalog.engine.core.schema_diff import UNKNOWN, SchemaDiff, diff_schemas, drift_diff
from schemalog.engine.files.registry import Registry, check_against_journal, load_registry
from schemalog.engine.shell.executor import Executor, RunResult
from schemalog.engine.shell.recovery import read_facts, recover
from schemalog.engine.shell.run import Run
from schemalog.engine.shell.session import Session
from schemalog.journal.clock import parse_iso
from schemalog.journal.events import Kind
from schemalog.journal.replay import BackupRecord, State, replay

__all__ = ["RunReport", "baseline", "downgrade", "upgrade"]


@attrs.frozen
class RunReport:
    """What an `upgrade`/`downgrade` did (or, with `dry_run`, would do)."""

    plan: Plan
    dry_run: bool = False
    result: RunResult | None = None
    backup: BackupRecord | None = None
    recovery: RecoveryPlan | None = None
    run_id: str | None = None


def upgrade(
    ctx: Context,
    target: int | None = None,
    *,
    dry_run: bool = False,
    allow_drift: bool = False,
    registry: Registry | None = None,
) -> RunReport:
    """Apply pending migrations up to `target` (default: the newest), each all-or-nothing.

    `registry` is the migrations already loaded from `ctx.settings.migrations` (`check` loads
    them once for all its steps); by default they are loaded now. Raises MigrationFailed (a step failed and was rolled back), DriftDetected,
    RegistryError/MigrationFileError/UsageError (nothing ran), LockTimeout/DatabaseBusy,
    WaitedRunFailed, Interrupted, NeedsHuman.
    """
    return _migrate(ctx, "up", target, dry_run=dry_run, allow_drift=allow_drift, registry=registry)


def downgrade(
    ctx: Context,
    target: int,
    *,
    dry_run: bool = False,
    allow_drift: bool = False,
    registry: Registry | None = None,
) -> RunReport:
    """Revert applied migrations newest first down to `target`, each verified.

    Raises NotReversible before anything runs if a migration on the way has no `down`; else
    what `upgrade` raises.
    """
    return _migrate(
        ctx, "down", target, dry_run=dry_run, allow_drift=allow_drift, registry=registry
    )


def _migrate(
    ctx: Context,
    direction: str,
    target: int | None,
    *,
    dry_run: bool,
    allow_drift: bool,
    registry: Registry | None,
) -> RunReport:
    if registry is None:  # file errors before any lock or write
        registry = load_registry(ctx.settings.migrations)
    if dry_run:
        return _preview(ctx, registry, direction, target, allow_drift=allow_drift)
    with Session(ctx, command=direction, write=True) as session:
        recovery = recover(session)
        state = _state_after(session, recovery)
        plan = _plan(registry, state, direction, target)
        _refuse_if_waited_behind_a_failure(session, state, plan)
        if plan.empty:
            return RunReport(plan=plan, recovery=recovery, run_id=session.run_id)
        _refuse_unmanaged(session, state)
        with Run(
            session, direction=direction, from_version=plan.from_version, to_version=plan.to_version
        ) as run:
            _check_drift(run, state, allow_drift=allow_drift)
            executor = Executor(
                session.journal,
                run.run_id,
                run,
                per_step_commit=ctx.settings.transaction == "step",
                wait_budget=session.remaining(),
            )
            result = executor.execute(plan)
            run.prune(known=state.backups)  # failed runs too: retries never pile up copies
            if result.error is not None:
                run.finish("failed", error=result.error.what, version=_user_version(session))
                raise result.error
            run.finish("succeeded", version=plan.to_version)
        backup = run.backups[0] if run.backups else None
        return RunReport(
            plan=plan, result=result, backup=backup, recovery=recovery, run_id=run.run_id
        )


def baseline(ctx: Context, version: int) -> None:
    """Adopt an existing database as being at `version` without running migrations 1..version.

    Raises UsageError for a version outside 0..head or a database schemalog already manages.
    """
    registry = load_registry(ctx.settings.migrations)
    if version < 0 or version > registry.head:
        msg = f"baseline version {version} is not between 0 and the newest migration ({registry.head})"
        raise UsageError(msg, hint="pick the version whose schema the database matches")
    with Session(ctx, command="baseline", write=True) as session:
        state = _state_after(session, recover(session))
        if state.version > 0:
            msg = f"database is already managed by schemalog (version {state.version})"
            raise UsageError(
                msg, hint="use `schemalog status`; baseline is for unmanaged databases"
            )
        with Run(session, version=version) as run:
            executor = Executor(session.journal, run.run_id, run, wait_budget=session.remaining())
            executor.adopt(version, [m for m in registry if m.version <= version])
            run.finish("succeeded", version=version)


# --- the parts of the algorithm ---------------------------------------------------------------


def _preview(
    ctx: Context, registry: Registry, direction: str, target: int | None, *, allow_drift: bool
) -> RunReport:
    """The plan a real run would execute now; reads only, takes no lock."""
    if not ctx.settings.paths.database.exists():
        return RunReport(plan=_plan(registry, State(), direction, target), dry_run=True)
    with Session(ctx, command=direction, write=False) as session:
        snapshot = session.journal.recent()
        recovery = diagnose(snapshot, read_facts(session.conn, integrity="off"))
        if recovery.refusal is not None:
            raise recovery.refusal
        state = recovery.state or State()
        plan = _plan(registry, state, direction, target)
        if not plan.empty:  # refuse what the real run would refuse (recording nothing)
            _refuse_unmanaged(session, state)
            if _drifted(session.conn, state) is not None and not allow_drift:
                raise _drift_error(session)
        return RunReport(plan=plan, dry_run=True, recovery=recovery, run_id=session.run_id)


def _state_after(session: Session, recovery: RecoveryPlan) -> State:
    """The journal's state now: recovery's, when it changed nothing; else replayed again."""
    if recovery.state is not None and not recovery.actions:
        return recovery.state
    return replay(session.journal.recent().longest)


def _plan(registry: Registry, state: State, direction: str, target: int | None) -> Plan:
    check_against_journal(registry, state.applied_by_version, state.version)
    if direction == "up":
        return plan_up(registry, state, target)
    assert target is not None
    return plan_down(registry, state, target)


def _refuse_if_waited_behind_a_failure(session: Session, state: State, plan: Plan) -> None:
    """A process that waited behind a run that then failed on the very migration file this
    one would run (same version, same checksum) — or that arrived while it ran — reports that
    failure instead of trying the same thing again, unless the `retry` setting asks for it.
    A fixed file, or a failure from before this process started, is a new attempt."""
    if session.settings.retry or not plan.steps:
        return
    first = plan.steps[0]
    for attempt in reversed(state.attempts):
        if attempt.version != first.version or attempt.direction != first.direction:
            continue
        if attempt.outcome != "failed" or attempt.checksum != first.migration.checksum:
            return
        waited = attempt.run_id in session.waited_for
        arrived = (
            _seconds_between(session.began_at, attempt.finished_at) <= session.settings.lock_timeout
        )
        if not (waited or arrived):
            return
        raise WaitedRunFailed(
            f"run {attempt.run_id} failed on {first.migration.filename} while this process "
            f"waited for the lock: {attempt.error}",
            hint="fix the migration, then run again (or pass --retry to try it anyway)",
        )


def _seconds_between(start: str, end: str | None) -> float:
    """Seconds from the ISO time `start` to `end` (infinite when `end` is unknown or before)."""
    if not end or end < start:
        return float("inf")
    return (parse_iso(end) - parse_iso(start)).total_seconds()


def _refuse_unmanaged(session: Session, state: State) -> None:
    if state.seq > 0:
        return
    user_version = _user_version(session)
    if user_version != 0 or schema_fingerprint(session.conn) != EMPTY_FINGERPRINT:
        msg = (
            f"database {session.paths.database} already has a schema (user_version "
            f"{user_version}) but no schemalog journal"
        )
        raise DriftDetected(
            msg, hint="adopt it with `schemalog baseline V` (V = the version its schema matches)"
        )


def _drifted(conn: sqlite3.Connection, state: State) -> str | None:
    """The live fingerprint if the schema changed since the journal last recorded it."""
    if state.fingerprint is None:
        return None
    live = schema_fingerprint(conn)
    return None if live == state.fingerprint else live


def _check_drift(run: Run, state: State, *, allow_drift: bool) -> None:
    """Record `drift_detected` if the schema changed outside schemalog; refuse unless allowed.

    The event names what changed (`diff`) and carries the change itself (`schema_changes`
    from the recorded schema, or the whole live `schema` when the recorded one is unknown).
    """
    live = _drifted(run.session.conn, state)
    if live is None:
        return
    schema = read_schema(run.session.conn)
    recorded = recorded_schema(run.session.journal.snapshot().longest)
    diff = diff_schemas(recorded, schema) if recorded is not None else None
    change = (
        {"schema_changes": schema_changes(recorded.rows(), schema.rows())}
        if recorded is not None
        else {"schema": schema_changes([], schema.rows())}
    )
    run.record(
        Kind.DRIFT_DETECTED,
        state.version,
        expected=state.fingerprint,
        actual=live,
        allowed=allow_drift,
        diff=diff.to_json() if diff is not None else None,
        **change,
    )
    if not allow_drift:
        raise _drift_error(run.session, diff)


def _drift_error(session: Session, diff: SchemaDiff | None = None) -> DriftDetected:
    """DriftDetected naming what changed (`diff`, else read from the session's journal)."""
    if diff is None:
        diff = drift_diff(session.journal.snapshot().longest, read_schema(session.conn))
    msg = (
        f"the schema of {session.paths.database} changed outside schemalog since the last "
        f"recorded step: {diff.text() if diff is not None else UNKNOWN}"
    )
    error = DriftDetected(
        msg, hint="inspect the change (`schemalog verify`); re-run with --allow-drift to accept it"
    )
    error.diff = diff  # type: ignore[attr-defined]
    return error


def _user_version(session: Session) -> int:
    return session.conn.execute("PRAGMA user_version").fetchone()[0]
