"""The migration lock: one migration run at a time per database, across processes.

The lock is an exclusive `flock` on `<database>.lock` (mode 0600). The kernel drops it when
the holder's file is closed or the holder dies, even by SIGKILL, so it is never stale. The
holder writes who it is as one JSON line into the file so that others can name it; that
record can outlive its holder, which is why `held` comes from the kernel, never from the file.
The lock file itself is never deleted: a process could be blocked on the old inode while
another creates a new one, and both would "hold" the lock. This module writes no journal
events; the engine records them from the values returned here.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import attrs

from schemalog.engine.base.errors import ConfigError, LockHeld, LockTimeout
from schemalog.journal.clock import now
from schemalog.journal.durable import open_rw_nofollow
from schemalog.journal.errors import PlantedSymlink

__all__ = ["Holder", "LockStatus", "MigrationLock", "break_lock", "probe"]

_FIRST_DELAY_S = 0.05
_MAX_DELAY_S = 0.5
_RECORD_LIMIT = 64 * 1024
_sleep = time.sleep  # replaced in tests
_clock = time.monotonic


@attrs.frozen
class Holder:
    """Who holds (or last held) the lock: process, host, run, command and since when (UTC)."""

    pid: int
    host: str
    run_id: str
    command: str
    acquired_at: str

    @classmethod
    def for_this_process(cls, run_id: str, command: str) -> Holder:
        """A holder naming this process and host, stamped with the current UTC time."""
        import socket  # here: status and the other readers never need it (start-up time)

        return cls(os.getpid(), socket.gethostname(), run_id, command, now())

    def describe(self) -> str:
        """One phrase naming the holder, as used in error messages."""
        return (
            f"pid {self.pid} on host {self.host} (run {self.run_id}, "
            f"command {self.command!r}) since {self.acquired_at}"
        )

    def to_line(self) -> bytes:
        """The record written into the lock file: one JSON object and a newline."""
        return (json.dumps(attrs.asdict(self), sort_keys=True) + "\n").encode()

    @classmethod
    def from_line(cls, data: bytes) -> Holder | None:
        """The holder recorded in `data` (a lock file's content), or None if there is none.

        Garbage, an empty file or a partial record gives None, never an error.
        """
        first = data.split(b"\n", 1)[0]
        try:
            obj = json.loads(first)
        except ValueError:
            return None
        if not isinstance(obj, dict):
            return None
        pid = obj.get("pid")
        texts = [obj.get(k) for k in ("host", "run_id", "command", "acquired_at")]
        if type(pid) is not int or not all(isinstance(t, str) for t in texts):
            return None
        return cls(pid, *texts)


@attrs.frozen
class LockStatus:
    """Whether a live process holds the lock, and the last recorded holder.

    `holder` may be stale (a dead process) when `held` is False, and may be None when the
    record is missing or unreadable.
    """

    held: bool
    holder: Holder | None


class MigrationLock:
    """The migration lock of one database, taken through the lock file `path`.

    Two MigrationLock objects exclude each other, in one process or in two. Not reentrant.
    As a context manager it releases the lock on exit (`with MigrationLock(p) as lock:
    lock.acquire(...)`).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None
        self._holder: Holder | None = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    @property
    def holder(self) -> Holder | None:
        """The holder written by `acquire` while the lock is held, else None."""
        return self._holder

    def acquire(
        self,
        holder: Holder,
        *,
        timeout: float,
        on_wait: Callable[[Holder | None, float], None] | None = None,
    ) -> None:
        """Take the lock and record `holder` (as given) in the lock file.

        Tries once at once; if another process holds it, calls `on_wait(current_holder,
        waited_seconds)` after every failed try (the first right after the first try) and tries again with a
        backoff from 50 ms to 500 ms until `timeout` seconds have passed (0: try once).
        Raises LockTimeout naming the holder when the time is up; ConfigError when the lock
        file cannot be opened; RuntimeError if this object already holds the lock.
        """
        if self._fd is not None:
            msg = f"this MigrationLock already holds {self.path}"
            raise RuntimeError(msg)
        fd = _open_lock_file(self.path, mode="create")
        try:
            self._wait_for(fd, timeout, on_wait)
            # The record is written over the old one, then cut to length: a reader sees the
            # old record or the new one as its first line, never an empty file.
            line = holder.to_line()
            os.pwrite(fd, line, 0)
            os.ftruncate(fd, len(line))
        except BaseException:
            os.close(fd)  # also drops the flock if it was taken
            raise
        self._fd, self._holder = fd, holder

    def release(self) -> None:
        """Clear the holder record and drop the lock; does nothing if not held."""
        fd, self._fd, self._holder = self._fd, None, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)  # a clean release leaves no holder behind
        finally:
            os.close(fd)  # closing the only descriptor drops the flock

    def __enter__(self) -> MigrationLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def _wait_for(
        self,
        fd: int,
        timeout: float,
        on_wait: Callable[[Holder | None, float], None] | None,
    ) -> None:
        """Take the flock on `fd`, polling with backoff; raises LockTimeout when time is up."""
        start = _clock()
        delay = _FIRST_DELAY_S
        while True:
            if _try_flock(fd, fcntl.LOCK_EX):
                return
            waited = _clock() - start
            current = _read_holder(fd)
            if waited >= timeout:
                raise _timed_out(self.path, current, waited)
            if on_wait is not None:
                on_wait(current, waited)
            _sleep(min(delay, max(timeout - waited, 0.0)))
            delay = min(delay * 2, _MAX_DELAY_S)


