"""Full, verified backups of a database.

In rollback-journal mode the backup is a byte-for-byte copy of the database file
(`copy_file_range`, hashed in the same pass) taken while a read transaction keeps writers
out; WAL databases and compressed backups go through SQLite's backup API.

A backup is one file `<backup_dir>/<id>.sqlite` (or `<id>.sqlite.gz`), mode 0600, written as
`<id>.sqlite.tmp`, fsynced, checked, renamed and followed by an fsync of the directory: a file
with a final name is always complete. The id `v<version:04d>-<UTC yyyymmddTHHMMSS.ffffff>Z`
sorts by version, then time. This module writes no journal events; it returns `BackupInfo`
values that the engine records.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import os
import re
import shutil
import sqlite3
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import attrs

from schemalog.engine.base.errors import (
    BackupError,
    BackupUnusable,
    BackupVerificationFailed,
    UsageError,
)
from schemalog.journal.durable import (
    create_private_file,
    fsync_dir,
    fsync_file,
    kept_read_fd,
    make_private_dir,
    open_private_file,
)

__all__ = [
    "COMPRESSIONS",
    "INTEGRITY_LEVELS",
    "BackupInfo",
    "remove_backup",
    "scan_backups",
    "sqlite_uri",
    "take_backup",
    "take_backup_deferred",
    "verified_backup",
    "verify_backup",
]

COMPRESSIONS = ("none", "gzip")
INTEGRITY_LEVELS = ("quick", "full", "off")

_SUFFIXES = {"none": ".sqlite", "gzip": ".sqlite.gz"}
_NAME = re.compile(
    r"^(?P<id>v(?P<version>-?\d+)-(?P<stamp>\d{8}T\d{6}\.\d{6})Z(?:-\d+)?)"
    r"\.sqlite(?P<gz>\.gz)?$"
)
_STAMP = "%Y%m%dT%H%M%S.%f"
_ISO = "%Y-%m-%dT%H:%M:%S.%fZ"
_CHUNK = 1 << 20
_BUSY_TIMEOUT_S = 10.0
_GZIP_LEVEL = 1
_HEADER_MAGIC = b"SQLite format 3\x00"


@attrs.frozen
class BackupInfo:
    """One backup file: what it holds (`version`), where, when, and its checksum.

    `verified` is True when an integrity check of this very file passed when it was taken.
    """

    id: str
    path: Path
    version: int
    created_at: str
    size: int
    sha256: str
    verified: bool
    compression: str = attrs.field(validator=attrs.validators.in_(COMPRESSIONS))


def take_backup(
    database: Path,
    backup_dir: Path,
    *,
    run_id: str = "",
    compression: str = "none",
    integrity: str = "quick",
    progress: Callable[[int, int], None] | None = None,
    pages_per_step: int = 16384,
) -> BackupInfo:
    """Copy `database` into a new, checked backup file in `backup_dir` and describe it.

    The copy is one consistent snapshot of the committed database (a read transaction is held
    on a connection of its own for the whole copy: in WAL mode writers go on, in rollback mode
    they wait for it, up to their busy timeout). The database's content is never modified
    (SQLite itself may roll back a crashed writer's hot journal, or checkpoint the WAL when
    ours is the last connection to close). `progress(copied_pages, total_pages)` is
    called after every step of `pages_per_step` pages (<= 0: one step). `run_id` only labels
    error messages. `integrity` "quick"/"full" runs `PRAGMA quick_check`/`integrity_check` on
    the copy ("off": none; then `verified` is False).

    Raises UsageError for a bad `compression`/`integrity`; BackupUnusable (exit 2) when
    `backup_dir` cannot be created or written; BackupError when the database is missing or
    locked, or the copy fails (disk full, I/O error) -- no partial file is left behind;
    BackupVerificationFailed when the copy fails its check (it is deleted).
    """
    _check_choice("compression", compression, COMPRESSIONS)
    result = _take_cleanly(
        database, backup_dir, run_id, compression, integrity, progress, pages_per_step, False
    )
    assert isinstance(result, BackupInfo)
    return result


def take_backup_deferred(
    database: Path,
    backup_dir: Path,
    *,
    run_id: str = "",
    integrity: str = "quick",
    progress: Callable[[int, int], None] | None = None,
    pages_per_step: int = 16384,
) -> tuple[BackupInfo, Callable[[], None]]:
    """Like `take_backup` (no compression), but the integrity check of the copy runs in the
    background: returns (info with `verified` False, `wait`). `wait()` blocks until the check
    is done and raises BackupVerificationFailed, having deleted the file, if it failed.

    The engine calls `wait()` before its first COMMIT, so a run that would rely on a bad
    backup is rolled back whole while the check overlaps the run's first steps.
    """
    result = _take_cleanly(
        database, backup_dir, run_id, "none", integrity, progress, pages_per_step, True
    )
    if isinstance(result, BackupInfo):  # integrity "off": nothing to wait for
        return result, lambda: None
    return result


def verify_backup(info: BackupInfo, *, integrity: str = "quick") -> None:
    """Check that the backup file is the one described by `info` and holds a sound database.

    Read-only. Checks size and SHA-256, that it decompresses (gzip), `integrity` ("quick",
    "full" or "off") and that its `user_version` equals `info.version`.
    Raises BackupVerificationFailed naming the file and what does not match.
    """
    with verified_backup(info, integrity=integrity):
        pass


@contextmanager
def verified_backup(info: BackupInfo, *, integrity: str = "quick") -> Iterator[Path]:
    """Verify the backup as `verify_backup` does, then yield the path of its SQLite file.

    For a gzip backup that is a temporary decompressed copy (mode 0600, next to the backup),
    removed on exit. The yielded file must only be read. Raises BackupVerificationFailed.
    """
    _check_choice("integrity", integrity, INTEGRITY_LEVELS)
    path = info.path
    label = f"backup {info.id} ({path})"
    if not path.is_file():
        msg = f"{label} is missing"
        raise BackupVerificationFailed(
            msg, path=str(path), hint="see what is on disk with `schemalog backup list`"
        )
    try:
        size, sha256 = _hash_file(path)
    except OSError as e:
        msg = f"{label} cannot be read: {e.strerror}"
        raise BackupVerificationFailed(msg, path=str(path)) from e
    if (size, sha256) != (info.size, info.sha256):
        msg = (
            f"{label} does not match its record (recorded {info.size} bytes, "
            f"sha256 {info.sha256}; found {size} bytes, sha256 {sha256})"
        )
        raise BackupVerificationFailed(
            msg, path=str(path), hint="the file was changed or damaged; use another backup"
        )
    with _plain_copy(info, label) as plain:
        version = _check_database_file(plain, integrity, label)
        if version != info.version:
            msg = f"{label} holds user_version {version}, its record says {info.version}"
            raise BackupVerificationFailed(msg, path=str(path))
        yield plain


def scan_backups(backup_dir: Path) -> list[BackupInfo]:
    """The backup files found in `backup_dir`, oldest first; read-only.

    For when the journal is lost: size and SHA-256 are computed from each file, `version` is
    read from its SQLite header (from its name when the header is unreadable), `created_at`
    comes from its name, and `verified` is False. Temporary files, preserved pre-restore
    copies and foreign files are ignored; a missing directory holds no backups.
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
            size, sha256 = _hash_file(path)
        except OSError:  # vanished or unreadable since listed: not a usable backup
            continue
        version = _header_version(path, compression)
        found.append(
            BackupInfo(
                id=m["id"],
                path=path,
                version=int(m["version"]) if version is None else version,
                created_at=datetime.strptime(m["stamp"], _STAMP).strftime(_ISO),
                size=size,
                sha256=sha256,
                verified=False,
                compression=compression,
            )
        )
    return sorted(found, key=lambda b: (b.created_at, b.id))


