"""Queries that must not write: the verify queries of migrations.

`query_read_only(conn, sql)` runs one query with the connection made read-only for its
duration: `PRAGMA query_only = ON` (SQLite refuses every change to the database files:
"attempt to write a readonly database"), and an authorizer that refuses what query_only lets
through — ending or nesting the caller's transaction (`COMMIT`, `ROLLBACK`, `SAVEPOINT`),
`ATTACH`/`DETACH`, and any pragma that sets a value (such as `query_only = OFF` or
`foreign_keys = OFF`), so a query cannot change the connection the run goes on with. The
previous `query_only` value is put back and the authorizer removed on every path.
"""

from __future__ import annotations

import sqlite3

__all__ = ["query_read_only"]

#: Pragmas that take an argument only to say what to read (also as table-valued functions).
_READ_PRAGMAS = frozenset(
    {
        "table_info",
        "table_xinfo",
        "table_list",
        "index_info",
        "index_xinfo",
        "index_list",
        "foreign_key_list",
        "foreign_key_check",
        "integrity_check",
        "quick_check",
    }
)
_DENIED = frozenset(
    {
        sqlite3.SQLITE_TRANSACTION,
        sqlite3.SQLITE_SAVEPOINT,
        sqlite3.SQLITE_ATTACH,
        sqlite3.SQLITE_DETACH,
    }
)


def _read_only(action: int, arg1: str | None, arg2: str | None, *_rest: object) -> int:
    if action in _DENIED:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_PRAGMA and arg2 is not None and arg1 not in _READ_PRAGMAS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def query_read_only(conn: sqlite3.Connection, sql: str, *, limit: int = 2) -> list[tuple]:
    """The first `limit` rows of `sql`, run so that it cannot write or change the connection.

    Raises sqlite3.Error as SQLite does; a write is refused with "attempt to write a readonly
    database", the rest with "not authorized". Nothing of the query stays either way.
    """
    before = conn.execute("PRAGMA query_only").fetchone()[0]
    conn.execute("PRAGMA query_only = ON")
    conn.set_authorizer(_read_only)
    try:
        return conn.execute(sql).fetchmany(limit)
    finally:
        conn.set_authorizer(None)
        conn.execute(f"PRAGMA query_only = {'ON' if before else 'OFF'}")
