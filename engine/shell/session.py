"""A session: one command's connection to a database, its journal, its lock and its run id.

Read-only commands open the database with `mode=ro` semantics (they never
create files); writing commands create the database if needed, take the
migration lock first, and only then read the journal and plan.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import uuid
from collections.abc import Callable
from typing import Any

from schemalog.engine.base.errors import ConfigError, LockHeld, NeedsHuman, UsageError
from schemalog.engine.base.paths import DatabasePaths
from schemalog.engine.base.settings import Settings
from schemalog.engine.shell.lock import Holder, MigrationLock
from schemalog.journal import failpoints
from schemalog.journal.chain import now
from schemalog.journal.events import Draft, Kind
from schemalog.journal.journal import Journal
from schemalog.journal.jsonl import JsonlStore

__all__ = ["Connect", "Session", "new_run_id"]

Connect = Callable[[], sqlite3.Connection]


def new_run_id() -> str:
    """A fresh, sortable-enough run id (uuid4 hex, 12 characters)."""
    return uuid.uuid4().hex[:12]


class Session:
    """An open database for one command; use as a context manager."""

    def __init__(
        self,
        settings: Settings,
        *,
        command: str,
        write: bool,
        connect: Connect | None = None,
        on_lock_wait: Callable[[Holder | None, float], None] | None = None,
        tolerate_damage: bool = False,
    ) -> None:
        self.settings = settings
        self.tolerate_damage = tolerate_damage
        self.paths: DatabasePaths = settings.paths
        self.command = command
        self.write = write
        self.run_id = new_run_id()
        self._log: Any = None
        self._connect = connect
        self._on_lock_wait = on_lock_wait
        self.lock: MigrationLock | None = None
        self.conn: sqlite3.Connection | None = None
        self.journal: Journal | None = None
        self.run_open = False
        self.backups_taken: list[Any] = []  # BackupRecords taken by this session, in order
        self.failed_backup: Any = None  # a backup of this session that failed its check

    @property
    def log(self) -> Any:
        """The structlog logger bound with this run's id and command (created on first use)."""
        if self._log is None:
            from schemalog.engine.base.logs import get_logger

            self._log = get_logger(run_id=self.run_id, command=self.command)
        return self._log

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
        """Take the lock (writers), open the connection and the journal."""
        db = self.paths.database
        if not self.write and not db.exists():
            msg = f"database {db} does not exist"
            raise UsageError(
                msg,
                state="nothing was created",
                hint="check --database, or run `schemalog up` to create it",
            )
        if self.write:
            if not db.parent.is_dir():
                msg = f"directory {db.parent} of the database does not exist"
                raise ConfigError(
                    msg, state="nothing was created", hint="create it or fix --database"
                )
            self.lock = MigrationLock(self.paths.lock)
            holder = Holder(
                pid=os.getpid(),
                host=socket.gethostname(),
                run_id=self.run_id,
                command=self.command,
                acquired_at=now(),
            )
            self.lock.acquire(
                holder, timeout=self.settings.lock_timeout, on_wait=self._on_lock_wait
            )
            failpoints.hit("after_lock")
        self.conn = self._open_connection()
        jsonl = JsonlStore(self.paths.jsonl, durability=self.settings.durability)
        self.journal = Journal(self.conn, jsonl)

    def _open_connection(self) -> sqlite3.Connection:
        db = self.paths.database
        try:
            if self._connect is not None:
                conn = self._connect()
            elif self.write:
                conn = sqlite3.connect(db, timeout=max(self.settings.lock_timeout, 1.0))
            else:
                conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0)
            conn.isolation_level = None
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from exc
        if not self.tolerate_damage:
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except sqlite3.DatabaseError as exc:
                conn.close()
                raise self._damaged(exc) from exc
        return conn

    def _damaged(self, exc: sqlite3.DatabaseError) -> NeedsHuman:
        """The error for a database SQLite cannot read; names a backup known to the JSONL."""
        from schemalog.engine.shell.recovery import corrupt_error

        try:
            events = JsonlStore(self.paths.jsonl).read().events
        except NeedsHuman:
            events = ()
        return corrupt_error(events, what=f"cannot read database {self.paths.database}: {exc}")

    def reopen(self) -> None:
        """Open a fresh connection and journal (after the database file was replaced)."""
        assert self.journal is not None and self.conn is not None
        old = self.journal
        self.conn.close()
        self.conn = self._open_connection()
        self.journal = Journal(self.conn, old.jsonl)
        self.journal.head_seq, self.journal.head_hash = old.head_seq, old.head_hash
        self.journal.table_offline = old.table_offline

    def close(self) -> None:
        """Close the journal and the connection, then release the lock."""
        if self.journal is not None:
            with contextlib.suppress(Exception):  # closing must not mask the real error
                self.journal.close()
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    # -- runs --------------------------------------------------------------------

    def record(self, kind: Kind, version: int | None = None, /, **data: Any) -> None:
        """Append one event of this run."""
        assert self.journal is not None
        self.journal.append(Draft(self.run_id, kind, version, data))

    def start_run(self, **details: Any) -> None:
        """Record `run_started` and `lock_acquired` (one JSONL write, one commit)."""
        assert self.journal is not None
        host = socket.gethostname()
        self.journal.append_many(
            [
                Draft(
                    self.run_id,
                    Kind.RUN_STARTED,
                    None,
                    {"command": self.command, "pid": os.getpid(), "host": host, **details},
                ),
                Draft(
                    self.run_id,
                    Kind.LOCK_ACQUIRED,
                    None,
                    {"pid": os.getpid(), "host": host, "command": self.command},
                ),
            ]
        )
        self.run_open = True
        failpoints.hit("after_run_started")

    def finish_run(self, outcome: str, error: str | None = None, **details: Any) -> None:
        """Record `run_finished` and `lock_released`, and make the JSONL durable."""
        assert self.journal is not None
        if self.journal.conn.in_transaction:
            self.journal.rollback()
        self.journal.append_many(
            [
                Draft(
                    self.run_id,
                    Kind.RUN_FINISHED,
                    None,
                    {"outcome": outcome, "error": error, **details},
                ),
                Draft(self.run_id, Kind.LOCK_RELEASED, None, {"reason": "finished"}),
            ]
        )
        self.journal.sync()
        self.run_open = False

    def database_locked(self, exc: sqlite3.OperationalError) -> LockHeld:
        """The error to raise when SQLite's own lock stayed busy (another connection writes)."""
        msg = f"database {self.paths.database} is locked by another connection ({exc})"
        return LockHeld(
            msg, hint="stop the application's writers or raise --lock-timeout, then retry"
        )