def remove_backup(info: BackupInfo) -> None:
    """Delete the backup file of `info`; a file already gone is fine.

    Raises BackupError when the file exists but cannot be removed.
    """
    try:
        info.path.unlink(missing_ok=True)
        fsync_dir(info.path.parent)
    except FileNotFoundError:
        return
    except OSError as e:
        msg = f"cannot remove backup {info.id} ({info.path}): {e.strerror}"
        raise BackupError(msg, path=str(info.path), state="the backup is still there") from e


def sqlite_uri(path: Path, *, mode: str, immutable: bool = False) -> str:
    """A `file:` URI for `path` (`mode` "ro", "rw" or "rwc"), safe for any file name."""
    uri = f"file:{quote(str(Path(path).absolute()))}?mode={mode}"
    return uri + "&immutable=1" if immutable else uri


# --- taking -------------------------------------------------------------------------------


def _take_cleanly(
    database: Path,
    backup_dir: Path,
    run_id: str,
    compression: str,
    integrity: str,
    progress: Callable[[int, int], None] | None,
    pages_per_step: int,
    defer: bool,
) -> BackupInfo | tuple[BackupInfo, Callable[[], None]]:
    """`_take` after the input checks; on any failure every file it created is removed and
    OS/SQLite errors become BackupError naming the reason (see `take_backup`)."""
    database, backup_dir = Path(database), Path(backup_dir)
    _check_choice("integrity", integrity, INTEGRITY_LEVELS)
    label = f"backup of {database}" + (f" for run {run_id}" if run_id else "")
    if not database.is_file():
        msg = f"{label} failed: no database file at {database}"
        raise BackupError(msg, path=str(database), hint="check --database")
    _ensure_backup_dir(backup_dir)
    written: list[Path] = []  # every file this call created; all removed unless it succeeds
    try:
        return _take(
            database,
            backup_dir,
            compression,
            integrity,
            progress,
            pages_per_step,
            label,
            written,
            defer,
        )
    except BaseException as e:
        _remove_all(written)
        if isinstance(e, OSError):
            raise _copy_failed(label, database, backup_dir, _os_reason(e)) from e
        if isinstance(e, sqlite3.Error):
            raise _copy_failed(label, database, backup_dir, _sqlite_reason(e)) from e
        raise


