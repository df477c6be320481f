"""Schema fingerprint: SHA-256 over the normalized rows of `sqlite_master`.

Normalization: schemalog's own objects (`schemalog_*`) and SQLite's internal
ones (`sqlite_*`) are left out; rows are sorted by (type, name); in each
object's SQL, runs of whitespace become one space and spaces next to `(`, `)`
and `,` are dropped, and double quotes around plain identifiers are removed
(`ALTER TABLE ... RENAME TO` stores the new name quoted), so re-indenting a CREATE statement does not count as a
change but any change of names, columns, types or constraints does.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3

from journal.codec import canonical

__all__ = ["EMPTY_FINGERPRINT", "normalize_sql", "schema_fingerprint", "schema_objects"]

_WS = re.compile(r"\s+")
_PUNCT = re.compile(r" ?([(),]) ?")
_QUOTED = re.compile(r'"([A-Za-z_][A-Za-z0-9_]*)"')

_QUERY = """
SELECT type, name, tbl_name, sql FROM sqlite_master
WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE 'schemalog\\_%' ESCAPE '\\'
ORDER BY type, name
"""


def normalize_sql(sql: str | None) -> str:
    """`sql` with whitespace normalized (see module docstring). Pure."""
    if not sql:
        return ""
    return _QUOTED.sub(r"\1", _PUNCT.sub(r"\1", _WS.sub(" ", sql.strip())))


def schema_objects(conn: sqlite3.Connection) -> list[tuple[str, str, str, str]]:
    """The application's schema objects as (type, name, table, normalized sql). Read-only."""
    return [(t, n, tb, normalize_sql(s)) for t, n, tb, s in conn.execute(_QUERY)]


def fingerprint_of(objects: list[tuple[str, str, str, str]]) -> str:
    """The fingerprint of a list of schema objects. Pure."""
    return hashlib.sha256(canonical([list(o) for o in objects]).encode("utf-8")).hexdigest()


def schema_fingerprint(conn: sqlite3.Connection) -> str:
    """The fingerprint of the schema `conn` sees now. Read-only."""
    return fingerprint_of(schema_objects(conn))


EMPTY_FINGERPRINT = fingerprint_of([])
