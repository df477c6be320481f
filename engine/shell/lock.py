"""The migration lock: one migration run at a time per database, across processes.

The lock is an exclusive OS lock on `<database>.lock` (mode 0600): `fcntl.flock` on POSIX
(Linux, macOS, the BSDs), `msvcrt.locking` on Windows. The operating system drops it when the
holder's file is closed or the holder dies, even by SIGKILL or TerminateProcess, so it is
never stale. The holder writes who it is as one JSON line into the file so that others can
name it; that record can outlive its holder, which is why `held` comes from the OS, never
from the file. The lock file itself is never deleted: a process could be blocked on the old
inode while another creates a new one, and both would "hold" the lock. This module writes no
journal events; the engine records them from the values returned here.

Why the standard library and not filelock or portalocker: both use these same two calls, but
filelock owns the descriptor and deletes the lock file on Windows, and we need the holder
record on the locked descriptor, a read-only `probe` and a file that is never deleted. Windows
locks are mandatory byte-range locks: the lock covers one byte far past the record
(`_WINDOWS_LOCK_OFFSET`), so others can still read who holds it. msvcrt has no shared lock:
there `probe` takes the exclusive lock for an instant and releases it at once.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import attrs

from schemalog.engine.base.errors import ConfigError, LockHeld, LockTimeout
from schemalog.journal.clock import now
from schemalog.journal.durable import open_rw_nofollow, read_at, write_at
from schemalog.journal.errors import PlantedSymlink

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]
    import msvcrt

__all__ = ["Holder", "LockStatus", "MigrationLock", "break_lock", "probe"]

_FIRST_DELAY_S = 0.05
_MAX_DELAY_S = 0.5
_RECORD_LIMIT = 64 * 1024
_sleep = time.sleep  # replaced in tests
_clock = time.monotonic
#: Windows: the locked byte, past any holder record (locking beyond the end is allowed there).
_WINDOWS_LOCK_OFFSET = 1 << 30


@attrs.frozen
class Holder:
    """Who holds (or last held) the lock: process, host, run, command and since when (UTC)."""

    pid: int
    host: str
    run_id: str
    command: str
    acquired_at: str
    #: What the run is doing now, e.g. `up 3 (003_add_email.sql)`, and since when: readers
    #: show it without waiting for the database.
    doing: str | None = None
    doing_since: str | None = None
    doing_version: int | None = None

    @classmethod
    def for_this_process(cls, run_id: str, command: str) -> Holder:
        """A holder naming this process and host, stamped with the current UTC time."""
        # platform.node() is the host name (uname); `socket` would cost start-up time
        return cls(os.getpid(), platform.node(), run_id, command, now())

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
        doing, since, version = obj.get("doing"), obj.get("doing_since"), obj.get("doing_version")
        if not (isinstance(doing, str) and isinstance(since, str)):
            doing = since = None
        if type(version) is not int:
            version = None
        return cls(pid, *texts, doing=doing, doing_since=since, doing_version=version)


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
            _write_record(fd, holder.to_line())
        except BaseException:
            os.close(fd)  # also drops the OS lock if it was taken
            raise
        self._fd, self._holder = fd, holder

    def note(self, doing: str, version: int | None = None) -> None:
        """Record in the lock file what the holder is doing now, e.g. the migration `version`
        it runs (best effort, see `acquire`): readers show it without reading the database."""
        if self._fd is None or self._holder is None:
            return
        self._holder = attrs.evolve(
            self._holder, doing=doing, doing_since=now(), doing_version=version
        )
        _write_record(self._fd, self._holder.to_line())

    def release(self) -> None:
        """Clear the holder record and drop the lock; does nothing if not held."""
        fd, self._fd, self._holder = self._fd, None, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)  # a clean release leaves no holder behind
        except OSError:
            pass  # a full or failing disk: the record stays, and `held` comes from the kernel
        finally:
            os.close(fd)  # closing the only descriptor drops the OS lock

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
        """Take the OS lock on `fd`, polling with backoff; raises LockTimeout when time is up."""
        start = _clock()
        delay = _FIRST_DELAY_S
        while True:
            if _try_lock(fd, shared=False):
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
    It takes a shared lock (on Windows the exclusive one) for an instant, so a concurrent
    `acquire(timeout=0)` can, rarely, fail because of it. Raises ConfigError when the file
    exists but cannot be opened.
    """
    path = Path(path)
    fd = _open_lock_file(path, mode="read")
    if fd is None:
        return LockStatus(held=False, holder=None)
    try:
        free = _try_lock(fd, shared=True)
        holder = _read_holder(fd)
        if free:
            _unlock(fd)
        return LockStatus(held=not free, holder=holder)
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
        if not _try_lock(fd, shared=False):
            who = holder.describe() if holder is not None else "another process (unrecorded)"
            msg = f"the migration lock {path} is held by {who}, which is alive"
            raise LockHeld(
                msg,
                path=str(path),
                hint="wait for that run to finish; a live lock cannot be broken",
            )
        holder = _read_holder(fd)  # the record may have changed before the lock was taken
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
        flags = os.O_RDWR if mode == "write" else os.O_RDONLY  # both locks work on read-only fds
        extra = getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
        return os.open(path, flags | extra | getattr(os, "O_BINARY", 0))
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


def _write_record(fd: int, line: bytes) -> None:
    """Write the holder record over the old one, then cut it to length (a reader sees the old
    record or the new one as its first line, never an empty file). Best effort: the record only
    names the holder, so a disk too full to take it does not fail the lock itself."""
    try:
        write_at(fd, line, 0)
        os.ftruncate(fd, len(line))
    except OSError:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)


def _try_lock(fd: int, *, shared: bool) -> bool:
    """Take the OS lock on `fd` without waiting; False if another descriptor holds it.

    `shared` (for `probe`) is a shared flock on POSIX and the exclusive lock on Windows.
    """
    if fcntl is not None:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
    os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
    try:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError as e:
        if e.errno in (errno.EACCES, errno.EDEADLK, getattr(errno, "EDEADLOCK", errno.EDEADLK)):
            return False
        raise
    return True


def _unlock(fd: int) -> None:
    """Drop the lock `_try_lock` took on `fd` (closing `fd` drops it too)."""
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return
    os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
    msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


def _read_holder(fd: int) -> Holder | None:
    """The holder recorded in the lock file open as `fd`, or None."""
    try:
        data = read_at(fd, _RECORD_LIMIT, 0)
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
