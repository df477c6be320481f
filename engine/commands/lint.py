"""`lint`: find the traps in migrations before they run, on a scratch copy; never the database.

The scratch database is `check`'s (`copy_database`, `scratch_settings`): a copy of the
configured database when there is one, so the rules that depend on the data see it (the
pending migrations are linted), or, with `every` or without a database, an empty database
(every migration is linted). For each migration, in order:

1. the rules that need only the file (`engine.core.lint.static`);
2. its `up`, statement by statement, inside a transaction on the scratch database that is
   rolled back afterwards: before each statement the data rules (`engine.core.lint.data`),
   after it the rows it touched (SL701); a statement that fails there is reported under the
   most specific code (SL201, SL202, SL302, else SL001). A Python `up` runs as a whole with
   its statements traced; a `transactional = False` migration is not run here (it cannot be
   rolled back);
3. `check`'s round trip (`check_one`: up, verify, down, same schema, up again), which moves the
   scratch database on to the migration's version and finds a `down` that does not restore
   the schema (SL402, with the objects that differ).

A migration that fails on the scratch copy does not stop lint: the later ones are linted
without it (their findings say so). Allow comments (`engine.core.lint.rules`) silence a rule
for their file; silenced findings are listed apart, with their reasons. The configured
database and its journal are only read (copied); the scratch directory is removed afterwards.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import attrs

from schemalog.engine.base.connection import open_database
from schemalog.engine.base.context import Context
from schemalog.engine.base.errors import CheckFailed, MigrationFileError
from schemalog.engine.commands.check import FAILED, check_one, copy_database, scratch_settings
from schemalog.engine.commands.inspect import replay
from schemalog.engine.commands.recover import recover
from schemalog.engine.core.lint.data import before_statement, failure_code, table_rows
from schemalog.engine.core.lint.rules import RULES, Finding, allows_in, finding
from schemalog.engine.core.lint.statements import Statement, classify
from schemalog.engine.core.lint.static import file_findings, statement_findings
from schemalog.engine.files.migration import Migration
from schemalog.engine.files.registry import load_registry
from schemalog.engine.files.sqlsplit import split_statements

__all__ = ["LONG_ROWS", "LintReport", "lint"]

#: Statements touching at least this many rows are reported as long rewrites (SL701).
LONG_ROWS = 100_000
_ROW_COUNTED = ("create_index", "create_unique_index", "drop_column")


@attrs.frozen
class LintReport:
    """What `lint` found: `findings` (errors first), and the findings allow comments silenced."""

    source: str  # "copy" or "empty"
    description: str
    migrations: list[str]
    findings: list[Finding]
    allowed: list[dict[str, Any]]
    errors: int
    warnings: int


def lint(
    ctx: Context,
    *,
    every: bool = False,
    long_rows: int = LONG_ROWS,
    workdir: Path | None = None,
) -> LintReport:
    """Lint the pending migrations on a copy of the database (`every`: all, from empty).

    Never changes the database or its journal. Returns the report; raises CheckFailed (exit 1,
    `report` attached) when a finding is an error, and the UsageError of a malformed migration
    file or set of files (exit 2) before anything runs.
    """
    registry = load_registry(ctx.settings.migrations)
    settings = ctx.settings
    source = settings.database if settings.database is not None else None
    copy = not every and source is not None and source.exists()
    with tempfile.TemporaryDirectory(prefix="schemalog-lint-", dir=workdir) as tmp:
        scratch = Context(scratch_settings(settings, Path(tmp)), functions=ctx.functions)
        db = scratch.settings.paths.database
        assert db is not None
        if copy:
            assert source is not None
            copy_database(source, settings.paths.jsonl, db, scratch.settings.paths.jsonl)
            recover(scratch)  # the scratch copy, as the next real command would find it
            description = f"pending migrations, on a copy of {source}"
        else:
            description = "every migration, from an empty database"
        start = replay(scratch).version if db.exists() else 0
        todo = [registry.migration(m.version) for m in registry if m.version > start]
        findings: list[Finding] = []
        failed: Migration | None = None
        for mig in todo:
            found = _lint_one(scratch, db, mig, long_rows, advance=failed is None)
            if failed is not None:
                found = [_without(f, failed) for f in found]
            findings += found
            if failed is None and _blocked(scratch, db, mig):
                failed = mig
    kept, allowed = _apply_allows(todo, findings)
    kept.sort(key=lambda f: (f.severity != "error", f.version, f.position or 0, f.code))
    errors = sum(1 for f in kept if f.severity == "error")
    report = LintReport(
        source="copy" if copy else "empty",
        description=description,
        migrations=[m.filename for m in todo],
        findings=kept,
        allowed=allowed,
        errors=errors,
        warnings=len(kept) - errors,
    )
    if errors:
        first = next(f for f in kept if f.severity == "error")
        error = CheckFailed(
            f"lint found {errors} error(s) and {report.warnings} warning(s); first: "
            f"{first.file}: {first.code} {first.message}",
            state="the database was not touched",
            hint="fix the migration, or allow the finding in its file: "
            f"`-- schemalog: allow {first.code} <reason>` (schemalog help lint)",
        )
        error.report = report  # type: ignore[attr-defined]
        raise error
    return report


def _lint_one(
    ctx: Context, db: Path, mig: Migration, long_rows: int, *, advance: bool
) -> list[Finding]:
    """Every finding about `mig`; with `advance`, the scratch database ends at its version."""
    text = mig.path.read_bytes().decode("utf-8", errors="replace")
    found = file_findings(mig, text)
    for step, code in (("up", mig.up), ("down", mig.down)):
        if isinstance(code, str):
            for stmt in _statements(code):
                found += statement_findings(mig, stmt, step)
    dry = _dry_run(ctx, db, mig, long_rows)
    if any(f.code == "SL501" for f in found):  # the refused commit() is already explained
        dry = [f for f in dry if f.code != "SL501"]
    found += dry
    if advance and not any(f.code in _FATAL and f.severity == "error" for f in found):
        try:
            result = check_one(ctx, db, mig)
        except MigrationFileError as exc:  # refused when planned: not run
            found.append(finding("SL001", mig.version, mig.filename, exc.what))
            return _unique(found)
        if result.outcome == FAILED:
            schema = result.detail.startswith(("down:", "schema:")) and "schema" in result.detail
            code = "SL402" if schema else "SL001"
            found.append(finding(code, mig.version, mig.filename, result.detail))
    return _unique(found)


_FATAL = ("SL001", "SL201", "SL202", "SL302", "SL501", "SL502")  # the up cannot run


def _statements(code: str) -> list[Statement]:
    return [classify(sql, position) for position, sql in enumerate(split_statements(code), 1)]


def _dry_run(ctx: Context, db: Path, mig: Migration, long_rows: int) -> list[Finding]:
    """Run `mig`'s up on the scratch database in a transaction that is rolled back."""
    if not mig.transactional:
        return []
    with closing(open_database(db, mode="rwc", functions=ctx.functions)) as conn:
        conn.execute(f"PRAGMA foreign_keys = {'ON' if mig.foreign_keys else 'OFF'}")
        conn.execute("BEGIN IMMEDIATE")
        try:
            if isinstance(mig.up, str):
                return _run_statements(conn, mig, _statements(mig.up), long_rows)
            return _run_function(conn, mig, long_rows)
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")


