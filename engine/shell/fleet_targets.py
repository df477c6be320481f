"""Which databases a fleet command is about: paths, glob patterns and `@FILE` lists.

`expand_databases(args, cwd)` turns the DATABASE arguments of `fleet up`/`fleet status`
into absolute paths, sorted, each once. An argument is a path; a glob pattern (`*`, `?`,
`[...]`, `**` for any depth), expanded here so that it may be quoted; or `@FILE`, a file of
paths or patterns, one per line (blank lines and lines starting with `#` are skipped).
Relative paths are relative to `cwd`. A pattern matches regular files only, never the files
schemalog and SQLite keep next to a database (`.journal.jsonl`, `.lock`, `-wal`, `-shm`,
`-journal`, saved torn tails, the fleet journal). A plain path is kept even when it does not
exist here: with `--dask` it names a file on a worker's host, and a missing database is
reported as that database's error. Read-only.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable
from pathlib import Path

from schemalog.engine.base.errors import UsageError

__all__ = ["expand_databases", "is_sidecar"]

_GLOB_CHARS = re.compile(r"[*?\[]")
# Files that belong to a database `<base>` (or to the fleet journal), never databases.
_SIDECAR = re.compile(
    r"^(?P<base>.+?)(?:\.journal\.jsonl(?:\.torn-.*|\.damaged-.*|\.replace-tmp)?"
    r"|\.lock|\.restore-tmp|-wal|-shm|-journal)$"
)
_FLEET_JOURNAL = re.compile(r"^schemalog-fleet\.journal\.jsonl(?:\..*)?$")


def is_sidecar(path: Path) -> bool:
    """Whether `path` is a file schemalog or SQLite keeps next to a database. Reads only.

    `app.db.lock` is one when `app.db` exists next to it; the fleet journal and its lock
    always are.
    """
    if _FLEET_JOURNAL.match(path.name):
        return True
    match = _SIDECAR.match(path.name)
    return match is not None and path.with_name(match["base"]).is_file()


def _read_list(argument: str, cwd: Path) -> list[str]:
    """The entries of an `@FILE` argument."""
    path = Path(os.path.expanduser(argument[1:]))
    path = path if path.is_absolute() else cwd / path
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        msg = f"cannot read the list of databases {path} (from {argument}): {why}"
        raise UsageError(msg, hint="pass @FILE with one database path per line") from exc
    entries = [line.strip() for line in text.splitlines()]
    return [e for e in entries if e and not e.startswith("#")]


def _expand_one(entry: str, cwd: Path, origin: str) -> list[Path]:
    """The absolute paths one path or pattern stands for."""
    entry = os.path.expanduser(entry)
    absolute = entry if os.path.isabs(entry) else os.path.join(cwd, entry)
    if not _GLOB_CHARS.search(entry):
        return [Path(os.path.normpath(absolute))]
    matches = [
        Path(os.path.normpath(m))
        for m in glob.glob(absolute, recursive=True)
        if os.path.isfile(m) and not is_sidecar(Path(m))
    ]
    if not matches:
        msg = f"the pattern {entry!r}{origin} matches no database file"
        raise UsageError(
            msg,
            hint="check the pattern; it is expanded on this host (relative to the working directory)",
        )
    return matches


def _identity(path: Path) -> object:
    """What makes two paths the same database: the file itself when it exists here."""
    try:
        st = path.stat()
    except OSError:
        return str(path)
    return (st.st_dev, st.st_ino)


def expand_databases(arguments: Iterable[str], cwd: Path) -> list[Path]:
    """The databases `arguments` name, absolute, sorted, each once. Reads only.

    Raises UsageError when there is none, when a pattern matches no file, or when an
    `@FILE` cannot be read. Two paths to one file (a symlink, a hard link) count once.
    """
    found: list[Path] = []
    for argument in arguments:
        if argument.startswith("@"):
            origin = f" (in {argument})"
            for entry in _read_list(argument, cwd):
                found.extend(_expand_one(entry, cwd, origin))
        else:
            found.extend(_expand_one(argument, cwd, ""))
    unique: dict[object, Path] = {}
    for path in sorted(found, key=str):
        unique.setdefault(_identity(path), path)
    if not unique:
        msg = "no databases were given"
        raise UsageError(msg, hint="pass database paths, quoted glob patterns or @FILE")
    return sorted(unique.values(), key=str)
