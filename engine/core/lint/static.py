"""Lint rules that need only the migration itself (no database). Pure.

`file_findings` looks at the migration as a whole (a missing `down`; a Python step that would
end schemalog's transaction); `statement_findings` at one statement of its `up` or `down`
(transaction control, VACUUM or `PRAGMA foreign_keys` inside a transaction,
`legacy_alter_table`, non-deterministic values written into rows, ADD COLUMN NOT NULL
without a default).
"""

from __future__ import annotations

import ast

from schemalog.engine.core.lint.rules import Finding, finding, statement_finding
from schemalog.engine.core.lint.statements import Statement
from schemalog.engine.files.migration import Migration

__all__ = ["file_findings", "statement_findings"]

_TX_METHODS = ("commit", "rollback", "executescript")


def file_findings(migration: Migration, source: str) -> list[Finding]:
    """The findings about `migration` as a whole; `source` is its file's text."""
    found = []
    if migration.down is None:
        found.append(
            finding(
                "SL401",
                migration.version,
                migration.filename,
                "the migration has no down: it cannot be reverted (`down` refuses to pass it)",
            )
        )
    if migration.kind == "py" and migration.transactional and _has_function_step(migration):
        for line, method in _transaction_calls(source):
            found.append(
                finding(
                    "SL501",
                    migration.version,
                    migration.filename,
                    f"line {line} calls .{method}(), which would end the transaction schemalog "
                    "runs the migration in (it is refused when the step runs)",
                    position=None,
                )
            )
    return found


def _has_function_step(migration: Migration) -> bool:
    return callable(migration.up) or callable(migration.down)


def _transaction_calls(source: str) -> list[tuple[int, str]]:
    """(line, method) of every `x.commit()`, `x.rollback()`, `x.executescript()` call."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return sorted(
        (node.lineno, node.func.attr)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in _TX_METHODS
    )


def statement_findings(migration: Migration, stmt: Statement, step: str) -> list[Finding]:
    """The findings about one statement of `migration`'s `step` (`up` or `down`)."""
    found: list[Finding] = []

    def add(code: str, message: str) -> None:
        found.append(statement_finding(code, migration, stmt, step, message))

    transactional = migration.transactional
    if stmt.kind == "transaction" and transactional:
        add(
            "SL501",
            f"{stmt.sql.split()[0].rstrip(';').upper()} controls the transaction, which "
            "schemalog owns "
            "(the file is refused when it runs)",
        )
    if stmt.kind == "vacuum" and transactional:
        add("SL502", "VACUUM cannot run inside a transaction; it fails when the step runs")
    if stmt.kind == "pragma" and stmt.pragma == "foreign_keys" and transactional:
        add(
            "SL503",
            "PRAGMA foreign_keys does nothing inside a transaction; "
            "set `foreign_keys = False` on the migration instead",
        )
    if stmt.kind == "pragma" and stmt.pragma == "legacy_alter_table":
        add(
            "SL303",
            "legacy_alter_table changes what RENAME does to views, triggers and foreign keys "
            "for the rest of the connection",
        )
    inlined = stmt.non_deterministic()
    if inlined:
        add(
            "SL601",
            f"writes {', '.join(inlined)} into rows: every row gets the value of the moment it "
            "runs, and a scratch run or a replica gets other values",
        )
    return found
