"""Listing a migrations directory and reading its files' bytes, with a read cache.

A directory on disk is listed with `os.scandir` (its files are `DirFile`s: a Path is made only
when needed); an `importlib.resources` Traversable is listed through its own entries.

A process that reads the same directory again (the library's `upgrade()` at every start-up of
a long-running application) reuses the text and checksum of a file whose identity, size,
mtime and ctime are unchanged, unless it was last modified less than `SETTLE_S` seconds
before it was read: a write after the read changes the ctime (which no program can set back)
to a time later than the one read, even on file systems with coarse timestamps. POSIX only
(Windows reports the creation time as ctime); Traversables are always read.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from schemalog.engine.base.errors import MigrationFileError
from schemalog.engine.files.migration import MigrationFile, Source, read_source

__all__ = [
    "READ_CACHE",
    "SETTLE_S",
    "DirFile",
    "as_source",
    "candidate_files",
    "read_file",
    "settled",
    "stat_key",
]

SUFFIXES = (".py", ".sql")
SETTLE_S = 5.0
#: path -> (stat key, when it was read, the file as read); see the module docstring.
READ_CACHE: dict[str, tuple[tuple[int, ...], float, MigrationFile]] = {}
_CACHE_LIMIT = 10_000


def as_source(directory: Source | str) -> Source:
    return Path(directory) if isinstance(directory, str | os.PathLike) else directory


def stat_key(path: Path | str) -> tuple[int, ...]:
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def settled(key: tuple[int, ...]) -> bool:
    """Whether a file (or directory) whose stat key is `key` last changed `SETTLE_S` ago."""
    return time.time() - max(key[3], key[4]) / 1e9 > SETTLE_S


class DirFile:
    """A file of a directory on disk, by name; its Path is made only when needed (making 200
    Paths costs more than listing and checking 200 names)."""

    __slots__ = ("_path", "directory", "full", "name")

    def __init__(self, directory: Path, name: str) -> None:
        self.directory, self.name = directory, name
        self.full = os.path.join(directory, name)
        self._path: Path | None = None

    @property
    def path(self) -> Path:
        if self._path is None:
            self._path = self.directory / self.name
        return self._path

    def __str__(self) -> str:
        return self.full


def candidate_files(directory: Source) -> list[Any]:
    """The files of `directory` that are meant to be migrations, by name (`DirFile`s for a
    directory on disk, the Traversable's own entries otherwise)."""
    if isinstance(directory, Path):
        with os.scandir(directory) as entries:
            names = [e.name for e in entries if _wanted(e.name) and e.is_file()]
        return [DirFile(directory, name) for name in sorted(names)]
    found = [e for e in directory.iterdir() if _wanted(e.name) and e.is_file()]
    return sorted(found, key=lambda e: e.name)


def _wanted(name: str) -> bool:
    return not name.startswith(("_", ".")) and os.path.splitext(name)[1].lower() in SUFFIXES


def read_file(file: Any) -> MigrationFile:
    """The file as read, from the read cache when it is safe (module docstring)."""
    if not isinstance(file, DirFile):
        return read_source(file, _bytes(file))
    if os.name != "posix":
        return read_source(file.path, _bytes(file.path))
    name = file.full
    try:
        st = os.stat(name)
    except OSError as exc:
        raise _unreadable(file.path, exc) from exc
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    cached = READ_CACHE.get(name)
    if cached is not None and cached[0] == key:
        return cached[2]
    read_at = time.time()
    source = read_source(file.path, _bytes(file.path))
    if read_at - max(st.st_mtime_ns, st.st_ctime_ns) / 1e9 > SETTLE_S:
        if len(READ_CACHE) >= _CACHE_LIMIT:
            READ_CACHE.clear()
        READ_CACHE[name] = (key, read_at, source)
    return source


def _bytes(path: Source) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _unreadable(path, exc) from exc


def _unreadable(path: Source, exc: OSError) -> MigrationFileError:
    msg = f"{path.name}: cannot be read ({exc.strerror or exc})"
    return MigrationFileError(msg, path=str(path))
