"""A backup file on disk: its name, its check against its record, scanning and removal.

A backup is one file `<backup_dir>/<id>.sqlite` (or `<id>.sqlite.gz`), mode 0600. The id
`v<version:04d>-<UTC yyyymmddTHHMMSS.ffffff>Z[-N]` sorts by version, then time. The journal
records it as a `BackupRecord` whose `path` is the file name relative to the backup directory
(`DatabasePaths.backup_file` finds it); older journals recorded absolute paths, which still
resolve. Taking backups is `engine.shell.backup`.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from schemalog.engine.base.connection import (
    INTEGRITY_PRAGMAS,
    Functions,
    IntegrityLevel,
    integrity_problems,
    open_database,
)
from schemalog.engine.base.errors import BackupError, BackupVerificationFailed
from schemalog.engine.base.settings import INTEGRITIES, check_choice
from schemalog.journal.clock import ISO_FORMAT, STAMP_FORMAT, stamp
from schemalog.journal.durable import fsync_dir, os_reason
from schemalog.journal.replay import BackupRecord

__all__ = [
    "SUFFIXES",
    "backup_id",
    "check_connection",
    "check_file",
    "hash_file",
    "open_for_check",
    "partial_backups",
    "remove_backup",
    "scan_backups",
    "verified_backup",
    "verify_backup",
]

SUFFIXES = {"none": ".sqlite", "gzip": ".sqlite.gz"}
_NAME = re.compile(
    r"^(?P<id>v(?P<version>-?\d+)-(?P<stamp>\d{8}T\d{6}\.\d{6})Z(?:-\d+)?)"
    r"\.sqlite(?P<gz>\.gz)?$"
)
#: The temporary files a backup leaves when interrupted: the copy (`<id>.sqlite.tmp`,
#: `<id>.sqlite.gz.tmp`) and a decompressed copy being verified (`.<id>.<random>.verify.tmp`).
_PARTIAL = re.compile(
    r"^(?:v-?\d+-\d{8}T\d{6}\.\d{6}Z(?:-\d+)?\.sqlite(?:\.gz)?"
    r"|\.v-?\d+-\d{8}T\d{6}\.\d{6}Z(?:-\d+)?\.[^/]+\.verify)\.tmp$"
)
_CHUNK = 1 << 20
_HEADER_MAGIC = b"SQLite format 3\x00"
#: How much of a new copy its check maps (SQLite caps it at its own limit, 2 GiB by default).
_MMAP_BYTES = 1 << 40


def backup_id(backup_dir: Path, version: int, instant: datetime) -> str:
    """A backup id for `version` at `instant` not used by any file in `backup_dir`."""
    base = f"v{version:04d}-{stamp(instant)}Z"
    candidate, n = base, 0
    while any(
        (backup_dir / f"{candidate}{suffix}").exists()
        for suffix in (".sqlite", ".sqlite.gz", ".sqlite.tmp", ".sqlite.gz.tmp")
    ):
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def verify_backup(
    record: BackupRecord,
    path: Path,
    *,
    integrity: IntegrityLevel = "quick",
    functions: Functions | None = None,
) -> None:
    """Check that the file `path` is the backup `record` describes and holds a sound database.

    Read-only. Checks size and SHA-256, that it decompresses (gzip), `integrity` and that its
    `user_version` equals `record.version`. Raises BackupVerificationFailed naming the file
    and what does not match. `functions` registers the application's SQL functions on the
    check's connection (a full check evaluates index expressions that may call them).
    """
    with verified_backup(record, path, integrity=integrity, functions=functions):
        pass


@contextmanager
def verified_backup(
    record: BackupRecord,
    path: Path,
    *,
    integrity: IntegrityLevel = "quick",
    functions: Functions | None = None,
) -> Iterator[Path]:
    """Verify the backup as `verify_backup` does, then yield the path of its SQLite file.

    For a gzip backup that is a temporary decompressed copy (mode 0600, next to the backup),
    removed on exit. The yielded file must only be read. Raises BackupVerificationFailed.
    """
    check_choice("integrity", integrity, INTEGRITIES)
    label = f"backup {record.id} ({path})"
    if not path.is_file():
        msg = f"{label} is missing"
        raise BackupVerificationFailed(
            msg, path=str(path), hint="see what is on disk with `schemalog backup list`"
        )
    try:
        size, sha256 = hash_file(path)
    except OSError as e:
        msg = f"{label} cannot be read: {os_reason(e)}"
        raise BackupVerificationFailed(msg, path=str(path)) from e
    if (size, sha256) != (record.size, record.sha256):
        msg = (
            f"{label} does not match its record (recorded {record.size} bytes, "
            f"sha256 {record.sha256}; found {size} bytes, sha256 {sha256})"
        )
        raise BackupVerificationFailed(
            msg, path=str(path), hint="the file was changed or damaged; use another backup"
        )
    with _plain_copy(record, path, label) as plain:
        version = check_file(plain, integrity, label, functions)
        if version != record.version:
            msg = f"{label} holds user_version {version}, its record says {record.version}"
            raise BackupVerificationFailed(msg, path=str(path))
        yield plain


def partial_backups(backup_dir: Path) -> list[Path]:
    """The temporary files interrupted backups left in `backup_dir` (schemalog's names only:
    any other file there is the user's); read-only."""
    try:
        names = sorted(os.listdir(backup_dir))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [Path(backup_dir) / name for name in names if _PARTIAL.match(name)]


def scan_backups(backup_dir: Path) -> list[BackupRecord]:
    """The backup files found in `backup_dir`, oldest first; read-only.

    For when the journal is lost: size and SHA-256 are computed from each file, `version` is
    read from its SQLite header (from its name when the header is unreadable), `created_at`
    comes from its name, `verified` is False and `run_id` is empty. Temporary files,
    preserved pre-restore copies and foreign files are ignored; a missing directory holds no
    backups.
    """
    backup_dir = Path(backup_dir)
    try:
        names = sorted(os.listdir(backup_dir))
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = []
    for name in names:
        m = _NAME.match(name)
        path = backup_dir / name
        if m is None or not path.is_file():
            continue
        compression = "gzip" if m["gz"] else "none"
        try:
            size, sha256 = hash_file(path)
        except OSError:  # vanished or unreadable since listed: not a usable backup
            continue
        version = _header_version(path, compression)
        found.append(
            BackupRecord(
                id=m["id"],
                path=name,
                version=int(m["version"]) if version is None else version,
                created_at=datetime.strptime(m["stamp"], STAMP_FORMAT).strftime(ISO_FORMAT),
                size=size,
                sha256=sha256,
                verified=False,
                compression=compression,
                run_id="",
            )
        )
    return sorted(found, key=lambda b: (b.created_at, b.id))


def remove_backup(record: BackupRecord, path: Path) -> None:
    """Delete the backup file `path` of `record`; a file already gone is fine.

    Raises BackupError when the file exists but cannot be removed.
    """
    try:
        path.unlink(missing_ok=True)
        fsync_dir(path.parent)
    except FileNotFoundError:
        return
    except OSError as e:
        msg = f"cannot remove backup {record.id} ({path}): {os_reason(e)}"
        raise BackupError(msg, path=str(path), state="the backup is still there") from e


def check_file(
    path: Path, integrity: IntegrityLevel, label: str, functions: Functions | None = None
) -> int:
    """Run the `integrity` check on the SQLite file `path` (opened read-only, immutable).

    Returns its `user_version`. Raises BackupVerificationFailed.
    """
    try:
        conn = open_for_check(path, functions)
    except sqlite3.DatabaseError as e:
        msg = f"{label} is not a readable SQLite database ({e})"
        raise BackupVerificationFailed(msg, path=str(path)) from e
    return check_connection(conn, path, integrity, label)


def open_for_check(
    path: Path, functions: Functions | None = None, *, mapped: bool = False
) -> sqlite3.Connection:
    """A read-only connection to `path` whose file is open (it survives a rename), with the
    application's SQL `functions` (which index expressions, checked by "full", may call).

    `mapped` reads the file through a memory map (for a copy just written, whose pages are in
    memory: an I/O error on a mapped page is a signal, not an error SQLite can report)."""
    conn = open_database(
        path, mode="ro", immutable=True, functions=functions, check_same_thread=False
    )
    try:
        if mapped:
            conn.execute(f"PRAGMA mmap_size = {_MMAP_BYTES}")
        conn.execute("PRAGMA schema_version").fetchone()
    except BaseException:
        conn.close()
        raise
    return conn


def check_connection(
    conn: sqlite3.Connection, path: Path, integrity: IntegrityLevel, label: str
) -> int:
    """The check of `check_file` on an open connection, which it closes; returns user_version."""
    try:
        try:
            problems = integrity_problems(conn, integrity)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        msg = f"{label} is not a readable SQLite database ({e})"
        raise BackupVerificationFailed(msg, path=str(path)) from e
    if problems:
        msg = f"{label} fails PRAGMA {INTEGRITY_PRAGMAS[integrity]}: " + "; ".join(problems)
        raise BackupVerificationFailed(
            msg,
            path=str(path),
            hint="if this is a new backup, the database itself may be damaged: run "
            "`schemalog verify`",
        )
    return version


def hash_file(path: Path) -> tuple[int, str]:
    """Size and SHA-256 (hex) of the file `path`."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


@contextmanager
def _plain_copy(record: BackupRecord, path: Path, label: str) -> Iterator[Path]:
    """Yield the uncompressed SQLite file of the backup (a temporary copy for gzip)."""
    if record.compression == "none":
        yield path
        return
    # only for compressed backups (start-up time of the other commands)
    import gzip
    import shutil
    import tempfile
    import zlib

    fd, name = tempfile.mkstemp(prefix=f".{record.id}.", suffix=".verify.tmp", dir=path.parent)
    tmp = Path(name)
    try:
        try:
            with os.fdopen(fd, "wb") as out, gzip.open(path, "rb") as gz:
                shutil.copyfileobj(gz, out, _CHUNK)
        except (gzip.BadGzipFile, EOFError, zlib.error) as e:
            msg = f"{label} does not decompress: {e}"
            raise BackupVerificationFailed(msg, path=str(path)) from e
        except OSError as e:
            msg = f"{label} cannot be decompressed for checking: {os_reason(e)}"
            raise BackupVerificationFailed(msg, path=str(path)) from e
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def _header_version(path: Path, compression: str) -> int | None:
    """The `user_version` in the SQLite header of a backup file, or None if unreadable."""
    import gzip  # only for compressed backups
    import zlib

    try:
        if compression == "gzip":
            with gzip.open(path, "rb") as f:
                header = f.read(100)
        else:
            with path.open("rb") as f:
                header = f.read(100)
    except (OSError, EOFError, zlib.error):
        return None
    if len(header) < 100 or not header.startswith(_HEADER_MAGIC):
        return None
    return int.from_bytes(header[60:64], "big", signed=True)
