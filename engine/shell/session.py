"""A session: one command's connection to a database, its journal, its lock and its run id.

Read-only commands open the database read-only (they never create or change a file);
writing commands check that every file they will write is writable, take the migration lock
within the `lock_timeout` budget, and only then open the database read-write. The time left
in that budget is what SQLite may wait for its own write lock (`remaining`).
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
import uuid
from typing import Any

from schemalog.engine.base.connection import IntegrityLevel, open_database
from schemalog.engine.base.context import Context
from schemalog.engine.base.errors import (
    ConfigError,
    DatabaseBusy,
    NeedsHuman,
    RecoveryPending,
    UsageError,
)
from schemalog.engine.base.logs import get_logger
from schemalog.engine.base.paths import DatabasePaths
from schemalog.engine.base.settings import Settings
from schemalog.engine.core.diagnosis import corrupt_error
from schemalog.engine.shell import signals
from schemalog.engine.shell.lock import Holder, MigrationLock
from schemalog.engine.shell.preflight import check_writable
from schemalog.journal import failpoints
from schemalog.journal.events import Draft, Kind
from schemalog.journal.journal import Journal
from schemalog.journal.jsonl import JsonlStore

__all__ = ["Session", "new_run_id"]

_READ_TIMEOUT_S = 5.0


def new_run_id() -> str:
    """A fresh run id (uuid4 hex, 12 characters)."""
    return uuid.uuid4().hex[:12]


class Session:
    """An open database for one command; use as a context manager."""

    def __init__(
        self, ctx: Context, *, command: str, write: bool, tolerate_damage: bool = False
    ) -> None:
        self.ctx = ctx
        self.settings: Settings = ctx.settings
        self.paths: DatabasePaths = ctx.settings.paths
        self.command = command
        self.write = write
        self.tolerate_damage = tolerate_damage
        self.run_id = new_run_id()
        self.lock: MigrationLock | None = None
        self.waited_for: Holder | None = None  # the holder this session waited behind, if any
        self._conn: sqlite3.Connection | None = None
        self._journal: Journal | None = None
        self._deadline = time.monotonic() + ctx.settings.lock_timeout
        self._log: Any = None
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
    def log(self) -> Any:
        """The logger bound with this run's id and command (created on first use)."""
        if self._log is None:
            self._log = get_logger(run_id=self.run_id, command=self.command)
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
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
        self._conn = self._open_connection()
        jsonl = JsonlStore(self.paths.jsonl, durability=self.settings.durability)
        self._journal = Journal(self._conn, jsonl, memo=self.ctx.memo)

    def _waiting(self, holder: Holder | None, waited: float) -> None:
        signals.check()
        self.waited_for = holder or self.waited_for
        self.ctx.observer.lock_wait(holder.describe() if holder else None, waited)

    def _open_connection(self) -> sqlite3.Connection:
        db = self.paths.database
        try:
            if self.ctx.connect is not None:
                conn = self.ctx.connect()
                conn.isolation_level = None
            elif self.write:
                conn = open_database(db, mode="rwc", timeout=max(self.remaining(), 0.1))
            else:
                conn = open_database(db, mode="ro", timeout=_READ_TIMEOUT_S)
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
                f"the database {self.paths.database} is busy: another connection holds a "
                f"write transaction ({exc})",
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
        self._journal = Journal(self._conn, old.jsonl, memo=old.memo)
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
