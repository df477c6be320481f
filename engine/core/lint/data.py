"""Lint rules that look at the data: run on a scratch copy, right before a statement runs there.

Each function reads the scratch connection it is given (never writes) and returns findings:
a DROP TABLE of a table holding rows (unless it is a rebuild, renamed back later in the same
migration), a DROP COLUMN of a column holding values, ADD COLUMN NOT NULL without a default,
a unique index over duplicate values, a rebuild (DROP TABLE) with foreign keys on while other
tables reference the table, and views or triggers that the rebuild or a DROP leaves broken.
`failure_code` maps SQLite's error for a failing statement to the most specific rule.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from schemalog.engine.core.lint.rules import Finding, statement_finding
from schemalog.engine.core.lint.statements import Statement, mentions
from schemalog.engine.core.sqltokens import tokens
from schemalog.engine.files.migration import Migration

__all__ = ["before_statement", "failure_code", "quote", "table_rows"]


def quote(name: str) -> str:
    """`name` as an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def table_rows(conn: sqlite3.Connection, table: str) -> int | None:
    """The rows `table` holds now; None when it cannot be counted (no such table)."""
    try:
        return int(conn.execute(f"SELECT count(*) FROM {quote(table)}").fetchone()[0])
    except sqlite3.Error:
        return None


def failure_code(stmt: Statement, error: str) -> str:
    """The rule a statement's SQLite error is best reported under."""
    if stmt.kind == "create_unique_index" and "UNIQUE constraint failed" in error:
        return "SL201"
    if stmt.kind == "add_column" and "NOT NULL column" in error:
        return "SL202"
    if "error in view" in error or "error in trigger" in error:
        return "SL302"
    if stmt.kind == "vacuum":
        return "SL502"
    return "SL001"


def before_statement(
    conn: sqlite3.Connection,
    migration: Migration,
    stmt: Statement,
    later: Sequence[Statement],
) -> list[Finding]:
    """The data findings about `stmt` (of `migration`'s up), on the scratch state before it."""
    found: list[Finding] = []

    def add(code: str, message: str, severity: str | None = None) -> None:
        found.append(statement_finding(code, migration, stmt, "up", message, severity))

    table = stmt.table
    if table is None:
        return found
    if stmt.kind == "drop_table":
        _drop_table(conn, migration, stmt, table, later, add)
    elif stmt.kind == "drop_column" and stmt.column:
        values = _count(
            conn, f"SELECT count(*) FROM {quote(table)} WHERE {quote(stmt.column)} IS NOT NULL"
        )
        if values:
            add("SL102", f"drops column {table}.{stmt.column}, which holds {values:,} value(s)")
    elif stmt.kind == "add_column" and stmt.not_null_without_default:
        rows = table_rows(conn, table) or 0
        where = f"{table} holds {rows:,} row(s) here" if rows else f"{table} is empty here"
        add(
            "SL202",
            f"adds NOT NULL column {stmt.column} without a default: SQLite refuses it on a "
            f"table that holds rows ({where})",
            severity="error" if rows else "warning",
        )
    elif stmt.kind == "create_unique_index" and stmt.index_columns:
        groups = _duplicates(conn, table, stmt.index_columns, stmt.index_where)
        if groups:
            add(
                "SL201",
                f"unique index on {table}({stmt.index_columns}): {groups:,} value(s) "
                "occur more than once, so creating it fails",
            )
    return found


def _drop_table(conn, migration, stmt, table, later, add) -> None:  # type: ignore[no-untyped-def]
    rebuild = any(
        s.kind == "rename_table" and (s.new_name or "").lower() == table.lower() for s in later
    )
    rows = table_rows(conn, table) or 0
    if rows and not rebuild:
        add("SL101", f"drops table {table}, which holds {rows:,} row(s)")
    referencing = _referencing(conn, table)
    if referencing and migration.foreign_keys:
        cascade = [t for t, on_delete in referencing if on_delete == "CASCADE"]
        names = ", ".join(sorted({t for t, _ in referencing}))
        effect = (
            f"ON DELETE CASCADE deletes the rows of {', '.join(sorted(set(cascade)))}"
            if cascade
            else "it fails on their references"
        )
        add(
            "SL301",
            f"drops {table} with foreign keys on while {names} reference it: the implicit "
            f"DELETE FROM {table} runs first and {effect}; set `foreign_keys = False`",
            severity="error" if rows else "warning",
        )
    broken = _dependents(conn, table)
    if broken:
        what = ", ".join(f"{kind} {name}" for kind, name in broken)
        if rebuild:
            add(
                "SL302",
                f"{what} refer(s) to {table}: renaming the new table back to {table} fails "
                '("error in view"); drop and re-create them around the rebuild',
            )
        else:
            add("SL302", f"{what} will refer to a table that no longer exists", severity="warning")


def _count(conn: sqlite3.Connection, sql: str) -> int:
    try:
        return int(conn.execute(sql).fetchone()[0])
    except sqlite3.Error:
        return 0


def _duplicates(conn: sqlite3.Connection, table: str, columns: str, where: str | None) -> int:
    """How many values of the index's columns occur more than once (0 if it cannot tell)."""
    terms = [t.text for t in tokens(columns) if not t.is_("ASC", "DESC")]
    group = " ".join(terms)
    condition = f" WHERE {where}" if where else ""
    return _count(
        conn,
        f"SELECT count(*) FROM (SELECT 1 FROM {quote(table)}{condition} "
        f"GROUP BY {group} HAVING count(*) > 1)",
    )


def _referencing(conn: sqlite3.Connection, table: str) -> list[tuple[str, str]]:
    """(table, on_delete) of every other table with a foreign key to `table`."""
    found = []
    for (other,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' "
        "ESCAPE '\\' AND name NOT LIKE 'schemalog\\_%' ESCAPE '\\'"
    ).fetchall():
        if other.lower() == table.lower():
            continue
        for target, on_delete in conn.execute(
            'SELECT "table", on_delete FROM pragma_foreign_key_list(?)', (other,)
        ).fetchall():
            if str(target).lower() == table.lower():
                found.append((other, str(on_delete).upper()))
    return found


def _dependents(conn: sqlite3.Connection, table: str) -> list[tuple[str, str]]:
    """(type, name) of the views and triggers (not those on `table` itself) naming `table`."""
    return [
        (kind, name)
        for kind, name, on, sql in conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE type IN ('view', 'trigger')"
        ).fetchall()
        if not (kind == "trigger" and on.lower() == table.lower()) and mentions(sql or "", table)
    ]
