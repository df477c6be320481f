"""Run schemalog as on a platform without some of Linux's calls, on Linux.

    python simulated_platform.py --without fcntl,copy_file_range,sendfile,pread -- ARGS...

runs `schemalog ARGS...` in this process after taking away what `--without` names:

- `fcntl`: the module cannot be imported (an import hook); a stand-in `msvcrt` (`FakeMsvcrt`)
  offers `locking` with the Windows CRT's contract — lock `nbytes` from the descriptor's
  current offset, `OSError(EACCES)` when another handle holds them, per handle, released when
  the handle closes — built on the real `flock` taken before the hook was installed;
- `copy_file_range`, `sendfile`, `pread` (with `pwrite`), `O_CLOEXEC`: removed from `os`;
- `pipe_wakeup`: signals wake the watcher through a socket pair, as on Windows.

With `SIM_TRACE=FILE`, one JSON line per event is appended to FILE: each `locking` call
(pid, mode, offset, outcome) and each copy strategy used by a backup (`copy`: `kernel` or
`buffered`), so a test can tell that the simulated path, not Linux's, did the work.
"""

from __future__ import annotations

import errno
import json
import os
import sys
import types
from importlib.abc import MetaPathFinder
from typing import Any

LK_UNLCK, LK_LOCK, LK_NBLCK, LK_RLCK, LK_NBRLCK = range(5)  # the CRT's values


def trace(**event: Any) -> None:
    """Append `event` (with this pid) to the SIM_TRACE file, if one is set."""
    path = os.environ.get("SIM_TRACE")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"pid": os.getpid(), **event}) + "\n")


class FakeMsvcrt(types.ModuleType):
    """`msvcrt.locking` with the Windows contract, on Linux (one locked range per handle)."""

    LK_UNLCK, LK_LOCK, LK_NBLCK, LK_RLCK, LK_NBRLCK = (
        LK_UNLCK,
        LK_LOCK,
        LK_NBLCK,
        LK_RLCK,
        LK_NBRLCK,
    )

    def __init__(self, flock_module: Any) -> None:
        super().__init__("msvcrt")
        self._fcntl = flock_module
        self.locked: dict[int, tuple[int, int]] = {}  # fd -> (offset, nbytes) last locked
        self.calls: list[tuple[int, int, int, str]] = []

    def locking(self, fd: int, mode: int, nbytes: int) -> None:
        offset = os.lseek(fd, 0, os.SEEK_CUR)
        try:
            self._locking(fd, mode, nbytes, offset)
        except OSError:
            self._note(fd, mode, offset, "busy")
            raise
        self._note(fd, mode, offset, "ok")

    def _locking(self, fd: int, mode: int, nbytes: int, offset: int) -> None:
        f = self._fcntl
        if mode == LK_UNLCK:
            if self.locked.get(fd) != (offset, nbytes):  # Windows: must match a locked range
                raise OSError(errno.EACCES, "Permission denied")
            f.flock(fd, f.LOCK_UN)
            del self.locked[fd]
            return
        try:
            f.flock(fd, f.LOCK_EX | (0 if mode in (LK_LOCK, LK_RLCK) else f.LOCK_NB))
        except BlockingIOError:
            raise OSError(errno.EACCES, "Permission denied") from None
        self.locked[fd] = (offset, nbytes)  # (an entry outlives a close: fds are reused)

    def _note(self, fd: int, mode: int, offset: int, outcome: str) -> None:
        self.calls.append((fd, mode, offset, outcome))
        trace(kind="locking", mode=mode, offset=offset, outcome=outcome)


class _Refuse(MetaPathFinder):
    """An import hook for which the named top-level modules do not exist."""

    def __init__(self, names: set[str]) -> None:
        self.names = names

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        if fullname in self.names:
            msg = f"No module named {fullname!r} (simulated)"
            raise ModuleNotFoundError(msg, name=fullname)
        return None


def simulate(without: set[str]) -> None:
    """Take away what `without` names (see the module docstring), before schemalog loads."""
    if "fcntl" in without:
        import fcntl  # the real one, kept by the stand-in only

        sys.modules.pop("fcntl", None)
        sys.meta_path.insert(0, _Refuse({"fcntl"}))
        sys.modules["msvcrt"] = FakeMsvcrt(fcntl)
    names = {"pread": ("pread", "pwrite")}
    for name in without - {"fcntl", "pipe_wakeup"}:
        for attr in names.get(name, (name,)):
            if hasattr(os, attr):
                delattr(os, attr)
    if "pipe_wakeup" in without:
        from schemalog.engine.shell import signals

        signals._WAKEUP_SOCKETS = True


def trace_copies() -> None:
    """Record which copy strategy each raw backup copy takes (SIM_TRACE)."""
    from schemalog.engine.shell import copy

    buffered, kernel = copy._buffered_copy, copy._kernel_copy

    def traced_buffered(*args: Any) -> str:
        trace(kind="copy", how="buffered")
        return buffered(*args)

    def traced_kernel(methods: list, *args: Any) -> int | None:
        names = [m.__name__ for m in methods]
        result = kernel(methods, *args)
        if result is not None:
            trace(kind="copy", how="kernel", methods=names)
        return result

    copy._buffered_copy = traced_buffered
    copy._kernel_copy = traced_kernel


def main(argv: list[str]) -> None:
    split = argv.index("--")
    options, args = argv[:split], argv[split + 1 :]
    without: set[str] = set()
    if options[:1] == ["--without"]:
        without = {name for name in options[1].split(",") if name}
    simulate(without)
    trace_copies()
    from schemalog.engine.cli import main as schemalog

    schemalog(args)


if __name__ == "__main__":
    main(sys.argv[1:])
