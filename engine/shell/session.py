"""A session: one command's connection to a database, its journal, its lock and its run id.

Read-only commands open the database read-only (they never create or change a file);
writing commands check that every file they will write is writable, take the migration lock
within the `lock_timeout` budget, and only then open the database read-write. The time left
in that budget is what SQLite may wait for its own write lock (`remaining`).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from schemalog.engine.base.connection import (
    Functions,
    IntegrityLevel,
    open_database,
    sqlite_reason,
)
from schemalog.engine.base.context import Context
from schemalog.engine.base.errors import (
    ConfigError,
    DatabaseBusy,
    NeedsHuman,
    RecoveryPending,
    SchemalogError,
    StorageError,
    UsageError,
)
from schemalog.engine.base.journal_key import read_journal_key
from schemalog.engine.base.logs import Logger, get_logger
from schemalog.engine.base.paths import DatabasePaths
from schemalog.engine.base.settings import Settings
from schemalog.engine.core.diagnosis import corrupt_error
from schemalog.engine.shell import signals
from schemalog.engine.shell.lock import Holder, MigrationLock
from schemalog.engine.shell.preflight import check_writable
from schemalog.journal import failpoints
from schemalog.journal.clock import iso, now, utc_now
from schemalog.journal.durable import create_private_file, os_reason
from schemalog.journal.events import Draft, Kind
from schemalog.journal.journal import Journal
from schemalog.journal.jsonl import JsonlStore

__all__ = ["Session", "new_run_id"]

_READ_TIMEOUT_S = 5.0


def _process_started() -> str:
    """When this process started (UTC, ISO-8601), to the clock tick: from Linux's /proc (the
    start in ticks after boot, against CLOCK_BOOTTIME now; /proc/stat's `btime` is only to
    the second), else the moment this module was imported."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        since_boot = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22 of stat(5)
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - since_boot
        return iso(utc_now() - timedelta(seconds=max(age, 0.0)))
    except (OSError, ValueError, IndexError, AttributeError):
        return now()


#: When this process started: a run that failed after that is one this process arrived behind.
PROCESS_STARTED = _process_started()
_WRITER_CACHE_KIB = 65536


def new_run_id() -> str:
    """A fresh run id (uuid4 hex, 12 characters)."""
    return uuid.uuid4().hex[:12]