def _take(
    database: Path,
    backup_dir: Path,
    compression: str,
    integrity: str,
    progress: Callable[[int, int], None] | None,
    pages_per_step: int,
    label: str,
    written: list[Path],
    defer: bool = False,
) -> BackupInfo | tuple[BackupInfo, Callable[[], None]]:
    """Copy, check and publish the backup; every file it creates is listed in `written`.

    With `defer` (plain copies only), the file is published unchecked and the check runs
    in a background thread; returns (info, wait) where `wait()` raises
    BackupVerificationFailed (after deleting the file) if the copy fails its check.
    """
    now = datetime.now(UTC)
    source = sqlite3.connect(
        sqlite_uri(database, mode="rw"), uri=True, isolation_level=None, timeout=_BUSY_TIMEOUT_S
    )
    try:
        # The read transaction pins one snapshot for the whole copy: the backup never restarts
        # because of a concurrent commit, and `version` is the copy's version.
        source.execute("BEGIN")
        version = source.execute("PRAGMA user_version").fetchone()[0]
        backup_id = _new_id(backup_dir, version, now)
        plain_tmp = backup_dir / f"{backup_id}.sqlite.tmp"
        _create_tmp(plain_tmp, backup_dir, written)
        hashed = None
        if compression == "none" and _stable_single_file(source, database):
            hashed = _raw_copy(database, plain_tmp, progress, pages_per_step)
        else:
            _copy_database(source, plain_tmp, pages_per_step, progress)
        source.execute("ROLLBACK")
    finally:
        source.close()
    final = backup_dir / f"{backup_id}{_SUFFIXES[compression]}"
    gz_tmp = backup_dir / f"{backup_id}.sqlite.gz.tmp"
    if defer and compression == "none" and integrity != "off":
        return _publish_unchecked(
            plain_tmp, final, backup_dir, hashed, integrity, label, written, backup_id, version, now
        )
    # The integrity check reads the copy in a second thread while this one flushes it to
    # disk and hashes (or compresses) it: SQLite, fsync, hashlib and zlib release the GIL.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="schemalog-backup-check") as pool:
        checked = None
        if integrity != "off":
            checked = pool.submit(_check_database_file, plain_tmp, integrity, f"the new {label}")
        fsync_file(plain_tmp)
        if compression == "gzip":
            size, sha256 = _gzip_verified(plain_tmp, gz_tmp, written, label)
        elif hashed is not None:
            size, sha256 = hashed
        else:
            size, sha256 = _hash_file(plain_tmp)
        if checked is not None:
            checked.result()  # raises BackupVerificationFailed
    if compression == "gzip":
        os.rename(gz_tmp, final)
        written.append(final)
        plain_tmp.unlink()
    else:
        os.rename(plain_tmp, final)
        written.append(final)
    fsync_dir(backup_dir)
    return BackupInfo(
        id=backup_id,
        path=final,
        version=version,
        created_at=now.strftime(_ISO),
        size=size,
        sha256=sha256,
        verified=integrity != "off",
        compression=compression,
    )