def probe(path: Path) -> LockStatus:
    """Whether a live process holds the lock of `path`, and the last recorded holder.

    Read-only: never creates the lock file (a missing one is a free lock with no holder).
    It takes a shared flock for an instant, so a concurrent `acquire(timeout=0)` can, rarely,
    fail because of it. Raises ConfigError when the file exists but cannot be opened.
    """
    path = Path(path)
    fd = _open_lock_file(path, mode="read")
    if fd is None:
        return LockStatus(held=False, holder=None)
    try:
        free = _try_flock(fd, fcntl.LOCK_SH)
        return LockStatus(held=not free, holder=_read_holder(fd))
    finally:
        os.close(fd)


def break_lock(path: Path) -> Holder | None:
    """Clear the holder record left by a dead holder and return it (None if there was none).

    Only when no live process holds the lock: the lock itself is never stale, so this only
    tidies the record. Raises LockHeld naming the live holder otherwise; ConfigError when the
    lock file cannot be opened.
    """
    path = Path(path)
    fd = _open_lock_file(path, mode="write")
    if fd is None:
        return None
    try:
        holder = _read_holder(fd)
        if not _try_flock(fd, fcntl.LOCK_EX):
            who = holder.describe() if holder is not None else "another process (unrecorded)"
            msg = f"the migration lock {path} is held by {who}, which is alive"
            raise LockHeld(
                msg,
                path=str(path),
                hint="wait for that run to finish; a live lock cannot be broken",
            )
        holder = _read_holder(fd)  # the record may have changed before the flock was taken
        os.ftruncate(fd, 0)
        return holder
    finally:
        os.close(fd)


def _open_lock_file(path: Path, *, mode: str) -> int | None:
    """Open the lock file: "create" (read-write, created 0600), "write" or "read".

    Returns None when the file is missing and `mode` is not "create".
    """
    try:
        if mode == "create":
            return open_rw_nofollow(path)[0]
        flags = os.O_RDWR if mode == "write" else os.O_RDONLY  # flock works on read-only fds too
        return os.open(path, flags | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0))
    except PlantedSymlink:
        raise
    except FileNotFoundError:
        if mode == "create":
            raise _unusable(path, "its directory does not exist") from None
        return None
    except OSError as e:
        if os.path.islink(path):
            raise PlantedSymlink(
                f"the lock file {path} is a symbolic link; schemalog never writes through one",
                path=str(path),
                hint=f"remove the link `{path}`",
            ) from e
        raise _unusable(path, e.strerror) from e


def _try_flock(fd: int, kind: int) -> bool:
    """Take the flock `kind` on `fd` without waiting; False if another descriptor holds it."""
    try:
        fcntl.flock(fd, kind | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _read_holder(fd: int) -> Holder | None:
    """The holder recorded in the lock file open as `fd`, or None."""
    try:
        data = os.pread(fd, _RECORD_LIMIT, 0)
    except OSError:
        return None
    return Holder.from_line(data)


def _timed_out(path: Path, holder: Holder | None, waited: float) -> LockTimeout:
    """The LockTimeout error naming `holder`."""
    who = holder.describe() if holder is not None else "another process (its record is unreadable)"
    return LockTimeout(
        f"the migration lock {path} is held by {who}; gave up after {waited:.1f} s",
        path=str(path),
        hint="wait for that run to finish and retry, or check `schemalog lock status`",
    )


def _unusable(path: Path, why: str | None) -> ConfigError:
    """The ConfigError for a lock file that cannot be opened."""
    return ConfigError(
        f"cannot open the migration lock file {path}: {why}",
        path=str(path),
        hint="check that the database directory exists and is writable (--database)",
    )
