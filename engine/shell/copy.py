"""Copying a database file: in the kernel with the hash in the same pass, through SQLite's
backup API, or compressed with gzip.

These functions only copy; which one applies, where the copy goes and how it is checked is
`engine.shell.backup`'s. The source descriptor of a raw copy is never closed on POSIX
(`read_descriptor`): closing a descriptor of the database file would drop the SQLite locks
this process holds.

A raw copy uses the first of these that works here: `os.copy_file_range` (Linux), `os.sendfile`
(Linux; macOS refuses a file as its output), a buffered read/write loop (macOS, Windows, file
systems that refuse both). Whichever it is, the SHA-256 is computed in the same pass; with a
kernel copy it may finish after the copy, while the caller already checks and flushes it.
"""

from __future__ import annotations

import errno
import hashlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from schemalog.engine.base.connection import open_database
from schemalog.engine.base.errors import BackupVerificationFailed
from schemalog.journal.durable import open_private_file, read_at, read_descriptor, write_at

__all__ = ["copy_database", "gzip_verified", "kernel_copiers", "raw_copy"]

_CHUNK = 1 << 20
_RAW_CHUNK = 4 << 20  # hashing reads; the buffered copy's reads
_COPY_CHUNK = 64 << 20  # copy_file_range calls: fewer, larger (4 MiB ones cost 2-8x more here)
_GZIP_LEVEL = 1
_OPEN_FLAGS = getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
#: What a kernel copy raises where it cannot copy between these two files.
_UNSUPPORTED = frozenset(
    {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOTSOCK}
)

#: One kernel copy: (src, out, count, offset) -> bytes copied from `offset` to `offset`.
KernelCopy = Callable[[int, int, int, int], int]


def _by_copy_file_range(src: int, out: int, count: int, offset: int) -> int:
    return os.copy_file_range(src, out, count, offset, offset)


def _by_sendfile(src: int, out: int, count: int, offset: int) -> int:
    os.lseek(out, offset, os.SEEK_SET)  # sendfile writes at the output's own offset
    return os.sendfile(out, src, offset, count)


def kernel_copiers() -> list[KernelCopy]:
    """The kernel copies this Python offers, best first (an empty list on Windows)."""
    found: list[KernelCopy] = []
    if hasattr(os, "copy_file_range"):
        found.append(_by_copy_file_range)
    if hasattr(os, "sendfile"):
        found.append(_by_sendfile)
    return found


@contextmanager
def raw_copy(
    database: Path,
    target_path: Path,
    progress: Callable[[int, int], None] | None,
    pages_per_step: int,
) -> Iterator[tuple[int, Callable[[], str]]]:
    """Copy the database file byte for byte into `target_path`; yields (size, sha256) as soon
    as the copy is complete, where `sha256()` waits for the hash of what was copied.

    Only valid while a read transaction keeps writers out (see `_stable_single_file`) until
    the block ends: the hash may still be reading the source inside it. A kernel copy runs
    while a second thread hashes the same bytes (hashlib releases the GIL), so the copy costs
    about as much as `cp`, and the caller can check and flush the copy while the hash
    finishes; without a kernel copy, each chunk read is written and hashed in one loop. On
    leaving the block early, the hash is stopped and joined (`sha256()` then raises). Raises
    OSError (EIO when the source shrinks during the copy).
    """
    stop = threading.Event()
    pools: list[ThreadPoolExecutor] = []  # made only for a kernel copy

    def start_hash() -> Future[str]:
        pools.append(ThreadPoolExecutor(1, thread_name_prefix="schemalog-backup-hash"))
        return pools[0].submit(_hash_range, src, size, stop)

    with read_descriptor(database) as src:
        size = os.fstat(src).st_size
        pages = max(1, size // 4096)
        step = _COPY_CHUNK if pages_per_step <= 0 else min(_COPY_CHUNK, pages_per_step * 4096)

        def report(offset: int) -> None:
            if progress is not None:
                progress(min(pages, offset // 4096), pages)

        try:
            out = os.open(target_path, os.O_WRONLY | _OPEN_FLAGS)
            try:
                digest = _copy_hashed(src, out, size, step, report, start_hash)
            finally:
                os.close(out)
            yield size, digest
        finally:
            stop.set()  # a no-op once the hash is done; else it ends at its next chunk
            for pool in pools:
                pool.shutdown(wait=True)


def _copy_hashed(
    src: int,
    out: int,
    size: int,
    step: int,
    report: Callable[[int], None],
    start_hash: Callable[[], Future[str]],
) -> Callable[[], str]:
    """Copy `size` bytes of `src` into `out`; returns what gives the SHA-256 hex of them."""
    # the kernel path hashes in a second thread, reading at offsets: that needs pread
    kernel = kernel_copiers() if hasattr(os, "pread") else []
    first = _kernel_copy(kernel, src, out, min(step, size), 0) if size else 0
    if first is None:  # no kernel copy works here: one buffered pass
        digest = _buffered_copy(src, out, size, min(step, _RAW_CHUNK), report)
        return lambda: digest
    hashed = start_hash()
    offset = first
    report(offset)
    while offset < size:
        count = min(step, size - offset)
        copied = _kernel_copy(kernel, src, out, count, offset)
        offset += copied if copied is not None else _user_copy(src, out, count, offset)
        report(offset)
    return hashed.result


def _kernel_copy(
    kernel: list[KernelCopy], src: int, out: int, count: int, offset: int
) -> int | None:
    """Bytes copied by the first method of `kernel` that works, or None when none copied any.

    A method that says it cannot copy these files is removed from `kernel` for the rest of
    the copy; other OSErrors (ENOSPC, EIO) are raised.
    """
    while kernel:
        try:
            copied = kernel[0](src, out, count, offset)
        except OSError as e:
            if e.errno not in _UNSUPPORTED:
                raise
            kernel.pop(0)
            continue
        return copied if copied > 0 else None  # 0: a short file, or a file system that declines
    return None


def _user_copy(src: int, out: int, count: int, offset: int) -> int:
    """Copy `count` bytes at `offset` through user space; bytes copied (EIO if none are left)."""
    chunk = read_at(src, count, offset)
    if not chunk:
        msg = "the database file shrank during the backup"
        raise OSError(errno.EIO, msg)
    _write_all_at(out, chunk, offset)
    return len(chunk)


def _buffered_copy(src: int, out: int, size: int, chunk: int, report: Callable[[int], None]) -> str:
    """Read, write and hash `size` bytes chunk by chunk; the SHA-256 hex."""
    digest = hashlib.sha256()
    offset = 0
    while offset < size:
        data = read_at(src, min(chunk, size - offset), offset)
        if not data:
            msg = "the database file shrank during the backup"
            raise OSError(errno.EIO, msg)
        _write_all_at(out, data, offset)
        digest.update(data)
        offset += len(data)
        report(offset)
    return digest.hexdigest()


def _write_all_at(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = write_at(fd, view, offset)
        view, offset = view[written:], offset + written


def _hash_range(fd: int, size: int, stop: threading.Event) -> str:
    """SHA-256 hex of the first `size` bytes of `fd` (read with pread: no shared offset).

    Once `stop` is set it ends at its next chunk by raising: the digest of part of the file
    is never handed out."""
    digest = hashlib.sha256()
    offset = 0
    while offset < size:
        if stop.is_set():
            msg = "the backup's copy was abandoned before its hash was complete"
            raise RuntimeError(msg)
        chunk = read_at(fd, min(_RAW_CHUNK, size - offset), offset)
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
    import gzip  # only for compressed backups (start-up time of the other commands)
    import zlib

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
