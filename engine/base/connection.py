"""The one way schemalog opens SQLite: URIs, modes, busy timeouts, integrity checks.

Every connection schemalog opens to a database, a backup or a scratch copy is made here, in
autocommit mode (`isolation_level=None`: schemalog issues BEGIN/COMMIT itself), through a
`file:` URI (so no file name is ever taken for an option), with the application's SQL
functions registered when a `functions` callable is given.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path, PurePath, PureWindowsPath
from typing import Literal
from urllib.parse import quote

__all__ = [
    "INTEGRITY_PRAGMAS",
    "Functions",
    "IntegrityLevel",
    "Mode",
    "integrity_problems",
    "open_database",
    "sqlite_reason",
    "sqlite_uri",
    "uri_path",
]

Mode = Literal["ro", "rw", "rwc"]
IntegrityLevel = Literal["quick", "full", "off"]
#: Called with every connection schemalog opens to the database (application SQL functions).
Functions = Callable[[sqlite3.Connection], None]

#: The PRAGMA each integrity level runs.
INTEGRITY_PRAGMAS = {"quick": "quick_check", "full": "integrity_check"}


def sqlite_uri(path: Path, *, mode: Mode, immutable: bool = False) -> str:
    """A `file:` URI for `path` in `mode`, safe for any file name."""
    uri = f"file:{uri_path(Path(path).absolute())}?mode={mode}"
    return uri + "&immutable=1" if immutable else uri


def uri_path(path: PurePath) -> str:
    """The path part of a `file:` URI for the absolute `path`, percent-encoded. Pure.

    A Windows path is written with forward slashes after a slash (`/C:/data/app.db`, the form
    SQLite documents; a share as `////server/share/app.db`, an empty authority).
    """
    if isinstance(path, PureWindowsPath):
        posix = path.as_posix()
        posix = "//" + posix if posix.startswith("//") else "/" + posix
        return quote(posix, safe="/:")
    return quote(str(path))


def open_database(
    path: Path,
    *,
    mode: Mode = "rw",
    timeout: float = 5.0,
    immutable: bool = False,
    functions: Functions | None = None,
    check_same_thread: bool = True,
) -> sqlite3.Connection:
    """A new autocommit connection to `path`; raises sqlite3.Error as SQLite does.

    `timeout` is the busy timeout in seconds; `immutable` (read-only files nobody writes:
    backups, copies) skips SQLite's locking; `functions` registers the application's SQL
    functions and collations.

    A writable connection commits with `synchronous = EXTRA`: in rollback-journal mode the
    directory is synced after the journal is deleted, so the commit is durable before SQLite
    truncates a database that shrank (a restore of a smaller backup, VACUUM). Under FULL a
    power cut could keep the truncation but lose the deletion: the journal comes back hot and
    its rollback restores the old size with the truncated pages gone, a malformed database
    (found by the power-loss campaign, `schemalog help faults`). The cost is one directory sync per
    commit; in WAL mode EXTRA is FULL.
    """
    conn = sqlite3.connect(
        sqlite_uri(path, mode=mode, immutable=immutable),
        uri=True,
        timeout=timeout,
        isolation_level=None,
        check_same_thread=check_same_thread,
    )
    try:
        if mode != "ro" and not immutable:
            # The pragma reads the header: a file that is not (yet) a sound database refuses
            # it, and the caller finds out what it is by using the connection.
            with contextlib.suppress(sqlite3.DatabaseError):
                conn.execute("PRAGMA synchronous = EXTRA")
        if functions is not None:
            functions(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def integrity_problems(
    conn: sqlite3.Connection, level: IntegrityLevel, *, limit: int = 10
) -> list[str]:
    """What `PRAGMA quick_check` ("quick") or `integrity_check` ("full") reports, [] when sound.

    "off" checks nothing and returns []. Reads only; raises sqlite3.DatabaseError when the
    database cannot be read at all.
    """
    if level == "off":
        return []
    rows = [str(r[0]) for r in conn.execute(f"PRAGMA {INTEGRITY_PRAGMAS[level]}({int(limit)})")]
    return [] if rows == ["ok"] else rows


def sqlite_reason(exc: sqlite3.Error) -> str:
    """A short reason for an SQLite error: "disk full" for SQLITE_FULL, "busy" for SQLITE_BUSY."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name == "SQLITE_FULL":
        return f"disk full ({exc})"
    if name.startswith("SQLITE_BUSY"):
        return f"the database stayed locked by another connection ({exc})"
    return f"{exc} ({name})" if name else str(exc)