class Session:
    """An open database for one command; use as a context manager."""

    def __init__(
        self,
        ctx: Context,
        *,
        command: str,
        write: bool,
        tolerate_damage: bool = False,
        busy_timeout: float = _READ_TIMEOUT_S,
    ) -> None:
        self.ctx = ctx
        self.settings: Settings = ctx.settings
        self.paths: DatabasePaths = ctx.settings.paths
        self.command = command
        self.write = write
        self.tolerate_damage = tolerate_damage
        self.busy_timeout = busy_timeout  # readers: how long SQLite may wait for a writer
        self.run_id = new_run_id()
        self.lock: MigrationLock | None = None
        #: The runs this session waited behind for the lock (their run ids), and when it began:
        #: a run that failed while this process waited or arrived is reported, not repeated.
        self.waited_for: set[str] = set()
        self.began_at = PROCESS_STARTED
        self._conn: sqlite3.Connection | None = None
        self._journal: Journal | None = None
        self._deadline = time.monotonic() + ctx.settings.lock_timeout
        self._log: Logger | None = None
        self._stack = contextlib.ExitStack()

    # -- what the rest of the shell uses ------------------------------------------------

    @property
    def conn(self) -> sqlite3.Connection:
        """The session's connection (autocommit mode)."""
        assert self._conn is not None, "the session is not open"
        return self._conn

    @property
    def journal(self) -> Journal:
        """The session's journal over `conn` and the JSONL."""
        assert self._journal is not None, "the session is not open"
        return self._journal

    @property
    def integrity(self) -> IntegrityLevel:
        """The configured integrity check level."""
        return self.settings.integrity

    @property
    def functions(self) -> Functions | None:
        """The application's SQL functions, registered on every connection to the database."""
        return self.ctx.functions

    @property
    def log(self) -> Logger:
        """The `schemalog.run` logger bound with this run's id and command."""
        if self._log is None:
            self._log = get_logger("run", run_id=self.run_id, command=self.command)
        return self._log

    def remaining(self) -> float:
        """Seconds left of the `lock_timeout` budget (0 when spent)."""
        return max(0.0, self._deadline - time.monotonic())

    def record(self, kind: Kind, version: int | None = None, /, **data: Any) -> None:
        """Append one event of this command."""
        self.journal.append(Draft(self.run_id, kind, version, data))

    # -- opening and closing -----------------------------------------------------

    def __enter__(self) -> Session:
        try:
            self.open()
        except BaseException as exc:
            self.close()
            if isinstance(exc, OSError | sqlite3.Error) and not isinstance(exc, SchemalogError):
                raise self._storage_error(exc) from exc
            raise
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        self.close()
        if isinstance(exc, OSError | sqlite3.Error) and not isinstance(exc, SchemalogError):
            raise self._storage_error(exc) from exc

    def _storage_error(self, exc: OSError | sqlite3.Error) -> StorageError | DatabaseBusy:
        """The one-line error for the disk or SQLite failing under this command."""
        name = getattr(exc, "sqlite_errorname", "") or ""
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            return DatabaseBusy(
                "the database is busy: another connection holds a write transaction "
                f"({self.paths.database}: {exc})",
                hint="retry when the application's write transaction has ended",
            )
        reason = os_reason(exc) if isinstance(exc, OSError) else sqlite_reason(exc)
        what = f"{self.command} of {self.paths.database} failed: {reason}"
        if not self.write:
            return StorageError(what, state="nothing was changed", hint="check the disk and retry")
        return StorageError(
            what,
            hint="fix the cause (free disk space, check the disk or the permissions), then run "
            "`schemalog recover`",
        )

    def open(self) -> None:
        """Check and lock (writers), open the connection and the journal."""
        db = self.paths.database
        if not self.write and not db.exists():
            msg = f"database {db} does not exist"
            raise UsageError(
                msg,
                state="nothing was created",
                hint="check --database, or run `schemalog up` to create it",
            )
        if self.write:
            # A signal stops a writing command only at its safe points (engine.shell.signals).
            self._stack.enter_context(signals.protected())
            if not db.parent.is_dir():
                msg = f"directory {db.parent} of the database does not exist"
                raise ConfigError(
                    msg, state="nothing was created", hint="create it or fix --database"
                )
            check_writable(self.paths)
            self.lock = MigrationLock(self.paths.lock)
            self.lock.acquire(
                Holder.for_this_process(self.run_id, self.command),
                timeout=self.settings.lock_timeout,
                on_wait=self._waiting,
            )
            failpoints.hit("after_lock")
        key = read_journal_key(self.settings.journal_key_file)
        self._conn = self._open_connection()
        jsonl = JsonlStore(self.paths.jsonl, durability=self.settings.durability)
        self._journal = Journal(self._conn, jsonl, key=key, memo=self.ctx.memo)

    def _waiting(self, holder: Holder | None, waited: float) -> None:
        signals.check()
        if holder is not None:
            self.waited_for.add(holder.run_id)
        self.ctx.observer.lock_wait(holder.describe() if holder else None, waited)

    def _open_connection(self) -> sqlite3.Connection:
        db = self.paths.database
        try:
            if self.ctx.connect is not None:
                conn = self.ctx.connect()
                conn.isolation_level = None
            elif self.write:
                if not db.exists():
                    # SQLite would create it with the umask's mode; schemalog's files are 0600
                    # (SQLite gives its -journal, -wal and -shm the database file's mode).
                    with contextlib.suppress(FileExistsError):
                        create_private_file(db)
                conn = open_database(
                    db,
                    mode="rwc",
                    timeout=max(self.remaining(), 0.1),
                    functions=self.ctx.functions,
                )
                # A page cache big enough that a run's changes seldom spill to the file before
                # COMMIT: in rollback-journal mode a spill takes the EXCLUSIVE lock, and every
                # reader would then wait until the run commits. (A damaged file refuses it.)
                with contextlib.suppress(sqlite3.DatabaseError):
                    conn.execute(f"PRAGMA cache_size = -{_WRITER_CACHE_KIB}")
            else:
                conn = open_database(
                    db, mode="ro", timeout=self.busy_timeout, functions=self.ctx.functions
                )
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.DatabaseError as exc:
            raise self._unreadable(exc) from exc
        if not self.tolerate_damage:
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except sqlite3.DatabaseError as exc:
                conn.close()
                raise self._unreadable(exc) from exc
        return conn

    def _unreadable(self, exc: sqlite3.DatabaseError) -> Exception:
        """The error for a database this session cannot read (hot journal, damage, busy)."""
        name = getattr(exc, "sqlite_errorname", "") or ""
        if name == "SQLITE_READONLY_ROLLBACK" or (
            not self.write and "readonly database" in str(exc)
        ):
            return RecoveryPending(
                f"an interrupted transaction is pending in {self.paths.database} "
                "(a writer was killed; SQLite's hot journal holds the pages to roll back)",
                hint="run `schemalog recover` (any writing command also rolls it back)",
            )
        if name.startswith("SQLITE_BUSY"):
            return DatabaseBusy(
                "the database is busy: another connection holds a write transaction "
                f"({self.paths.database}: {exc})",
                hint="retry when the application's write transaction has ended",
            )
        try:
            events = JsonlStore(self.paths.jsonl).read().events
        except NeedsHuman:
            events = ()
        return corrupt_error(events, what=f"cannot read database {self.paths.database}: {exc}")

    def reopen(self) -> None:
        """Open a fresh connection and journal (after the database file was replaced)."""
        old = self.journal
        self.conn.close()
        self._conn = self._open_connection()
        self._journal = Journal(self._conn, old.jsonl, key=old.key, memo=old.memo)
        self._journal.carry_over(old)

    def close(self) -> None:
        """Close the journal and the connection, then release the lock."""
        if self._journal is not None:
            with contextlib.suppress(Exception):  # closing must not mask the real error
                self._journal.close()
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None
        if self.lock is not None:
            self.lock.release()
            self.lock = None
        self._stack.close()
