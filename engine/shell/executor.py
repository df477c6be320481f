"""The executor: applies or reverts the steps of a `Plan`, each all-or-nothing.

Per step: `step_started`, SAVEPOINT, the step's SQL (or Python function),
its verify queries, `PRAGMA foreign_key_check`, for `down` the schema check
against the fingerprint recorded before `up`, `PRAGMA user_version`, and
`step_applied`/`step_reverted` — all inside the transaction. On any error the
savepoint is rolled back (the database holds nothing of the step) and
`step_failed`/`verification_failed` plus `rolled_back` are recorded; the run stops.

Transactions: with `per_step_commit=False` consecutive ordinary steps share one
transaction (one commit for the run, a savepoint per step); with True each step
commits. Steps with `foreign_keys = False` get a transaction of their own with
enforcement turned off before BEGIN (a no-op inside one) and restored on every
path. Steps with `transactional = False` run in autocommit mode right after a
fresh backup, and a failure restores that backup.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any

import attrs

from schemalog.engine.base.errors import MigrationFailed, StepFailed, VerificationFailed
from schemalog.engine.core.fingerprint import schema_fingerprint
from schemalog.engine.core.plan import Plan, Step
from schemalog.journal import failpoints
from schemalog.journal.events import Draft, Kind
from schemalog.journal.journal import Journal

__all__ = ["Executor", "RunResult", "StepResult"]

_SAVEPOINT = "schemalog_step"
_MAX_SQL = 500


@attrs.frozen
class StepResult:
    """What happened to one step."""

    version: int
    name: str
    direction: str
    outcome: str  # applied | reverted | failed
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


class Executor:
    """Runs plans on one connection, recording every step in `journal`."""

    def __init__(
        self,
        journal: Journal,
        run_id: str,
        *,
        per_step_commit: bool = False,
        fresh_backup: Callable[[], Any] | None = None,
        restore_backup: Callable[[Any], None] | None = None,
        before_first_commit: Callable[[], None] | None = None,
        log: Any = None,
    ) -> None:
        self.journal = journal
        self.conn = journal.conn
        self.run_id = run_id
        self.per_step_commit = per_step_commit
        self.fresh_backup = fresh_backup
        self.restore_backup = restore_backup
        # Called (once) inside the transaction right before the run's first COMMIT: the
        # engine waits there for the background check of the run's backup.
        self.before_first_commit = before_first_commit
        self.log = log

    # -- the run ---------------------------------------------------------------

    def execute(self, plan: Plan) -> RunResult:
        """Run every step of `plan` in order; stop at the first failure.

        May be entered with a transaction open (the run's first segment); leaves
        none open. Raises only for errors outside a step (I/O on the journal,
        interrupts): the open transaction is rolled back first.
        """
        results: list[StepResult] = []
        error: MigrationFailed | None = None
        try:
            for step in plan.steps:
                if step.transactional and step.foreign_keys:
                    result = self._in_transaction(step, own=self.per_step_commit)
                elif step.transactional:
                    result = self._without_foreign_keys(step)
                else:
                    result = self._outside_transaction(step)
                results.append(result)
                if result.outcome == "failed":
                    error = self._last_error
                    break
            self._commit()
        except BaseException:
            self._fp_cache = None
            self.journal.rollback()
            raise
        return RunResult(tuple(results), error)

    _last_error: MigrationFailed | None = None

    def _commit(self) -> None:
        if self.conn.in_transaction:
            self._run_first_commit_hook()
            failpoints.hit("before_commit")
            self.journal.commit()

    def _run_first_commit_hook(self) -> None:
        if self.before_first_commit is not None:
            hook, self.before_first_commit = self.before_first_commit, None
            hook()

    def _begin(self) -> None:
        if not self.conn.in_transaction:
            self.journal.begin()

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
        self._run_first_commit_hook()  # nothing to commit, but about to write outside a transaction
        backup = self.fresh_backup() if self.fresh_backup else None
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
            self._record(exc.kind, step, exc.data)
            if backup is not None and self.restore_backup is not None:
                self.restore_backup(backup)
                method = "restored_backup"
            else:
                method = "none"
            self._record(
                Kind.ROLLED_BACK,
                step,
                {"direction": step.direction, "name": step.migration.name, "method": method},
            )
            return self._failed(step, started, exc)
        self._restore_foreign_keys(previous)
        self._record(self._done_kind(step), step, data)
        return self._succeeded(step, started, data)

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
            if not self.conn.in_transaction:
                self.journal.adopt_commit()
                raise _StepError(
                    Kind.STEP_FAILED,
                    self._fail_data(step, "the migration ended the transaction itself", None, None),
                    StepFailed(
                        f"{step.migration.filename} committed or rolled back the transaction itself",
                        version=step.version,
                        state="statements before that point may be committed; the journal did not record the step",
                        hint="remove COMMIT/ROLLBACK from the migration, then run `schemalog verify`",
                    ),
                )
            self._record(self._done_kind(step), step, data)
            self.journal.release(_SAVEPOINT)
        except _StepError as exc:
            self._fp_cache = None
            if self.conn.in_transaction:
                self.journal.rollback_to(_SAVEPOINT)
            self._record(exc.kind, step, exc.data)
            self._record(
                Kind.ROLLED_BACK,
                step,
                {"direction": step.direction, "name": step.migration.name, "method": "savepoint"},
            )
            return self._failed(step, started, exc)
        return self._succeeded(step, started, data)

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
        self.conn.execute(f"PRAGMA user_version = {int(step.target_version)}")
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
                    self._fail_data(step, error, "python function", None),
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
                raise _StepError(
                    Kind.STEP_FAILED,
                    self._fail_data(step, str(exc), stmt, position, exc),
                    StepFailed(
                        f"{mig.filename} ({step.direction}) statement {position} failed: {exc}",
                        version=step.version,
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
        if not force and not self.conn.execute("PRAGMA foreign_keys").fetchone()[0]:
            return
        rows = self.conn.execute("PRAGMA foreign_key_check").fetchmany(5)
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

    _fp_cache: tuple[int, str] | None = None

    def _fingerprint(self) -> str:
        """The schema fingerprint, reused while `PRAGMA schema_version` is unchanged.

        The cache holds only the latest value and is dropped on every rollback
        (a rollback can bring an old schema_version back with another schema).
        """
        cookie = self.conn.execute("PRAGMA schema_version").fetchone()[0]
        if self._fp_cache is not None and self._fp_cache[0] == cookie:
            return self._fp_cache[1]
        value = schema_fingerprint(self.conn)
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
        if self.log is not None:
            self.log.info(f"step {outcome}", version=step.version, name=step.migration.name)
        return StepResult(
            step.version,
            step.migration.name,
            step.direction,
            outcome,
            int((time.perf_counter() - started) * 1000),
            int(data.get("statements", 0)),
        )

    def _failed(self, step: Step, started: float, exc: _StepError) -> StepResult:
        self._last_error = exc.error
        if self.log is not None:
            self.log.error("step failed", version=step.version, error=exc.error.what)
        return StepResult(
            step.version,
            step.migration.name,
            step.direction,
            "failed",
            int((time.perf_counter() - started) * 1000),
            0,
            exc.error.what,
        )


def _deny_transaction_control(action: int, *_args: object) -> int:
    if action in (sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_SAVEPOINT):
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


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