def _run_statements(
    conn: sqlite3.Connection, mig: Migration, statements: list[Statement], long_rows: int
) -> list[Finding]:
    found: list[Finding] = []
    for i, stmt in enumerate(statements):
        if stmt.kind in ("transaction", "vacuum"):
            return found  # reported by the static rules; running it would end the transaction
        found += before_statement(conn, mig, stmt, statements[i + 1 :])
        counted = table_rows(conn, stmt.table) if stmt.kind in _ROW_COUNTED and stmt.table else None
        changes, started = conn.total_changes, time.perf_counter()
        try:
            conn.execute(stmt.sql)
        except sqlite3.Error as exc:
            code = failure_code(stmt, str(exc))
            if not any(f.code == code for f in found):  # already explained before it ran
                found.append(
                    finding(
                        code,
                        mig.version,
                        mig.filename,
                        f"up statement {stmt.position} fails on the scratch copy: {exc}",
                        statement=stmt.sql,
                        position=stmt.position,
                        severity="error",
                    )
                )
            return found
        touched = counted if counted is not None else conn.total_changes - changes
        found += _long(mig, stmt, touched, time.perf_counter() - started, long_rows)
    return found


def _run_function(conn: sqlite3.Connection, mig: Migration, long_rows: int) -> list[Finding]:
    traced: list[str] = []
    conn.set_trace_callback(traced.append)
    conn.set_authorizer(_deny_transaction_control)
    changes, started = conn.total_changes, time.perf_counter()
    try:
        assert callable(mig.up)
        mig.up(conn)
    except Exception as exc:
        return [
            finding(
                "SL501" if "not authorized" in str(exc) else "SL001",
                mig.version,
                mig.filename,
                f"up (a Python function) fails on the scratch copy: {type(exc).__name__}: {exc}",
                statement="python function",
            )
        ]
    finally:
        conn.set_trace_callback(None)
        conn.set_authorizer(None)
    found: list[Finding] = []
    for position, sql in enumerate(traced, start=1):
        found += statement_findings(mig, classify(sql, position), "up")
    stmt = Statement("python function", 0, "other")
    found += _long(
        mig, stmt, conn.total_changes - changes, time.perf_counter() - started, long_rows
    )
    return found


