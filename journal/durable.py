"""Durable, private files: creation without following links, fsync of files and directories.

Every file schemalog creates is mode 0600 and every directory 0700, whatever the umask (the
mode is set again after creation). Paths schemalog creates or replaces are opened with
`O_NOFOLLOW` (and `O_EXCL` for new temporary files): a symlink planted at one of them is
refused (`PlantedSymlink`), never followed. Other functions raise `OSError` unchanged; callers
turn it into the error of their own operation.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from schemalog.journal.errors import PlantedSymlink

__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "KEPT_DESCRIPTORS",
    "create_private_file",
    "fsync_dir",
    "fsync_file",
    "kept_read_fd",
    "make_private_dir",
    "open_append",
    "open_private_file",
    "open_rw_nofollow",
    "os_reason",
    "read_at",
    "read_descriptor",
    "read_nofollow",
    "refuse_symlink",
    "replace_private_file",
    "write_all",
    "write_at",
    "write_private_file",
]

FILE_MODE = 0o600
DIR_MODE = 0o700
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation
#: POSIX drops a process's SQLite locks when any descriptor of the file closes; Windows locks
#: belong to one handle, and an open handle would keep the application from renaming the file.
_KEEP_READ_DESCRIPTORS = os.name != "nt"


def _refused(path: Path) -> PlantedSymlink:
    target = ""
    with contextlib.suppress(OSError):
        target = f" (pointing at {os.readlink(path)})"
    return PlantedSymlink(
        f"{path} is a symbolic link{target}; schemalog never writes through one",
        path=str(path),
        hint=f"remove the link `{path}` (schemalog creates the real file there)",
    )


def refuse_symlink(path: Path) -> None:
    """Raise PlantedSymlink if `path` is a symbolic link (a missing path is fine)."""
    try:
        if stat.S_ISLNK(os.lstat(path).st_mode):
            raise _refused(Path(path))
    except FileNotFoundError:
        return


def _open(path: Path, flags: int, mode: int = FILE_MODE) -> int:
    """os.open with O_NOFOLLOW and O_CLOEXEC; a link at `path` raises PlantedSymlink."""
    try:
        return os.open(path, flags | _NOFOLLOW | _CLOEXEC | _BINARY, mode)
    except OSError as exc:
        # O_NOFOLLOW refuses a link with ELOOP; O_CREAT | O_EXCL with EEXIST.
        if exc.errno in (errno.ELOOP, errno.EMLINK) or os.path.islink(path):
            raise _refused(Path(path)) from exc
        raise


def _private(fd: int, created: bool) -> None:
    """Give a file this process just created exactly mode 0600 (the umask may have removed bits)."""
    if created and hasattr(os, "fchmod"):
        os.fchmod(fd, FILE_MODE)


def create_private_file(path: Path) -> None:
    """Create the empty file `path` with mode 0600; raises FileExistsError if it exists."""
    fd = _open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        _private(fd, True)
    finally:
        os.close(fd)


def open_private_file(path: Path) -> BinaryIO:
    """Create `path` (mode 0600, must not exist) and return it opened for binary writing."""
    fd = _open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    _private(fd, True)
    return os.fdopen(fd, "wb")


def open_append(path: Path) -> tuple[int, bool]:
    """Open `path` for appending (created 0600 if missing, never through a link).

    Returns the descriptor and whether the file was created by this call.
    """
    try:
        fd = _open(path, os.O_WRONLY | os.O_APPEND)
        return fd, False
    except FileNotFoundError:
        pass
    try:
        fd = _open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL)
    except FileExistsError:  # created meanwhile by another process
        return _open(path, os.O_WRONLY | os.O_APPEND), False
    _private(fd, True)
    return fd, True


def open_rw_nofollow(path: Path) -> tuple[int, bool]:
    """Open `path` read-write (created 0600 if missing, never through a link).

    Returns the descriptor and whether the file was created by this call.
    """
    try:
        return _open(path, os.O_RDWR), False
    except FileNotFoundError:
        pass
    try:
        fd = _open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        return _open(path, os.O_RDWR), False
    _private(fd, True)
    return fd, True


def read_nofollow(path: Path) -> bytes:
    """The bytes of the file `path`, never read through a link (PlantedSymlink)."""
    fd = _open(path, os.O_RDONLY)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def write_private_file(path: Path, data: bytes) -> None:
    """Create `path` (mode 0600, must not exist, never through a link) holding `data`, fsynced,
    its directory entry fsynced too. On failure the partial file is removed."""
    fd = _open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        _private(fd, True)
        write_all(fd, data)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    os.close(fd)
    fsync_dir(Path(path).parent)


def replace_private_file(path: Path, data: bytes) -> None:
    """Replace the file `path` by one holding `data` (mode 0600), atomically: a new temporary
    file beside it, fsync, rename over `path`, fsync of the directory. A crash leaves either
    the old file or the new one at `path` (and perhaps the temporary file, replaced by the
    next call). A link at `path` or at the temporary path is refused (PlantedSymlink)."""
    path = Path(path)
    refuse_symlink(path)
    tmp = path.with_name(path.name + ".replace-tmp")
    refuse_symlink(tmp)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)  # left by a crash during an earlier replacement
    write_private_file(tmp, data)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def make_private_dir(path: Path) -> None:
    """Create the directory `path` (mode 0700) and any missing parents; an existing one is kept.

    Refuses (PlantedSymlink) a symbolic link where the directory itself should be.
    """
    path = Path(path)
    refuse_symlink(path)
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    for created in missing:
        with contextlib.suppress(OSError):
            os.chmod(created, DIR_MODE)


def fsync_file(path: Path) -> None:
    """Flush the content of the file `path` to stable storage.

    Windows flushes only a descriptor open for writing (`_commit`), POSIX any descriptor.
    """
    access = os.O_RDWR if os.name == "nt" else os.O_RDONLY
    fd = os.open(path, access | _CLOEXEC | _BINARY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Flush the directory `path` (its entries: creations, renames, removals) to stable storage.

    A no-op where directories cannot be opened (Windows): there, renames are durable by the
    file system's own journal.
    """
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def os_reason(exc: OSError) -> str:
    """A short reason for an OSError, saying "disk full" for ENOSPC/EDQUOT, with the file."""
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return f"disk full ({exc.strerror})"
    where = f" ({exc.filename})" if exc.filename else ""
    return f"{exc.strerror or exc}{where}"


