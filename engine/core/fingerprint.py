"""Schema fingerprint: SHA-256 over the normalized rows of `sqlite_master`.

Normalization: schemalog's own objects (`schemalog_*`) and SQLite's internal
ones (`sqlite_*`) are left out; rows are sorted by (type, name); in each
object's SQL (outside string literals, which are kept as written), runs of whitespace become one space, spaces next to `(`, `)`
and `,` are dropped, and double quotes around plain identifiers are removed
(`ALTER TABLE ... RENAME TO` stores the new name quoted). So re-indenting a
CREATE statement does not count as a change, but any change of names,
columns, types or constraints does.

The fingerprint is the SHA-256 of the concatenated SHA-256 digests of each
normalized row's canonical JSON; row digests are cached, so fingerprinting
the schema after every step of a long run costs one `sqlite_master` scan.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import re
import sqlite3
from collections.abc import Iterable

from schemalog.journal.codec import canonical

__all__ = [
    "EMPTY_FINGERPRINT",
    "fingerprint_of",
    "fingerprint_rows",
    "normalize_sql",
    "schema_fingerprint",
    "schema_objects",
    "schema_rows",
]

_WS = re.compile(r"\s+")
_PUNCT = re.compile(r" ?([(),]) ?")
_QUOTED = re.compile(r'"([A-Za-z_][A-Za-z0-9_]*)"')
_LITERAL = re.compile(r"('(?:[^']|'')*')")

_QUERY = """
SELECT type, name, tbl_name, sql FROM sqlite_master
WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE 'schemalog\\_%' ESCAPE '\\'
ORDER BY type, name
"""


def normalize_sql(sql: str | None) -> str:
    """`sql` with whitespace and identifier quotes normalized (see module docstring). Pure."""
    if not sql:
        return ""
    # String literals are kept as written: only the text between them is normalized.
    parts = _LITERAL.split(sql.strip())
    for i in range(0, len(parts), 2):
        parts[i] = _QUOTED.sub(r"\1", _PUNCT.sub(r"\1", _WS.sub(" ", parts[i])))
    return "".join(parts)


def _normalized_digest(type_: str, name: str, table: str, sql: str) -> bytes:
    return hashlib.sha256(canonical([type_, name, table, sql]).encode("utf-8")).digest()


@functools.lru_cache(maxsize=1 << 16)
def _row_digest(type_: str, name: str, table: str, sql: str | None) -> bytes:
    return _normalized_digest(type_, name, table, normalize_sql(sql))


def schema_rows(conn: sqlite3.Connection) -> list[tuple[str, str, str, str | None]]:
    """The application's schema objects as (type, name, table, sql as stored). Read-only."""
    return list(conn.execute(_QUERY))


def fingerprint_rows(rows: Iterable[tuple[str, str, str, str | None]]) -> str:
    """The fingerprint of `schema_rows` output (sorted by type, name). Pure."""
    return hashlib.sha256(b"".join(itertools.starmap(_row_digest, rows))).hexdigest()


def schema_objects(conn: sqlite3.Connection) -> list[tuple[str, str, str, str]]:
    """The application's schema objects as (type, name, table, normalized sql). Read-only."""
    return [(t, n, tb, normalize_sql(s)) for t, n, tb, s in conn.execute(_QUERY)]


def fingerprint_of(objects: list[tuple[str, str, str, str]]) -> str:
    """The fingerprint of already-normalized schema objects, sorted by (type, name). Pure."""
    h = hashlib.sha256()
    for obj in objects:
        h.update(_normalized_digest(*obj))
    return h.hexdigest()


def schema_fingerprint(conn: sqlite3.Connection) -> str:
    """The fingerprint of the schema `conn` sees now. Read-only."""
    return fingerprint_rows(conn.execute(_QUERY))


EMPTY_FINGERPRINT = fingerprint_of([])