def _deny_transaction_control(action: int, *_args: object) -> int:
    if action in (sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_SAVEPOINT):
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def _long(mig: Migration, stmt: Statement, rows: int, seconds: float, limit: int) -> list[Finding]:
    if rows < limit:
        return []
    where = f"up statement {stmt.position}" if stmt.position else "up"
    return [
        finding(
            "SL701",
            mig.version,
            mig.filename,
            f"{where} touches about {rows:,} row(s) ({seconds:.2f} s on the scratch copy); "
            "it holds the write lock that long",
            statement=stmt.sql if stmt.position else None,
            position=stmt.position or None,
        )
    ]


def _blocked(ctx: Context, db: Path, mig: Migration) -> bool:
    """Whether the scratch database did not reach `mig`'s version (it failed there)."""
    return not db.exists() or replay(ctx).version < mig.version


def _without(f: Finding, failed: Migration) -> Finding:
    note = f" (linted without {failed.filename}, which failed on the scratch copy)"
    return attrs.evolve(f, message=f.message + note)


def _unique(found: list[Finding]) -> list[Finding]:
    return list(dict.fromkeys(found))


def _apply_allows(
    migrations: list[Migration], findings: list[Finding]
) -> tuple[list[Finding], list[dict[str, Any]]]:
    """Split `findings` into those kept and those an allow comment of their file silences."""
    allows: dict[int, dict[str, str]] = {}
    kept: list[Finding] = []
    for mig in migrations:
        codes: dict[str, str] = {}
        for allow in allows_in(mig.path.read_text(encoding="utf-8")):
            if not allow.reason:
                kept.append(
                    finding(
                        "SL003",
                        mig.version,
                        mig.filename,
                        f"line {allow.line}: the allow comment for {', '.join(allow.codes)} "
                        "gives no reason, so it silences nothing",
                    )
                )
                continue
            for code in allow.codes:
                if code in RULES:
                    codes[code] = allow.reason
        allows[mig.version] = codes
    allowed: list[dict[str, Any]] = []
    for f in findings:
        reason = allows.get(f.version, {}).get(f.code)
        if reason is None:
            kept.append(f)
        else:
            allowed.append({**attrs.asdict(f), "reason": reason})
    return kept, allowed
