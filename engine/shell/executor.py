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
from schemalog.engine.base.errors import (
    DatabaseBusy,
    MigrationFailed,
    StepFailed,
    VerificationFailed,
)
from schemalog.engine.core.fingerprint import schema_fingerprint
from schemalog.engine.core.plan import Plan, Step
from schemalog.engine.files.migration import Migration
from schemalog.engine.shell import signals
from schemalog.journal import failpoints
from schemalog.journal.events import Draft, Kind
from schemalog.journal.journal import Journal
from schemalog.journal.replay import BackupRecord

__all__ = ["Executor", "Hooks", "RunResult", "StepResult"]

_SAVEPOINT = "schemalog_step"
_MAX_SQL = 500


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


class _StepError(Exception):
    """Internal: a step failed; carries the event to record and the user-facing error."""

    def __init__(self, kind: Kind, data: dict[str, Any], error: MigrationFailed) -> None:
        super().__init__(error.message)
        self.kind = kind
        self.data = data
        self.error = error


class _TransactionLost(Exception):
    """Internal: SQLite rolled the whole open transaction back by itself."""

    def __init__(self, step: Step | None, reason: str, failure: _StepError | None = None) -> None:
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
        self._fp_cache: tuple[int, str] | None = None

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
            self._fp_cache = None
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
        self._fp_cache = None
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
        self._record(Kind.STEP_STARTED, step, self._start_data(step))
        failpoints.hit("after_step_started")
        previous = self.conn.execute("PRAGMA foreign_keys").fetchone()[0]
        if not step.foreign_keys:
            self.conn.execute("PRAGMA foreign_keys = OFF")  # effective: no transaction is open
        try:
            data = self._run_step(step, force_fk_check=not step.foreign_keys)
        except _StepError as exc:
            self._fp_cache = None
            self._restore_foreign_keys(previous)
            signals.check()
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
        self._record(Kind.STEP_STARTED, step, self._start_data(step))
        failpoints.hit("after_step_started")
        self.journal.savepoint(_SAVEPOINT)
        try:
            data = self._run_step(step, force_fk_check=force_fk_check)
            if self.journal.transaction_lost():  # a Python step swallowed SQLite's error
                raise _TransactionLost(step, "the transaction ended inside the step")
            self._record(self._done_kind(step), step, data)
            self.journal.release(_SAVEPOINT)
        except _StepError as exc:
            self._fp_cache = None
            if self.journal.transaction_lost():
                raise _TransactionLost(step, exc.error.what, exc) from exc
            if signals.pending() is not None:
                self._interrupted(step)
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
        signals.check()

    def _run_step(self, step: Step, *, force_fk_check: bool) -> dict[str, Any]:
        """Run the step's body and checks; raise _StepError; return the success payload."""
        mig = step.migration
        started = time.perf_counter()
        before = self._fingerprint()
        code = mig.up if step.direction == "up" else mig.down
        count = self._run_body(step, code)
        if step.direction == "up":
            self._run_verify(step)
        self._check_foreign_keys(step, force=force_fk_check)
        after = self._fingerprint()
        if (
            step.direction == "down"
            and step.expect_fingerprint
            and after != step.expect_fingerprint
        ):
            raise _StepError(
                Kind.VERIFICATION_FAILED,
                {
                    "direction": "down",
                    "name": mig.name,
                    "check": "fingerprint",
                    "expected": step.expect_fingerprint,
                    "actual": after,
                    "error": "schema after revert differs from the schema before the migration",
                },
                VerificationFailed(
                    f"reverting {mig.filename} did not restore the schema recorded before it was applied",
                    version=step.version,
                    state="the revert was rolled back; the database is unchanged",
                    hint="fix `down` so it undoes `up` exactly (compare with `schemalog verify`)",
                ),
            )
        self._execute(step, f"PRAGMA user_version = {int(step.target_version)}")
        data: dict[str, Any] = {
            "direction": step.direction,
            "name": mig.name,
            "checksum": mig.checksum,
            "statements": count,
            "duration_ms": int((time.perf_counter() - started) * 1000),
            "fingerprint_before": before,
            "fingerprint_after": after,
        }
        if step.direction == "down":
            data["to_version"] = step.target_version
        return data

    def _execute(self, step: Step, sql: str) -> None:
        """Run schemalog's own statement of a step; an SQLite error fails the step."""
        try:
            self.conn.execute(sql)
        except sqlite3.Error as exc:
            raise _StepError(
                Kind.STEP_FAILED,
                self._fail_data(step, str(exc), sql, None, exc),
                StepFailed(
                    f"{step.migration.filename} ({step.direction}) failed: {sqlite_reason(exc)}",
                    version=step.version,
                ),
            ) from exc

    def _run_body(self, step: Step, code: Any) -> int:
        mig = step.migration
        if step.statements is None:
            guard = step.transactional
            if guard:
                # The transaction belongs to schemalog: COMMIT, ROLLBACK, SAVEPOINT and
                # RELEASE from the migration's function are refused ("not authorized"), so
                # a step can never commit half of itself or undo earlier steps.
                self.conn.set_authorizer(_deny_transaction_control)
            try:
                code(self.conn)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                hint = None
                if (
                    guard
                    and isinstance(exc, sqlite3.DatabaseError)
                    and "not authorized" in str(exc)
                ):
                    error = "the function tried to end or nest schemalog's transaction"
                    hint = "remove commit()/rollback()/executescript()/SAVEPOINT from the function"
                raise _StepError(
                    Kind.STEP_FAILED,
                    self._fail_data(step, error, "python function", None, exc),
                    StepFailed(
                        f"{mig.filename} ({step.direction}) failed: {error}",
                        version=step.version,
                        hint=hint,
                    ),
                ) from exc
            finally:
                if guard:
                    self.conn.set_authorizer(None)
            return 0
        for position, stmt in enumerate(step.statements, start=1):
            try:
                self.conn.execute(stmt)
            except sqlite3.Error as exc:
                state = None
                if not step.transactional:
                    state = (
                        f"statements 1-{position - 1} of the step ran and stay (it runs outside a "
                        f"transaction); statement {position} was rolled back by SQLite; the "
                        "migration is not recorded as applied"
                        if position > 1
                        else "statement 1 was rolled back by SQLite; the database is unchanged"
                    )
                raise _StepError(
                    Kind.STEP_FAILED,
                    {
                        **self._fail_data(step, str(exc), stmt, position, exc),
                        "completed": position - 1,
                    },
                    StepFailed(
                        f"{mig.filename} ({step.direction}) statement {position} failed: {exc}",
                        version=step.version,
                        state=state,
                        hint=f"fix statement {position}: {_clip(stmt, 80)}",
                    ),
                ) from exc
        return len(step.statements)

    def _run_verify(self, step: Step) -> None:
        mig = step.migration
        for position, query in enumerate(mig.verify, start=1):
            result: Any = None
            error = None
            try:
                rows = self.conn.execute(query).fetchmany(2)
                result = [list(r) for r in rows]
                ok = len(rows) == 1 and len(rows[0]) >= 1 and bool(rows[0][0])
                if not ok:
                    error = f"returned {_clip(repr(result), 120)}, expected one row with a true first column"
            except sqlite3.Error as exc:
                error = str(exc)
            if error is not None:
                raise _StepError(
                    Kind.VERIFICATION_FAILED,
                    {
                        "direction": step.direction,
                        "name": mig.name,
                        "check": "verify",
                        "query": _clip(query, _MAX_SQL),
                        "position": position,
                        "result": _jsonable(result),
                        "error": error,
                    },
                    VerificationFailed(
                        f"{mig.filename}: verify query {position} failed ({error})",
                        version=step.version,
                        hint=f"fix the migration or the query: {_clip(query, 80)}",
                    ),
                )

    def _check_foreign_keys(self, step: Step, *, force: bool) -> None:
        try:
            if not force and not self.conn.execute("PRAGMA foreign_keys").fetchone()[0]:
                return
            rows = self.conn.execute("PRAGMA foreign_key_check").fetchmany(5)
        except sqlite3.Error as exc:
            raise _StepError(
                Kind.STEP_FAILED,
                self._fail_data(step, str(exc), "PRAGMA foreign_key_check", None, exc),
                StepFailed(
                    f"{step.migration.filename}: the foreign key check failed to run: {sqlite_reason(exc)}",
                    version=step.version,
                ),
            ) from exc
        if rows:
            sample = [list(r) for r in rows]
            raise _StepError(
                Kind.VERIFICATION_FAILED,
                {
                    "direction": step.direction,
                    "name": step.migration.name,
                    "check": "foreign_key_check",
                    "result": _jsonable(sample),
                    "error": "foreign key violations",
                },
                VerificationFailed(
                    f"{step.migration.filename}: foreign key check failed "
                    f"(first: table {rows[0][0]} rowid {rows[0][1]} -> {rows[0][2]})",
                    version=step.version,
                    hint="make the migration keep every reference valid",
                ),
            )

    def _fingerprint(self) -> str:
        """The schema fingerprint, reused while `PRAGMA schema_version` is unchanged.

        The cache holds only the latest value and is dropped on every rollback (a rollback
        can bring an old schema_version back with another schema).
        """
        try:
            cookie = self.conn.execute("PRAGMA schema_version").fetchone()[0]
            if self._fp_cache is not None and self._fp_cache[0] == cookie:
                return self._fp_cache[1]
            value = schema_fingerprint(self.conn)
        except sqlite3.Error as exc:
            raise _StepError(
                Kind.STEP_FAILED,
                {
                    "error": str(exc),
                    "statement": None,
                    "position": None,
                    "sqlite_error": getattr(exc, "sqlite_errorname", None),
                },
                StepFailed(f"reading the schema failed: {sqlite_reason(exc)}"),
            ) from exc
        self._fp_cache = (cookie, value)
        return value

    # -- events and results ----------------------------------------------------------

    def _record(self, kind: Kind, step: Step, data: dict[str, Any]) -> None:
        self.journal.append(Draft(self.run_id, kind, step.version, data))

    def _start_data(self, step: Step) -> dict[str, Any]:
        return {
            "direction": step.direction,
            "name": step.migration.name,
            "checksum": step.migration.checksum,
            "transactional": step.transactional,
            "foreign_keys": step.foreign_keys,
        }

    @staticmethod
    def _done_kind(step: Step) -> Kind:
        return Kind.STEP_APPLIED if step.direction == "up" else Kind.STEP_REVERTED

    def _fail_data(
        self,
        step: Step,
        error: str,
        statement: str | None,
        position: int | None,
        exc: BaseException | None = None,
    ) -> dict[str, Any]:
        return {
            "direction": step.direction,
            "name": step.migration.name,
            "statement": _clip(statement, _MAX_SQL) if statement else None,
            "position": position,
            "error": error,
            "sqlite_error": getattr(exc, "sqlite_errorname", None),
        }

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

    def _failed(self, step: Step, started: float, exc: _StepError) -> StepResult:
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


def _deny_transaction_control(action: int, *_args: object) -> int:
    if action in (sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_SAVEPOINT):
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def _versions(results: list[StepResult]) -> str:
    return ", ".join(str(r.version) for r in results)


def _clip(text: str | None, limit: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _jsonable(value: Any) -> Any:
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    return value