def _publish_unchecked(
    plain_tmp: Path,
    final: Path,
    backup_dir: Path,
    hashed: tuple[int, str] | None,
    integrity: str,
    label: str,
    written: list[Path],
    backup_id: str,
    version: int,
    now: datetime,
) -> tuple[BackupInfo, Callable[[], None]]:
    """Flush and publish the copy now; check it in a background thread (see `_take`).

    The check starts before the fsync, on a connection opened under the temporary name
    (an open file survives the rename), so it overlaps the flush as well as the run.
    """
    outcome: dict[str, BaseException | None] = {}
    try:
        conn: sqlite3.Connection | None = _open_for_check(plain_tmp)
    except sqlite3.DatabaseError as e:
        conn = None
        outcome["error"] = BackupVerificationFailed(
            f"the new {label} is not a readable SQLite database ({e})", path=str(plain_tmp)
        )

    def check() -> None:
        if conn is None:
            return
        try:
            _check_connection(conn, final, integrity, f"the new {label}")
            outcome["error"] = None
        except BaseException as e:  # handed to wait()
            outcome["error"] = e

    worker = threading.Thread(target=check, name="schemalog-backup-check", daemon=True)
    worker.start()
    fsync_file(plain_tmp)
    size, sha256 = hashed if hashed is not None else _hash_file(plain_tmp)
    os.rename(plain_tmp, final)
    written.append(final)
    fsync_dir(backup_dir)

    def wait() -> None:
        worker.join()
        error = outcome.get("error")
        if error is not None:
            with suppress(FileNotFoundError):
                final.unlink()
            raise error

    info = BackupInfo(
        id=backup_id,
        path=final,
        version=version,
        created_at=now.strftime(_ISO),
        size=size,
        sha256=sha256,
        verified=False,
        compression="none",
    )
    return info, wait


def _stable_single_file(source: sqlite3.Connection, database: Path) -> bool:
    """Whether the database file alone holds the committed state and cannot change now.

    True in rollback-journal modes while `source` holds its read transaction (SHARED lock):
    no writer can commit until it ends, and no hot journal is pending (SQLite rolled it back
    when `source` started reading). In WAL mode committed pages may live in `-wal`: False.
    """
    mode = source.execute("PRAGMA journal_mode").fetchone()[0]
    return str(mode).lower() != "wal" and not Path(f"{database}-wal").exists()


_RAW_CHUNK = 4 << 20  # hashing reads
_COPY_CHUNK = 64 << 20  # copy_file_range calls: fewer, larger (4 MiB ones cost 2-8x more here)


