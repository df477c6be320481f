"""The executor: applies or reverts the steps of a `Plan`; it owns the run's transactions.

From `BEGIN IMMEDIATE` to `COMMIT` or `ROLLBACK`, every transaction of a run is opened and
ended here and nowhere else. The run starts by taking SQLite's write lock (waiting at most
what is left of the `lock_timeout` budget: an application holding it longer gives
`DatabaseBusy`, exit 3); while it holds the lock the hooks take the run's backup, so no
application write can fall between the backup and the first step.

Per step: `step_started`, SAVEPOINT, the step's SQL (or Python function), its verify
queries, `PRAGMA foreign_key_check`, for `down` the schema check against the fingerprint
recorded before `up`, `PRAGMA user_version`, and `step_applied`/`step_reverted` — all inside
the transaction. On an error the savepoint is rolled back (the database holds nothing of the
step) and `step_failed`/`verification_failed` plus `rolled_back` are recorded; the run stops.

Three things can take more than the step away, and each is said as it is:
- SQLite rolls back the *whole* transaction by itself on SQLITE_FULL and some I/O errors
  (also when COMMIT fails): every step since the last COMMIT is undone, and their events
  with them. The executor notices (`Connection.in_transaction`), records the failure outside
  the transaction (`rolled_back` with `method: "transaction"` naming the undone steps) and
  says which steps stay applied: those of earlier commits only.
- SIGINT/SIGTERM (`engine.shell.signals`): the running statement is interrupted, the open
  transaction rolled back, the attempt recorded as interrupted; `Interrupted` is raised.
- Anything else outside a step (the journal cannot be written...) rolls back and raises.

Transactions: with `per_step_commit=False` consecutive ordinary steps share one transaction
(one commit for the run, a savepoint per step); with True each step commits. Steps with
`foreign_keys = False` get a transaction of their own with enforcement turned off before
BEGIN (a no-op inside one) and restored on every path. Steps with `transactional = False`
(VACUUM and the like) run in autocommit mode after a fresh backup; each of their statements
is atomic by itself, so a failing one leaves the statements before it applied: the failure
says which, and the database is never restored over concurrent writes (the fresh backup is
for recovery, should the database itself be damaged).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Any, Protocol

import attrs

from schemalog.engine.base.connection import sqlite_reason
from schemalog.engine.base.errors import DatabaseBusy, Interrupted, MigrationFailed, StepFailed
from schemalog.engine.core.fingerprint import schema_fingerprint, schema_rows
from schemalog.engine.core.plan import Plan, Step
from schemalog.engine.core.schema import schema_changes
from schemalog.engine.files.migration import Migration
from schemalog.engine.shell import signals
from schemalog.engine.shell.step import StepError, StepRunner, start_data
from schemalog.journal import failpoints
from schemalog.journal.events import Draft, Kind
from schemalog.journal.journal import Journal
from schemalog.journal.replay import BackupRecord

__all__ = ["Executor", "Hooks", "RunResult", "StepResult"]

_SAVEPOINT = "schemalog_step"


class Hooks(Protocol):
    """What the executor asks of the run it executes (`engine.shell.run.Run`)."""

    def take_backup(self) -> BackupRecord:
        """The run's backup, taken while the executor holds the write lock."""
        ...

    def confirm_backup(self) -> None:
        """Wait for the run's backup check before the first COMMIT (raises if it failed)."""
        ...

    def fresh_backup(self) -> BackupRecord:
        """A verified backup now, before a step that runs outside a transaction."""
        ...

    def step_started(self, version: int, filename: str, direction: str) -> None:
        """A step is about to run (readers are told what the run is doing)."""
        ...

    def step_done(self, version: int, name: str, direction: str, outcome: str) -> None:
        """A step ended with `outcome`."""
        ...


@attrs.frozen
class StepResult:
    """What happened to one step; `outcome` applied | reverted | failed | undone."""

    version: int
    name: str
    direction: str
    outcome: str
    duration_ms: int
    statements: int
    error: str | None = None


@attrs.frozen
class RunResult:
    """What happened to a plan: the steps done, and the error that stopped it (if any)."""

    steps: tuple[StepResult, ...]
    error: MigrationFailed | None = None

    @property
    def ok(self) -> bool:
        """Every step succeeded."""
        return self.error is None


