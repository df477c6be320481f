"""A real small filesystem (tmpfs) filled to a chosen free-space level.

Needs root (mount). The filesystem is mounted under the test's own tmp dir, so parallel
sessions never share one, and unmounted by a finalizer (`mounted`, a context manager).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SIZE = 4 * 1024 * 1024
PAGE = 4096
FILLER = "filler.bin"


class MountFailed(Exception):
    """Raised when the tmpfs cannot be mounted (not root, or no mount permission)."""


@contextmanager
def mounted(directory: Path, size: int = SIZE) -> Iterator[Path]:
    """A tmpfs of `size` bytes mounted on `directory` (created) for the block's duration."""
    directory.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        msg = "not root: cannot mount a tmpfs"
        raise MountFailed(msg)
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(directory)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if proc.returncode != 0:
        msg = f"mount -t tmpfs failed: {proc.stderr.strip()}"
        raise MountFailed(msg)
    try:
        yield directory
    finally:
        subprocess.run(
            ["umount", "-l", str(directory)], capture_output=True, timeout=30, check=False
        )


def free_bytes(directory: Path) -> int:
    """Bytes an unprivileged writer may still use on the filesystem of `directory`."""
    stat = os.statvfs(directory)
    return stat.f_bavail * stat.f_frsize


def fill(directory: Path, leave: int) -> Path:
    """Write a filler file in `directory` so that about `leave` bytes stay free; return it.

    tmpfs counts whole pages, so the level reached is `leave` rounded down to a page.
    """
    filler = directory / FILLER
    with open(filler, "wb") as handle:
        chunk = b"\0" * (256 * 1024)
        while (room := free_bytes(directory) - leave) > 0:
            handle.write(chunk[: min(len(chunk), room)])
            handle.flush()
            os.fsync(handle.fileno())
    return filler
