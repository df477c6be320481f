"""One database of a fleet, in a worker process (here, or on a Dask worker): its job value,
and the two jobs `fleet up` and `fleet status` run.

Each database goes through the one migration path, `commands.migrate.upgrade`, with its own
lock, backup, journals and recovery. A worker builds its Settings from the fleet's (never from
its own working directory or environment), so a Dask worker on another host migrates exactly
what was asked, and refuses to run when its migration files differ from the fleet's.
"""

from __future__ import annotations

import hashlib
import socket
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import attrs

from schemalog.engine.base.context import Context
from schemalog.engine.base.errors import ConfigError, MigrationFailed, SchemalogError, UsageError
from schemalog.engine.base.logs import configure_logging, silence_logging
from schemalog.engine.base.settings import Settings
from schemalog.engine.commands.inspect import status
from schemalog.engine.commands.migrate import upgrade
from schemalog.engine.core.fleet import DatabaseResult, DatabaseStatus, exit_code_of, outcome_of
from schemalog.engine.files.migration import compute_checksum
from schemalog.engine.shell.fleet_pool import running, worker_name

__all__ = ["Job", "error_text", "migrate_one", "migration_files_digest", "status_one"]

_logs_configured: str | None = None


@attrs.frozen
class Job:
    """One database's job: the fleet's settings, the target and the files' digest."""

    database: str
    settings: Settings
    target: int | None
    digest: str


def migration_files_digest(directory: Path) -> str:
    """SHA-256 over the names and checksums of the migration files in `directory`. Reads only.

    The files `load_registry` reads (`.py`/`.sql`, not starting with `_` or `.`). Raises
    ConfigError when `directory` is missing or unreadable.
    """
    try:
        entries = sorted(
            p
            for p in Path(directory).iterdir()
            if p.suffix in (".py", ".sql") and not p.name.startswith(("_", ".")) and p.is_file()
        )
        digest = hashlib.sha256()
        for path in entries:
            digest.update(f"{path.name}\0{compute_checksum(path.read_bytes())}\n".encode())
    except OSError as exc:
        msg = f"cannot read the migration files in {directory} on {socket.gethostname()}: {exc.strerror}"
        raise ConfigError(
            msg, hint="every worker needs the migration files at the same path"
        ) from exc
    return digest.hexdigest()


def _configure_worker_logs(settings: Settings) -> None:
    """Logs of a worker: none unless the fleet asked for a log format (once per process)."""
    global _logs_configured
    if _logs_configured == settings.log_format:
        return
    if settings.log_format == "auto":
        silence_logging()
    else:
        configure_logging(fmt=settings.log_format)
    _logs_configured = settings.log_format


def _check_input(job: Job) -> Path:
    """The database's path; raises UsageError when it is missing or not a regular file,
    ConfigError when this worker's migration files differ from the fleet's."""
    db = Path(job.database)
    if not db.exists():
        msg = f"database {db} does not exist on {socket.gethostname()}"
        raise UsageError(
            msg,
            state="nothing was created",
            hint="check the path; `fleet up` never creates a database (use `schemalog up`)",
        )
    if not db.is_file():
        msg = f"{db} is not a file"
        raise UsageError(msg, hint="pass the path of a SQLite database file")
    if migration_files_digest(job.settings.migrations) != job.digest:
        msg = (
            f"the migration files in {job.settings.migrations} on {socket.gethostname()} "
            "differ from those the fleet run was started with"
        )
        raise ConfigError(msg, hint="deploy the same migration files to every worker, then re-run")
    return db


def _peek_version(db: Path) -> int | None:
    """`PRAGMA user_version` of `db` through a read-only connection; None if unreadable."""
    try:
        with closing(sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            return conn.execute("PRAGMA user_version").fetchone()[0]
    except (sqlite3.Error, OSError):
        return None


def error_text(exc: BaseException) -> str:
    if isinstance(exc, SchemalogError):
        return exc.message
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"unexpected {type(exc).__name__}: {text}".rstrip(": ")[:500]


def migrate_one(job: Job) -> DatabaseResult:
    """Migrate one database as `schemalog up` would; never raises for the database's errors.

    The one migration path: `upgrade(Context(settings), job.target)` with the fleet's
    settings, this database, and its own backup directory (`<database>.backups/`).
    """
    started = time.monotonic()
    where = worker_name()
    _configure_worker_logs(job.settings)
    before: int | None = None
    try:
        db = _check_input(job)
        before = _peek_version(db)
        settings = attrs.evolve(job.settings, database=db, backup_dir=None)
        with running:  # a worker whose fleet process died exits only after this
            report = upgrade(Context(settings), job.target)
    except Exception as exc:
        after = _peek_version(Path(job.database)) if before is not None else None
        if isinstance(exc, MigrationFailed) and after is None:
            after = before
        return DatabaseResult(
            database=job.database,
            outcome=outcome_of(exc),
            from_version=before,
            to_version=after,
            error=error_text(exc),
            exit_code=exit_code_of(exc),
            worker=where,
            seconds=round(time.monotonic() - started, 4),
        )
    plan = report.plan
    return DatabaseResult(
        database=job.database,
        outcome="up_to_date" if plan.empty else "applied",
        from_version=plan.from_version,
        to_version=plan.to_version,
        run_id=None if plan.empty else report.run_id,
        worker=where,
        seconds=round(time.monotonic() - started, 4),
    )


def status_one(job: Job) -> DatabaseStatus:
    """One database's `fleet status` row. Read-only: never writes, never takes the lock."""
    _configure_worker_logs(job.settings)
    db = Path(job.database)

    def broken(error: str) -> DatabaseStatus:
        return DatabaseStatus(job.database, None, 0, [], needs_recovery=False, error=error)

    try:
        _check_input(job)
        st = status(Context(attrs.evolve(job.settings, database=db, backup_dir=None)))
    except Exception as exc:
        return broken(error_text(exc))
    error = None
    if st.version > st.head:
        error = (
            f"database {db} is at version {st.version}, newer than the migration files "
            f"(head {st.head})"
        )
    elif st.drift:
        error = f"the schema of {db} changed outside schemalog since the last recorded step"
    return DatabaseStatus(
        database=job.database,
        version=st.version,
        head=st.head,
        pending=list(st.pending),
        needs_recovery=st.needs_recovery,
        error=error,
    )
