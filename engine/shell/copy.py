"""Copying a database file: in the kernel with the hash in the same pass, through SQLite's
backup API, or compressed with gzip.

These functions only copy; which one applies, where the copy goes and how it is checked is
`engine.shell.backup`'s. The source descriptor of a raw copy is never closed (`kept_read_fd`):
closing a descriptor of the database file would drop the SQLite locks this process holds.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import os
import sqlite3
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from schemalog.engine.base.connection import open_database
from schemalog.engine.base.errors import BackupVerificationFailed
from schemalog.journal.durable import kept_read_fd, open_private_file

__all__ = ["copy_database", "gzip_verified", "raw_copy"]

_CHUNK = 1 << 20
_RAW_CHUNK = 4 << 20  # hashing reads
_COPY_CHUNK = 64 << 20  # copy_file_range calls: fewer, larger (4 MiB ones cost 2-8x more here)
_GZIP_LEVEL = 1


def raw_copy(
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


def copy_database(
    source: sqlite3.Connection,
    target_path: Path,
    pages_per_step: int,
    progress: Callable[[int, int], None] | None,
) -> None:
    """Copy the snapshot of `source` into the (new, empty) SQLite file `target_path`.

    The copy is left in rollback-journal mode, so it is one self-contained file even when the
    source is in WAL mode.
    """
    target = open_database(target_path, mode="rw")
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


def gzip_verified(plain: Path, gz_tmp: Path, written: list[Path], label: str) -> tuple[int, str]:
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
