"""Durable file primitives: private files and directories, fsync of files and directories.

Files are created with mode 0600 and directories with 0700 at creation (the umask can only
remove bits), so their content is never readable by others, not even briefly. Every function
raises `OSError` unchanged; callers turn it into the error of their own operation.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "KEPT_DESCRIPTORS",
    "create_private_file",
    "fsync_dir",
    "fsync_file",
    "kept_read_fd",
    "make_private_dir",
    "open_private_file",
]

FILE_MODE = 0o600
DIR_MODE = 0o700


def create_private_file(path: Path) -> None:
    """Create the empty file `path` with mode 0600; raises FileExistsError if it exists."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE))


def open_private_file(path: Path) -> BinaryIO:
    """Create `path` (mode 0600, must not exist) and return it opened for binary writing."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    return os.fdopen(fd, "wb")


def make_private_dir(path: Path) -> None:
    """Create the directory `path` (mode 0700) and any missing parents; an existing one is kept."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)


def fsync_file(path: Path) -> None:
    """Flush the content of the file `path` to stable storage."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Flush the directory `path` (its entries: creations, renames, removals) to stable storage."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


#: (device, inode) -> read descriptor of a file SQLite may hold POSIX locks on. Never
#: closed: closing *any* descriptor of such a file drops every SQLite lock this process
#: holds on it (sqlite.org/howtocorrupt.html, 2.2). One per file for the process's life.
KEPT_DESCRIPTORS: dict[tuple[int, int], int] = {}


def kept_read_fd(path: Path) -> int:
    """A read descriptor of the file now at `path`, opened once and never closed."""
    st = os.stat(path)
    fd = KEPT_DESCRIPTORS.get((st.st_dev, st.st_ino))
    if fd is None:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        st = os.fstat(fd)  # the inode actually opened (the path may have been replaced)
        fd = KEPT_DESCRIPTORS.setdefault((st.st_dev, st.st_ino), fd)
    return fd