def _raw_copy(
    database: Path,
    target_path: Path,
    progress: Callable[[int, int], None] | None,
    pages_per_step: int,
) -> tuple[int, str]:
    """Copy the database file byte for byte into `target_path`; returns (size, sha256).

    Only valid while a read transaction keeps writers out (see `_stable_single_file`). The
    kernel copies (`copy_file_range`) while a second thread hashes the same bytes (hashlib
    releases the GIL), so the copy costs about as much as `cp`. The source descriptor is
    never closed (`kept_read_fd`): closing a descriptor of the database file would drop the
    SQLite locks this process holds on it.
    """
    src = kept_read_fd(database)
    size = os.fstat(src).st_size
    pages = max(1, size // 4096)
    step = _COPY_CHUNK if pages_per_step <= 0 else min(_COPY_CHUNK, pages_per_step * 4096)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="schemalog-backup-hash") as pool:
        hashed = pool.submit(_hash_range, src, size)
        out = os.open(target_path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            offset = 0
            while offset < size:
                offset += _copy_range(src, out, min(step, size - offset), offset)
                if progress is not None:
                    progress(min(pages, offset // 4096), pages)
        finally:
            os.close(out)
        return size, hashed.result()


def _copy_range(src: int, out: int, count: int, offset: int) -> int:
    """Copy `count` bytes at `offset` from `src` to the same offset of `out`; bytes copied."""
    try:
        copied = os.copy_file_range(src, out, count, offset, offset)
    except OSError as e:
        if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
        copied = 0
    if copied <= 0:  # not supported here, or a short file: copy through user space
        chunk = os.pread(src, count, offset)
        if not chunk:
            msg = "the database file shrank during the backup"
            raise OSError(errno.EIO, msg)
        copied = os.pwrite(out, chunk, offset)
    return copied


def _hash_range(fd: int, size: int) -> str:
    """SHA-256 hex of the first `size` bytes of `fd` (read with pread: no shared offset)."""
    digest = hashlib.sha256()
    offset = 0
    while offset < size:
        chunk = os.pread(fd, min(_RAW_CHUNK, size - offset), offset)
        if not chunk:
            break
        digest.update(chunk)
        offset += len(chunk)
    return digest.hexdigest()


def _copy_database(
    source: sqlite3.Connection,
    target_path: Path,
    pages_per_step: int,
    progress: Callable[[int, int], None] | None,
) -> None:
    """Copy the snapshot of `source` into the (new, empty) SQLite file `target_path`.

    The copy is left in rollback-journal mode, so it is one self-contained file even when the
    source is in WAL mode.
    """
    target = sqlite3.connect(target_path, isolation_level=None)
    try:
        # The target is a temporary file until renamed: crash safety comes from fsync + rename.
        target.execute("PRAGMA journal_mode=OFF")
        target.execute("PRAGMA synchronous=OFF")
        step_progress = None
        if progress is not None:

            def step_progress(_status: int, remaining: int, total: int) -> None:
                progress(total - remaining, total)

        source.backup(target, pages=pages_per_step, progress=step_progress)
        target.execute("PRAGMA journal_mode=DELETE")
    finally:
        target.close()


def _gzip_verified(plain: Path, gz_tmp: Path, written: list[Path], label: str) -> tuple[int, str]:
    """Compress `plain` into `gz_tmp` (gzip level 1, fsynced) and prove it decompresses back.

    The round trip compares SHA-256 of the input with SHA-256 of the decompressed output.
    Returns the size and SHA-256 of `gz_tmp`; raises BackupVerificationFailed.
    """
    digest_in = hashlib.sha256()
    written.append(gz_tmp)
    with open_private_file(gz_tmp) as raw, plain.open("rb") as src:
        with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=_GZIP_LEVEL, mtime=0) as gz:
            while chunk := src.read(_CHUNK):
                digest_in.update(chunk)
                gz.write(chunk)
        raw.flush()
        os.fsync(raw.fileno())
    digest_out, digest_file, size = hashlib.sha256(), hashlib.sha256(), 0
    inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        with gz_tmp.open("rb") as f:
            while chunk := f.read(_CHUNK):
                digest_file.update(chunk)
                size += len(chunk)
                # Bounded output per call: a page of zeros inflates a thousandfold.
                while chunk and not inflate.eof:
                    digest_out.update(inflate.decompress(chunk, _CHUNK))
                    chunk = inflate.unconsumed_tail
                if chunk or inflate.unused_data:
                    msg = f"the compressed {label} has data after its end"
                    raise BackupVerificationFailed(msg, path=str(gz_tmp))
        digest_out.update(inflate.flush())
    except zlib.error as e:
        msg = f"the compressed {label} does not decompress: {e}"
        raise BackupVerificationFailed(msg, path=str(gz_tmp)) from e
    if not inflate.eof:
        msg = f"the compressed {label} is truncated"
        raise BackupVerificationFailed(msg, path=str(gz_tmp))
    if digest_in.digest() != digest_out.digest():
        msg = f"the compressed {label} does not decompress to the copy it was made from"
        raise BackupVerificationFailed(msg, path=str(gz_tmp))
    return size, digest_file.hexdigest()


def _ensure_backup_dir(backup_dir: Path) -> None:
    """Create `backup_dir` (0700) if missing; raises BackupUnusable if that fails or it is read-only."""
    existed = backup_dir.is_dir()
    try:
        make_private_dir(backup_dir)
        if not existed:
            fsync_dir(backup_dir.parent)  # the new directory's entry is durable too
    except OSError as e:
        raise _unusable(backup_dir, f"cannot be created ({e.strerror})") from e
    if not os.access(backup_dir, os.W_OK | os.X_OK):
        raise _unusable(backup_dir, "is not writable")


def _create_tmp(path: Path, backup_dir: Path, written: list[Path]) -> None:
    """Create the 0600 temporary file `path`; a directory refusing it is BackupUnusable."""
    try:
        create_private_file(path)
    except (PermissionError, NotADirectoryError) as e:
        raise _unusable(backup_dir, f"refuses new files ({e.strerror})") from e
    except OSError as e:
        if e.errno == errno.EROFS:
            raise _unusable(backup_dir, "is on a read-only file system") from e
        raise
    written.append(path)


def _new_id(backup_dir: Path, version: int, now: datetime) -> str:
    """A backup id not used by any file in `backup_dir` (final or temporary)."""
    base = f"v{version:04d}-{now.strftime(_STAMP)}Z"
    candidate, n = base, 0
    while any(
        (backup_dir / f"{candidate}{suffix}").exists()
        for suffix in (".sqlite", ".sqlite.gz", ".sqlite.tmp", ".sqlite.gz.tmp")
    ):
        n += 1
        candidate = f"{base}-{n}"
    return candidate


# --- checking -----------------------------------------------------------------------------


@contextmanager
def _plain_copy(info: BackupInfo, label: str) -> Iterator[Path]:
    """Yield the uncompressed SQLite file of the backup (a temporary copy for gzip)."""
    if info.compression == "none":
        yield info.path
        return
    fd, name = tempfile.mkstemp(prefix=f".{info.id}.", suffix=".verify.tmp", dir=info.path.parent)
    tmp = Path(name)
    try:
        try:
            with os.fdopen(fd, "wb") as out, gzip.open(info.path, "rb") as gz:
                shutil.copyfileobj(gz, out, _CHUNK)
        except (gzip.BadGzipFile, EOFError, zlib.error) as e:
            msg = f"{label} does not decompress: {e}"
            raise BackupVerificationFailed(msg, path=str(info.path)) from e
        except OSError as e:
            msg = f"{label} cannot be decompressed for checking: {_os_reason(e)}"
            raise BackupVerificationFailed(msg, path=str(info.path)) from e
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def _check_database_file(path: Path, integrity: str, label: str) -> int:
    """Run the `integrity` check on the SQLite file `path` (opened read-only, immutable).

    Returns its `user_version`. Raises BackupVerificationFailed.
    """
    try:
        conn = _open_for_check(path)
    except sqlite3.DatabaseError as e:
        msg = f"{label} is not a readable SQLite database ({e})"
        raise BackupVerificationFailed(msg, path=str(path)) from e
    return _check_connection(conn, path, integrity, label)


def _open_for_check(path: Path) -> sqlite3.Connection:
    """A read-only connection to `path` whose file is open (it survives a rename)."""
    conn = sqlite3.connect(
        sqlite_uri(path, mode="ro", immutable=True), uri=True, check_same_thread=False
    )
    try:
        conn.execute("PRAGMA schema_version").fetchone()
    except BaseException:
        conn.close()
        raise
    return conn


def _check_connection(conn: sqlite3.Connection, path: Path, integrity: str, label: str) -> int:
    """The check of `_check_database_file` on an open connection, which it closes."""
    try:
        try:
            rows = []
            if integrity != "off":
                pragma = "quick_check" if integrity == "quick" else "integrity_check"
                rows = [r[0] for r in conn.execute(f"PRAGMA {pragma}(10)")]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        msg = f"{label} is not a readable SQLite database ({e})"
        raise BackupVerificationFailed(msg, path=str(path)) from e
    if integrity != "off" and rows != ["ok"]:
        msg = f"{label} fails PRAGMA {integrity}_check: " + "; ".join(map(str, rows))
        raise BackupVerificationFailed(
            msg,
            path=str(path),
            hint="if this is a new backup, the database itself may be damaged: run `schemalog check`",
        )
    return version


def _header_version(path: Path, compression: str) -> int | None:
    """The `user_version` in the SQLite header of a backup file, or None if unreadable."""
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


def _hash_file(path: Path) -> tuple[int, str]:
    """Size and SHA-256 (hex) of the file `path`."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


# --- errors -------------------------------------------------------------------------------


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise UsageError unless `value` is one of `choices`."""
    if value not in choices:
        msg = f"unknown {name} {value!r} (choose one of: {', '.join(choices)})"
        raise UsageError(msg)


def _unusable(backup_dir: Path, why: str) -> BackupUnusable:
    """The BackupUnusable error for `backup_dir`."""
    return BackupUnusable(
        f"backup directory {backup_dir} {why}",
        path=str(backup_dir),
        state="no backup was taken; the database was not changed",
        hint="choose a writable directory with --backup-dir",
    )


def _copy_failed(label: str, database: Path, backup_dir: Path, reason: str) -> BackupError:
    """The BackupError for a copy that failed for `reason`."""
    if "locked" in reason:
        hint = "retry when the application's write transaction has ended"
    else:
        hint = "free space in the backup directory or choose another with --backup-dir, then retry"
    return BackupError(
        f"{label} into {backup_dir} failed: {reason}",
        path=str(database),
        state="no backup was taken (the partial file was removed); the database was not changed",
        hint=hint,
    )


def _os_reason(e: OSError) -> str:
    """A short reason for an OSError, saying "disk full" for ENOSPC."""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"disk full ({e.strerror})"
    where = f" ({e.filename})" if e.filename else ""
    return f"{e.strerror or e}{where}"


def _sqlite_reason(e: sqlite3.Error) -> str:
    """A short reason for an SQLite error, saying "disk full" for SQLITE_FULL."""
    name = getattr(e, "sqlite_errorname", "")
    if name == "SQLITE_FULL":
        return f"disk full ({e})"
    if name.startswith("SQLITE_BUSY"):
        return f"the database stayed locked by another connection for {_BUSY_TIMEOUT_S:g} s"
    return f"{e} ({name})" if name else str(e)


def _remove_all(paths: list[Path]) -> None:
    """Remove every file in `paths`, ignoring those already gone."""
    for path in paths:
        with suppress(OSError):
            path.unlink(missing_ok=True)
