"""SIGINT and SIGTERM during a command: interrupt the running statement, stop at a safe point.

Python runs signal handlers only between bytecodes, so a handler alone cannot stop a long
SQLite statement: `install()` (called by the CLI; a library user's process keeps its own
handlers) also sets a wakeup descriptor, and a watcher thread calls `interrupt()` on every
registered connection as soon as a signal arrives (SQLite's interrupt is safe from another
thread). The interrupted statement fails; the code around it asks `check()` at its safe
points and raises `Interrupted`, so the command rolls back, records the attempt as
interrupted, releases the lock and exits 128 + the signal number. A writing command is
`protected()` for its whole session (it stops only at those safe points); any other command
stops at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from schemalog.engine.base.errors import Interrupted

if TYPE_CHECKING:
    import socket

__all__ = ["check", "install", "name", "pending", "protected", "watching"]

_lock = threading.Lock()
_connections: set[sqlite3.Connection] = set()
_received: list[int] = []
_installed = False
_protected = [0]
_NAMES = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}
#: Windows: `set_wakeup_fd` takes only a socket (and Python 3.11 cannot unblock a pipe there).
_WAKEUP_SOCKETS = os.name == "nt"
_kept: list[socket.socket] = []


def install() -> None:
    """Handle SIGINT and SIGTERM as described above (main thread only; idempotent)."""
    global _installed
    if _installed or threading.current_thread() is not threading.main_thread():
        return
    wakeup_fd, read = _wakeup_channel()
    for signum in _NAMES:
        signal.signal(signum, _remember)
    signal.set_wakeup_fd(wakeup_fd, warn_on_full_buffer=False)
    threading.Thread(target=_watch, args=(read,), name="schemalog-signals", daemon=True).start()
    _installed = True


def _wakeup_channel() -> tuple[int, Callable[[], bytes]]:
    """The descriptor the C-level handler writes each signal number to, and how the watcher
    reads it: a pipe on POSIX, a socket pair on Windows."""
    if not _WAKEUP_SOCKETS:
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        return write_fd, lambda: os.read(read_fd, 64)
    import socket  # Windows only: start-up time elsewhere

    reader, writer = socket.socketpair()
    writer.setblocking(False)
    _kept.extend((reader, writer))  # alive for the process's life
    return writer.fileno(), lambda: reader.recv(64)


def pending() -> int | None:
    """The signal received, if one arrived since the command started."""
    return _received[0] if _received else None


def name(signum: int) -> str:
    """`SIGINT`, `SIGTERM`, or the number."""
    return _NAMES.get(signum, str(signum))


def check() -> None:
    """Raise Interrupted if SIGINT or SIGTERM arrived (called at safe points)."""
    signum = pending()
    if signum is not None:
        raise Interrupted(f"stopped by {name(signum)}", signum=signum)


@contextlib.contextmanager
def protected() -> Iterator[None]:
    """Inside the block a signal never raises where it lands: only `check()` raises."""
    _protected[0] += 1
    try:
        yield
    finally:
        _protected[0] -= 1


@contextlib.contextmanager
def watching(conn: sqlite3.Connection) -> Iterator[None]:
    """Interrupt `conn`'s running statement when a signal arrives, while inside the block."""
    with _lock:
        _connections.add(conn)
    try:
        yield
    finally:
        with _lock:
            _connections.discard(conn)


def _remember(signum: int, _frame: object) -> None:
    if signum not in _received:
        _received.append(signum)
    _interrupt_all()
    if not _protected[0]:
        check()


def _watch(read: Callable[[], bytes]) -> None:
    while True:
        try:
            data = read()
        except OSError:
            return
        for byte in data:
            if byte in _NAMES and byte not in _received:
                _received.append(byte)
        _interrupt_all()


def _interrupt_all() -> None:
    with _lock:
        conns = list(_connections)
    for conn in conns:
        with contextlib.suppress(sqlite3.Error):
            conn.interrupt()
