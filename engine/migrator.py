"""The library API: `Migrator`, one method per command, for use at application start-up.

    from schemalog import Migrator
    Migrator(database="app.db", migrations="migrations").upgrade()

A Migrator uses only its arguments: no config file, no `SCHEMALOG_*` variable, nothing from
the working directory (`Migrator.from_config(**flags)` reads them as the CLI does). Each
method calls the command function of the same name (`upgrade` is the CLI's `up`,
`downgrade` its `down`) with the same options. Errors are `schemalog.errors` classes;
nothing is printed; logs go to the standard `logging` logger `schemalog`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from schemalog.engine.base.config import load_settings
from schemalog.engine.base.context import Connect, Context, Observer
from schemalog.engine.base.paths import DatabasePaths
from schemalog.engine.base.settings import Settings
from schemalog.engine.commands import backups, inspect, locks, migrate
from schemalog.engine.commands import check as checking
from schemalog.engine.commands import lint as linting
from schemalog.engine.commands import recover as recovering
from schemalog.engine.commands import repair as repairing
from schemalog.engine.commands import schema as schemas
from schemalog.engine.commands import verify as verifying
from schemalog.engine.commands.check import CheckReport, MigrationCheck
from schemalog.engine.commands.inspect import Status
from schemalog.engine.commands.lint import LintReport
from schemalog.engine.commands.migrate import RunReport
from schemalog.engine.commands.repair import RepairResult
from schemalog.engine.commands.schema import SchemaReport
from schemalog.engine.core.diagnosis import RecoveryPlan
from schemalog.engine.core.history import HistoryEntry
from schemalog.engine.shell.restore import RestoreResult
from schemalog.journal.events import Event
from schemalog.journal.replay import BackupRecord, State

__all__ = ["HistoryEntry", "Migrator", "RestoreResult", "RunReport", "Status"]


class Migrator:
    """Migrations, backups, recovery and inspection of one database."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        connect: Connect | None = None,
        observer: Observer | None = None,
        **values: Any,
    ) -> None:
        """Use `settings`, or build them from `values` alone (e.g. `database=`, `migrations=`,
        `backup_dir=`, `lock_timeout=`; the same names as the settings).

        `connect` is an optional factory returning a new sqlite3 connection to the database
        (e.g. from the application's pool); schemalog switches it to autocommit mode.
        Relative paths are anchored at the working directory when the Migrator is made.
        `observer` is told about lock waits, copy progress and steps. Raises ValueError for
        a bad value, TypeError for an unknown name.
        """
        if settings is None:
            settings = Settings(**_coerce_paths(values))
        elif values:
            settings = attrs.evolve(settings, **_coerce_paths(values))
        self.settings = settings
        self.context = Context(settings, connect=connect, observer=observer or Observer())

    @classmethod
    def from_config(
        cls,
        *,
        connect: Connect | None = None,
        observer: Observer | None = None,
        config: Path | str | None = None,
        cwd: Path | str | None = None,
        **flags: Any,
    ) -> Migrator:
        """A Migrator configured as the CLI would be: `flags` > `SCHEMALOG_*` > config file
        (`config`, or the one found in `cwd`, default the working directory) > defaults.

        Raises ConfigError naming a bad value, key or file.
        """
        settings = load_settings(
            flags=flags,
            env=os.environ,
            cwd=Path(cwd) if cwd is not None else Path.cwd(),
            config_file=Path(config) if config is not None else None,
        )
        return cls(settings, connect=connect, observer=observer)

    @property
    def paths(self) -> DatabasePaths:
        """The database and the files beside it (raises ConfigError when none is set)."""
        return self.settings.paths

    # -- migrating ------------------------------------------------------------------

    def upgrade(
        self, target: int | None = None, *, dry_run: bool = False, allow_drift: bool = False
    ) -> RunReport:
        """`schemalog up`: apply pending migrations up to `target` (see `commands.migrate`)."""
        return migrate.upgrade(self.context, target, dry_run=dry_run, allow_drift=allow_drift)

    def downgrade(
        self, target: int, *, dry_run: bool = False, allow_drift: bool = False
    ) -> RunReport:
        """`schemalog down`: revert applied migrations down to `target`."""
        return migrate.downgrade(self.context, target, dry_run=dry_run, allow_drift=allow_drift)

    def baseline(self, version: int) -> None:
        """`schemalog baseline`: adopt an existing database as being at `version`."""
        migrate.baseline(self.context, version)

    def recover(self, *, dry_run: bool = False) -> RecoveryPlan:
        """`schemalog recover`: reconcile journals and database (with `dry_run`: only say how)."""
        return recovering.recover(self.context, dry_run=dry_run)

    def check(
        self,
        *,
        from_scratch: bool = False,
        workdir: Path | None = None,
        on_result: Callable[[MigrationCheck], None] | None = None,
        on_pass: Callable[[str], None] | None = None,
    ) -> list[CheckReport]:
        """`schemalog check`: test migrations on scratch copies (the database is only read)."""
        return checking.check(
            self.settings,
            from_scratch=from_scratch,
            workdir=workdir,
            on_result=on_result,
            on_pass=on_pass,
        )

    # -- reading (never writes) -------------------------------------------------------

    def status(self) -> Status:
        """`schemalog status`: the state at a glance. Read-only."""
        return inspect.status(self.context)

    def history(self) -> list[HistoryEntry]:
        """`schemalog history`: every attempt, oldest first. Read-only."""
        return inspect.history(self.context)

    def replay(self, until: int | None = None) -> State:
        """`schemalog replay`: the state the journal gives at seq `until`. Read-only."""
        return inspect.replay(self.context, until)

    def events(self) -> list[Event]:
        """`schemalog events`: every event. Read-only."""
        return inspect.events(self.context)

    def verify(self) -> list[dict[str, Any]]:
        """`schemalog verify`: check journals, integrity, schema, files, verify queries."""
        return verifying.verify(self.context)

    # -- the schema ------------------------------------------------------------------

    def schema(self, *, output: Path | None = None, diff: Path | None = None) -> SchemaReport:
        """`schemalog schema`: the canonical schema; written to `output`, or compared with `diff`."""
        return schemas.schema(self.context, output=output, diff=diff)

    def lint(
        self,
        *,
        every: bool = False,
        long_rows: int = linting.LONG_ROWS,
        workdir: Path | None = None,
    ) -> LintReport:
        """`schemalog lint`: find the traps in pending migrations on a scratch copy."""
        return linting.lint(self.context, every=every, long_rows=long_rows, workdir=workdir)

    def repair(self, version: int, reason: str) -> RepairResult:
        """`schemalog repair`: accept the edited file of an applied migration (journaled)."""
        return repairing.repair(self.context, version, reason)

    # -- backups and the lock -------------------------------------------------------------

    def backup_create(self) -> BackupRecord:
        """`schemalog backup create`: a verified backup now, then retention."""
        return backups.backup_create(self.context)

    def backup_list(self) -> list[BackupRecord]:
        """`schemalog backup list`: the backups the journal knows. Read-only."""
        return backups.backup_list(self.context)

    def backup_restore(self, backup_id: str) -> RestoreResult:
        """`schemalog backup restore ID`: restore a backup, preserving the database first."""
        return backups.backup_restore(self.context, backup_id)

    def backup_prune(self) -> list[BackupRecord]:
        """`schemalog backup prune`: apply the retention budget now."""
        return backups.backup_prune(self.context)

    def lock_status(self) -> dict[str, Any]:
        """`schemalog lock status`: whether the migration lock is held, by whom. Read-only."""
        return locks.lock_status(self.context)

    def lock_break(self) -> dict[str, Any] | None:
        """`schemalog lock break`: close a dead holder's lock record."""
        return locks.lock_break(self.context)


def _coerce_paths(values: dict[str, Any]) -> dict[str, Any]:
    """Path settings given as strings or relative paths become absolute Paths, anchored at
    the working directory now (so a later `chdir` changes nothing)."""
    out = dict(values)
    for name in ("database", "migrations", "backup_dir", "journal_key_file"):
        if isinstance(out.get(name), str | Path):
            out[name] = Path(out[name]).absolute()
    return out
