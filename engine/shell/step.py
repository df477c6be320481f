"""One step's work inside the executor's transaction: its body, its checks, its payloads.

`StepRunner.run(step)` runs the step's SQL statements (or Python function, with transaction
control refused by an SQLite authorizer), its verify queries, `PRAGMA foreign_key_check`,
for `down` the schema check against the fingerprint recorded before `up`, and
`PRAGMA user_version`; it returns the success payload or raises `StepError` carrying the
failure event and the user-facing error. It never begins, commits or rolls back anything:
transactions are the executor's.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from schemalog.engine.base.connection import sqlite_reason
from schemalog.engine.base.errors import MigrationFailed, StepFailed, VerificationFailed
from schemalog.engine.base.readonly import query_read_only
from schemalog.engine.core.fingerprint import fingerprint_rows, schema_rows
from schemalog.engine.core.plan import Step
from schemalog.engine.core.schema import Row, expected_before, schema_changes, schema_from_rows
from schemalog.engine.core.schema_diff import UNKNOWN, diff_schemas
from schemalog.journal.events import Kind

__all__ = ["StepError", "StepRunner", "clip", "start_data"]

_MAX_SQL = 500


class StepError(Exception):
    """A step failed: carries the event to record and the user-facing error."""

    def __init__(self, kind: Kind, data: dict[str, Any], error: MigrationFailed) -> None:
        super().__init__(error.message)
        self.kind = kind
        self.data = data
        self.error = error


class StepRunner:
    """Runs steps on one connection; caches the schema fingerprint between them."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._fp_cache: tuple[int, list[Row], str] | None = None

    def forget(self) -> None:
        """Drop the cached fingerprint (after any rollback)."""
        self._fp_cache = None

    def run(self, step: Step, *, force_fk_check: bool) -> dict[str, Any]:
        """Run the step's body and checks; raise StepError; return the success payload."""
        mig = step.migration
        started = time.perf_counter()
        before = self.fingerprint()
        before_rows = self.rows()
        code = mig.up if step.direction == "up" else mig.down
        count = self._run_body(step, code)
        if step.direction == "up":
            self._run_verify(step)
        self._check_foreign_keys(step, force=force_fk_check)
        after = self.fingerprint()
        if (
            step.direction == "down"
            and step.expect_fingerprint
            and after != step.expect_fingerprint
        ):
            raise _not_restored(step, before_rows, self.rows(), after)
        self._execute(step, f"PRAGMA user_version = {int(step.target_version)}")
        data: dict[str, Any] = {
            "direction": step.direction,
            "name": mig.name,
            "file": mig.filename,
            "checksum": mig.checksum,
            "statements": count,
            "duration_ms": int((time.perf_counter() - started) * 1000),
            "fingerprint_before": before,
            "fingerprint_after": after,
            "schema_changes": schema_changes(before_rows, self.rows()),
        }
        if step.direction == "down":
            data["to_version"] = step.target_version
        return data

    def _execute(self, step: Step, sql: str) -> None:
        """Run schemalog's own statement of a step; an SQLite error fails the step."""
        try:
            self.conn.execute(sql)
        except sqlite3.Error as exc:
            raise StepError(
                Kind.STEP_FAILED,
                self.fail_data(step, str(exc), sql, None, exc),
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
                raise StepError(
                    Kind.STEP_FAILED,
                    self.fail_data(step, error, "python function", None, exc),
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
                hint = f"fix statement {position}: {clip(stmt, 80)}"
                if _not_the_migrations_fault(exc):
                    hint = "the statement is not at fault: " + _ENVIRONMENT_HINT
                raise StepError(
                    Kind.STEP_FAILED,
                    {
                        **self.fail_data(step, str(exc), stmt, position, exc),
                        "completed": position - 1,
                    },
                    StepFailed(
                        f"{mig.filename} ({step.direction}) statement {position} failed: "
                        f"{sqlite_reason(exc)}",
                        version=step.version,
                        state=state,
                        hint=hint,
                    ),
                ) from exc
        return len(step.statements)

    def _run_verify(self, step: Step) -> None:
        mig = step.migration
        for position, query in enumerate(mig.verify, start=1):
            result: Any = None
            error = None
            try:
                rows = query_read_only(self.conn, query)  # a verify query never writes
                result = [list(r) for r in rows]
                ok = len(rows) == 1 and len(rows[0]) >= 1 and bool(rows[0][0])
                if not ok:
                    error = f"returned {clip(repr(result), 120)}, expected one row with a true first column"
            except sqlite3.Error as exc:
                error = str(exc)
            if error is not None:
                raise StepError(
                    Kind.VERIFICATION_FAILED,
                    {
                        "direction": step.direction,
                        "name": mig.name,
                        "check": "verify",
                        "query": clip(query, _MAX_SQL),
                        "position": position,
                        "result": _jsonable(result),
                        "error": error,
                    },
                    VerificationFailed(
                        f"{mig.filename}: verify query {position} failed ({error})",
                        version=step.version,
                        hint=f"fix the migration or the query: {clip(query, 80)}",
                    ),
                )

    def _check_foreign_keys(self, step: Step, *, force: bool) -> None:
        try:
            if not force and not self.conn.execute("PRAGMA foreign_keys").fetchone()[0]:
                return
            rows = self.conn.execute("PRAGMA foreign_key_check").fetchmany(5)
        except sqlite3.Error as exc:
            raise StepError(
                Kind.STEP_FAILED,
                self.fail_data(step, str(exc), "PRAGMA foreign_key_check", None, exc),
                StepFailed(
                    f"{step.migration.filename}: the foreign key check failed to run: {sqlite_reason(exc)}",
                    version=step.version,
                ),
            ) from exc
        if rows:
            sample = [list(r) for r in rows]
            raise StepError(
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

    def fingerprint(self) -> str:
        """The schema fingerprint, reused while `PRAGMA schema_version` is unchanged.

        The cache holds only the latest value and is dropped on every rollback (a rollback
        can bring an old schema_version back with another schema).
        """
        return self._schema()[2]

    def rows(self) -> list[Row]:
        """The schema rows (`schema_rows`), cached like `fingerprint`."""
        return self._schema()[1]

    def _schema(self) -> tuple[int, list[Row], str]:
        try:
            cookie = self.conn.execute("PRAGMA schema_version").fetchone()[0]
            if self._fp_cache is not None and self._fp_cache[0] == cookie:
                return self._fp_cache
            rows = schema_rows(self.conn)
            value = fingerprint_rows(rows)
        except sqlite3.Error as exc:
            raise StepError(
                Kind.STEP_FAILED,
                {
                    "error": str(exc),
                    "statement": None,
                    "position": None,
                    "sqlite_error": getattr(exc, "sqlite_errorname", None),
                },
                StepFailed(f"reading the schema failed: {sqlite_reason(exc)}"),
            ) from exc
        self._fp_cache = (cookie, rows, value)
        return self._fp_cache

    def fail_data(
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
            "checksum": step.migration.checksum,
            "statement": clip(statement, _MAX_SQL) if statement else None,
            "position": position,
            "error": error,
            "sqlite_error": getattr(exc, "sqlite_errorname", None),
        }


_ENVIRONMENT_HINT = (
    "free disk space (or fix the I/O error, the permissions), then run the command again"
)
_ENVIRONMENT_ERRORS = (
    "SQLITE_FULL",
    "SQLITE_IOERR",
    "SQLITE_READONLY",
    "SQLITE_CANTOPEN",
    "SQLITE_NOMEM",
)


def _not_the_migrations_fault(exc: sqlite3.Error) -> bool:
    """Whether SQLite failed because of the disk or the system, not the statement."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    return name.startswith(_ENVIRONMENT_ERRORS)


def _not_restored(step: Step, before: list[Row], after: list[Row], actual: str) -> StepError:
    """The failure of a `down` whose revert left another schema than the one before `up`.

    What differs is named when the `up` recorded its `schema_changes`: the schema before `up`
    is the one before this revert with those changes undone.
    """
    mig = step.migration
    expected = expected_before(before, step.expect_changes, step.expect_fingerprint or "")
    diff = diff_schemas(expected, schema_from_rows(after)) if expected is not None else None
    what = diff.text() if diff else UNKNOWN
    error = VerificationFailed(
        f"reverting {mig.filename} did not restore the schema recorded before it was "
        f"applied: {what}",
        version=step.version,
        state="the revert was rolled back; the database is unchanged",
        hint="fix `down` so it undoes `up` exactly (`schemalog check` tests the round trip)",
    )
    error.diff = diff  # type: ignore[attr-defined]
    return StepError(
        Kind.VERIFICATION_FAILED,
        {
            "direction": "down",
            "name": mig.name,
            "check": "fingerprint",
            "expected": step.expect_fingerprint,
            "actual": actual,
            "error": "schema after revert differs from the schema before the migration",
            "diff": diff.to_json() if diff is not None else None,
        },
        error,
    )


def start_data(step: Step) -> dict[str, Any]:
    """The payload of `step_started`."""
    return {
        "direction": step.direction,
        "name": step.migration.name,
        "file": step.migration.filename,
        "checksum": step.migration.checksum,
        "transactional": step.transactional,
        "foreign_keys": step.foreign_keys,
    }


def _deny_transaction_control(action: int, *_args: object) -> int:
    if action in (sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_SAVEPOINT):
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def clip(text: str | None, limit: int) -> str:
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