def read_at(fd: int, size: int, offset: int) -> bytes:
    """Up to `size` bytes of `fd` at `offset` (empty at the end of the file).

    `os.pread` where it exists; elsewhere (Windows) a seek and a read, which move the
    descriptor's offset: there, never share the descriptor between threads.
    """
    pread = getattr(os, "pread", None)
    if pread is not None:
        return pread(fd, size, offset)
    os.lseek(fd, offset, os.SEEK_SET)
    return os.read(fd, size)


def write_at(fd: int, data: bytes, offset: int) -> int:
    """Write `data` (or its first part: the count is returned) to `fd` at `offset`.

    `os.pwrite` where it exists; elsewhere (Windows) a seek and a write.
    """
    pwrite = getattr(os, "pwrite", None)
    if pwrite is not None:
        return pwrite(fd, data, offset)
    os.lseek(fd, offset, os.SEEK_SET)
    return os.write(fd, data)


def write_all(fd: int, data: bytes) -> None:
    """Write all of `data` to `fd` (retrying short writes)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


#: (device, inode) -> read descriptor of a file SQLite may hold POSIX locks on. Never
#: closed: closing *any* descriptor of such a file drops every SQLite lock this process
#: holds on it (sqlite.org/howtocorrupt.html, 2.2). One per file for the process's life.
KEPT_DESCRIPTORS: dict[tuple[int, int], int] = {}


def kept_read_fd(path: Path) -> int:
    """A read descriptor of the file now at `path`, opened once and never closed."""
    st = os.stat(path)
    fd = KEPT_DESCRIPTORS.get((st.st_dev, st.st_ino))
    if fd is None:
        fd = os.open(path, os.O_RDONLY | _CLOEXEC | _BINARY)
        st = os.fstat(fd)  # the inode actually opened (the path may have been replaced)
        fd = KEPT_DESCRIPTORS.setdefault((st.st_dev, st.st_ino), fd)
    return fd


@contextlib.contextmanager
def read_descriptor(path: Path) -> Iterator[int]:
    """A read descriptor of the file now at `path` for the duration of the block.

    On POSIX it is the one kept descriptor (`kept_read_fd`, never closed); on Windows a fresh
    one, closed at the end of the block (there, closing it drops nobody's lock).
    """
    if _KEEP_READ_DESCRIPTORS:
        yield kept_read_fd(path)
        return
    fd = os.open(path, os.O_RDONLY | _CLOEXEC | _BINARY)
    try:
        yield fd
    finally:
        os.close(fd)