class _TransactionLost(Exception):
    """Internal: SQLite rolled the whole open transaction back by itself."""

    def __init__(self, step: Step | None, reason: str, failure: StepError | None = None) -> None:
        super().__init__(reason)
        self.step = step
        self.reason = reason
        self.failure = failure


class Executor:
    """Runs one plan on the journal's connection, recording every step in the journal."""

    def __init__(
        self,
        journal: Journal,
        run_id: str,
        hooks: Hooks,
        *,
        per_step_commit: bool = False,
        wait_budget: float = 30.0,
    ) -> None:
        self.journal = journal
        self.conn = journal.conn
        self.run_id = run_id
        self.hooks = hooks
        self.per_step_commit = per_step_commit
        self._deadline = time.monotonic() + wait_budget
        self._results: list[StepResult] = []
        self._segment = 0  # index of the first result not yet committed
        self._confirmed = False
        self._last_error: MigrationFailed | None = None
        self.steps = StepRunner(journal.conn)

    # -- the run ---------------------------------------------------------------

    def execute(self, plan: Plan) -> RunResult:
        """Take the write lock, have the run's backup taken under it, run every step, commit.

        Stops at the first failure; leaves no transaction open. Raises DatabaseBusy when the
        write lock stays taken past the budget (nothing of the run was applied),
        Interrupted on SIGINT/SIGTERM, and whatever stops the run outside a step (after a
        rollback of what was not committed).
        """
        error: MigrationFailed | None = None
        try:
            with signals.watching(self.conn):
                self._begin()
                self.hooks.take_backup()
                for step in plan.steps:
                    signals.check()
                    if self._run(step).outcome == "failed":
                        error = self._last_error
                        break
                self._commit()
        except _TransactionLost as lost:
            error = self._lost(lost)
        except BaseException:
            self.steps.forget()
            self.journal.rollback()
            raise
        return RunResult(tuple(self._results), error)

    def adopt(self, version: int, migrations: Sequence[Migration]) -> None:
        """Record that the database is at `version` without running any migration (baseline):
        `PRAGMA user_version` and `baseline_set` (the files' checksums, the schema) commit
        together. Raises DatabaseBusy like `execute`."""
        with signals.watching(self.conn):
            self._begin()
            try:
                self.conn.execute(f"PRAGMA user_version = {int(version)}")
                data = {
                    "checksums": {str(m.version): m.checksum for m in migrations},
                    "names": {str(m.version): m.name for m in migrations},
                    "fingerprint": schema_fingerprint(self.conn),
                    "schema": schema_changes([], schema_rows(self.conn)),
                }
                self.journal.append(Draft(self.run_id, Kind.BASELINE_SET, version, data))
                self.journal.commit()
            except BaseException:
                self.journal.rollback()
                raise

    def _run(self, step: Step) -> StepResult:
        if step.transactional and step.foreign_keys:
            return self._in_transaction(step, own=self.per_step_commit)
        if step.transactional:
            return self._without_foreign_keys(step)
        return self._outside_transaction(step)

    # -- transactions -----------------------------------------------------------

    def _begin(self) -> None:
        """BEGIN IMMEDIATE, waiting for SQLite's write lock within the budget."""
        if self.conn.in_transaction:
            return
        budget = max(0.0, self._deadline - time.monotonic())
        self.conn.execute(f"PRAGMA busy_timeout = {int(budget * 1000)}")
        try:
            self.journal.begin()
        except sqlite3.OperationalError as exc:
            if not (getattr(exc, "sqlite_errorname", "") or "").startswith("SQLITE_BUSY"):
                raise
            done = [r for r in self._results if r.outcome in ("applied", "reverted")]
            state = (
                "nothing of this run was applied"
                if not done
                else f"steps {_versions(done)} of this run stay applied (committed); "
                "the others did not start"
            )
            raise DatabaseBusy(
                "the database is busy: another connection holds a write transaction "
                f"(waited {budget:.1f} s for SQLite's write lock)",
                state=state,
                hint="retry when the application's write transaction ends, or raise --lock-timeout",
            ) from exc

    def _commit(self) -> None:
        """COMMIT the open transaction (after the backup is confirmed, the first time)."""
        if not self.conn.in_transaction:
            return
        self._confirm_backup()
        failpoints.hit("before_commit")
        try:
            self.journal.commit()
        except sqlite3.Error as exc:
            if self.conn.in_transaction:
                self.journal.rollback()
            raise _TransactionLost(None, f"COMMIT failed: {sqlite_reason(exc)}") from exc
        self._segment = len(self._results)

    def _confirm_backup(self) -> None:
        if not self._confirmed:
            self._confirmed = True
            self.hooks.confirm_backup()

    def _lost(self, lost: _TransactionLost) -> MigrationFailed:
        """Record what SQLite's rollback of the whole transaction took; return the error."""
        self.steps.forget()
        undone = [r for r in self._results[self._segment :] if r.outcome != "failed"]
        kept = [r for r in self._results[: self._segment] if r.outcome != "failed"]
        self._results[self._segment :] = [
            attrs.evolve(r, outcome="undone") if r.outcome != "failed" else r
            for r in self._results[self._segment :]
        ]
        step = lost.step
        version = step.version if step is not None else (undone[-1].version if undone else None)
        if lost.failure is not None and step is not None:
            self._record(lost.failure.kind, step, {**lost.failure.data, "transaction_lost": True})
        data: dict[str, Any] = {
            "method": "transaction",
            "undone": [r.version for r in undone],
            "error": lost.reason,
        }
        if step is not None:
            data.update(direction=step.direction, name=step.migration.name)
        self.journal.append(Draft(self.run_id, Kind.ROLLED_BACK, version, data))
        stays = (
            f"steps {_versions(kept)} stay applied (committed earlier)"
            if kept
            else "no step of this run stays applied"
        )
        gone = f"steps {_versions(undone)} of this run were undone with it" if undone else ""
        what = lost.failure.error.what if lost.failure is not None else lost.reason
        cls = type(lost.failure.error) if lost.failure is not None else StepFailed
        return cls(
            f"{what}; SQLite rolled back the whole transaction",
            version=version,
            state="; ".join(p for p in (gone, stays) if p),
            hint="free disk space (or fix the I/O error), then run `schemalog up` again",
        )

    # -- the three ways to run a step ----------------------------------------------

    def _in_transaction(self, step: Step, *, own: bool) -> StepResult:
        self._begin()
        result = self._guarded(step)
        if own:
            self._commit()
        return result

    def _without_foreign_keys(self, step: Step) -> StepResult:
        self._commit()  # PRAGMA foreign_keys is a no-op inside a transaction
        previous = self.conn.execute("PRAGMA foreign_keys").fetchone()[0]
        self.conn.execute("PRAGMA foreign_keys = OFF")
        try:
            self._begin()
            result = self._guarded(step, force_fk_check=True)
            self._commit()
        finally:
            if self.conn.in_transaction:
                self.journal.rollback()
            self.conn.execute(f"PRAGMA foreign_keys = {'ON' if previous else 'OFF'}")
        return result

    def _outside_transaction(self, step: Step) -> StepResult:
        self._commit()
        self._confirm_backup()  # nothing to commit, but about to write outside a transaction
        self.hooks.fresh_backup()
        started = time.perf_counter()
        self._record(Kind.STEP_STARTED, step, start_data(step))
        self.hooks.step_started(step.version, step.migration.filename, step.direction)
        failpoints.hit("after_step_started")
        previous = self.conn.execute("PRAGMA foreign_keys").fetchone()[0]
        if not step.foreign_keys:
            self.conn.execute("PRAGMA foreign_keys = OFF")  # effective: no transaction is open
        try:
            data = self.steps.run(step, force_fk_check=not step.foreign_keys)
        except StepError as exc:
            self.steps.forget()
            self._restore_foreign_keys(previous)
            if signals.pending() is not None:
                self._interrupted(step)
            self._record(exc.kind, step, exc.data)
            self._record(
                Kind.ROLLED_BACK,
                step,
                {"direction": step.direction, "name": step.migration.name, "method": "statement"},
            )
            return self._failed(step, started, exc)
        self._restore_foreign_keys(previous)
        self._record(self._done_kind(step), step, data)
        result = self._succeeded(step, started, data)
        self._segment = len(self._results)  # autocommitted
        return result

    def _restore_foreign_keys(self, previous: int) -> None:
        if self.conn.in_transaction:  # a non-transactional body left one open: end it
            self.conn.execute("ROLLBACK")
        self.conn.execute(f"PRAGMA foreign_keys = {'ON' if previous else 'OFF'}")

    # -- one step inside a transaction ----------------------------------------------

    def _guarded(self, step: Step, *, force_fk_check: bool = False) -> StepResult:
        started = time.perf_counter()
        self._record(Kind.STEP_STARTED, step, start_data(step))
        self.hooks.step_started(step.version, step.migration.filename, step.direction)
        failpoints.hit("after_step_started")
        self.journal.savepoint(_SAVEPOINT)
        try:
            data = self.steps.run(step, force_fk_check=force_fk_check)
            if self.journal.transaction_lost():  # a Python step swallowed SQLite's error
                raise _TransactionLost(step, "the transaction ended inside the step")
            self._record(self._done_kind(step), step, data)
            self.journal.release(_SAVEPOINT)
        except StepError as exc:
            self.steps.forget()
            if signals.pending() is not None:  # SQLite's interrupt ends the whole transaction
                self._interrupted(step)
            if self.journal.transaction_lost():
                raise _TransactionLost(step, exc.error.what, exc) from exc
            self.journal.rollback_to(_SAVEPOINT)
            self._record(exc.kind, step, exc.data)
            self._record(
                Kind.ROLLED_BACK,
                step,
                {"direction": step.direction, "name": step.migration.name, "method": "savepoint"},
            )
            return self._failed(step, started, exc)
        return self._succeeded(step, started, data)

    def _interrupted(self, step: Step) -> None:
        """A signal stopped the step: roll back everything not committed, record, raise."""
        undone = [r.version for r in self._results[self._segment :] if r.outcome != "failed"]
        self.journal.rollback()
        self.journal.append(
            Draft(
                self.run_id,
                Kind.ATTEMPT_INTERRUPTED,
                step.version,
                {
                    "run_id": self.run_id,
                    "direction": step.direction,
                    "name": step.migration.name,
                    "run_interrupted": False,
                    "undone": undone,
                },
            )
        )
        kept = [r.version for r in self._results[: self._segment] if r.outcome != "failed"]
        signum = signals.pending() or 2
        state = f"{step.migration.filename} was rolled back"
        if undone:
            state += f", and steps {', '.join(map(str, undone))} of this run with it"
        state += (
            f"; steps {', '.join(map(str, kept))} stay applied"
            if kept
            else "; the run applied nothing"
        )
        raise Interrupted(
            f"{step.direction} of {step.migration.filename} stopped by {signals.name(signum)}",
            signum=signum,
            state=state,
            hint=f"run `schemalog {step.direction}` again when ready",
        )

    # -- events and results ----------------------------------------------------------

    def _record(self, kind: Kind, step: Step, data: dict[str, Any]) -> None:
        self.journal.append(Draft(self.run_id, kind, step.version, data))

    @staticmethod
    def _done_kind(step: Step) -> Kind:
        return Kind.STEP_APPLIED if step.direction == "up" else Kind.STEP_REVERTED

    def _succeeded(self, step: Step, started: float, data: dict[str, Any]) -> StepResult:
        outcome = "applied" if step.direction == "up" else "reverted"
        self.hooks.step_done(step.version, step.migration.name, step.direction, outcome)
        result = StepResult(
            step.version,
            step.migration.name,
            step.direction,
            outcome,
            int((time.perf_counter() - started) * 1000),
            int(data.get("statements", 0)),
        )
        self._results.append(result)
        return result

    def _failed(self, step: Step, started: float, exc: StepError) -> StepResult:
        self._last_error = exc.error
        self.hooks.step_done(step.version, step.migration.name, step.direction, "failed")
        result = StepResult(
            step.version,
            step.migration.name,
            step.direction,
            "failed",
            int((time.perf_counter() - started) * 1000),
            0,
            exc.error.what,
        )
        self._results.append(result)
        return result


def _versions(results: list[StepResult]) -> str:
    return ", ".join(str(r.version) for r in results)
