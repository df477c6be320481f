"""`fleet up`, `fleet status` and `fleet history`: many databases, one command.

Each database goes through the one migration path, `commands.migrate.upgrade`, in a worker
(`engine.commands.fleet_worker`), with its own lock, backup, journals and recovery; nothing
here migrates anything itself. The fleet process plans which database starts when
(`schemalog.engine.core.fleet`: canary, failure budget), records the fleet run in the fleet
journal (`schemalog.engine.shell.fleet_journal`) and collects one `DatabaseResult` per
database. A worker builds its Settings from the fleet's (never from its own working
directory or environment), so a Dask worker on another host migrates exactly what was asked,
and refuses to run when its migration files differ from the fleet's.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Future, wait
from pathlib import Path

import attrs
import cattrs

from schemalog.engine.base.errors import (
    ConfigError,
    UsageError,
)
from schemalog.engine.base.settings import Settings
from schemalog.engine.commands.fleet_worker import (
    Job,
    error_text,
    migrate_one,
    migration_files_digest,
    status_one,
)
from schemalog.engine.core.fleet import (
    DatabaseResult,
    DatabaseStatus,
    Policy,
    Verdict,
    fleet_exit_code,
    next_verdict,
    summarize,
    version_histogram,
)
from schemalog.engine.core.fleet_history import FleetRun, fleet_runs
from schemalog.engine.files.registry import load_registry
from schemalog.engine.shell.fleet_journal import (
    DEFAULT_FLEET_JOURNAL,
    FleetJournal,
    fleet_journal_live,
    read_fleet_journal,
)
from schemalog.engine.shell.fleet_pool import Pool, open_pool
from schemalog.engine.shell.session import new_run_id
from schemalog.journal.events import Kind

__all__ = [
    "FleetReport",
    "FleetStatusReport",
    "fleet_history",
    "fleet_status",
    "fleet_up",
]

_converter = cattrs.Converter()


# --- the fleet process ---------------------------------------------------------------------


@attrs.frozen
class FleetReport:
    """What `fleet up` did (the `fleet up --json` document).

    `databases` in sorted order; `summary` counts each outcome; `outcome` is `completed`,
    `stopped` (canary or failure budget) or `interrupted` (Ctrl-C); `stopped` says why
    databases were skipped; `resumes` names the interrupted fleet run this one took over.
    """

    fleet_id: str
    databases: list[DatabaseResult]
    summary: dict[str, int]
    outcome: str
    stopped: str | None
    resumes: str | None
    journal: str

    @property
    def exit_code(self) -> int:
        """0 when no database failed or was refused, 1 otherwise."""
        return fleet_exit_code(self.databases)


@attrs.frozen
class FleetStatusReport:
    """The `fleet status --json` document: every database, and how many at each version."""

    databases: list[DatabaseStatus]
    versions: dict[str, int]
    head: int

    @property
    def needing_recovery(self) -> list[DatabaseStatus]:
        """The databases whose next command would run recovery."""
        return [d for d in self.databases if d.needs_recovery]

    @property
    def with_errors(self) -> list[DatabaseStatus]:
        """The databases that cannot be read or would be refused."""
        return [d for d in self.databases if d.error is not None]


def _fleet_settings(settings: Settings) -> Settings:
    """The settings every database of the fleet is migrated with."""
    if settings.backup_dir is not None:
        msg = (
            f"a fleet keeps each database's backups next to it (<database>.backups/), "
            f"but a backup directory is set ({settings.backup_dir})"
        )
        raise ConfigError(
            msg,
            hint="drop --backup-dir (or SCHEMALOG_BACKUP_DIR / backup_dir in the config file) for fleet commands",
        )
    return attrs.evolve(settings, database=None, migrations=Path(settings.migrations).absolute())


def _load_files(settings: Settings, target: int | None) -> tuple[int, str]:
    """The head version and the digest of the migration files; raises before anything runs."""
    registry = load_registry(settings.migrations)
    if target is not None and target > registry.head:
        msg = f"--to {target} is above the newest migration file (version {registry.head})"
        raise UsageError(msg, hint=f"use --to {registry.head} or add the migration files")
    return registry.head, migration_files_digest(settings.migrations)


def _sorted_names(databases: Sequence[Path | str]) -> list[str]:
    """The databases as absolute path strings, sorted, each once; UsageError if none."""
    names = sorted(dict.fromkeys(str(Path(d).absolute()) for d in databases))
    if not names:
        msg = "no databases were given"
        raise UsageError(msg, hint="pass database paths, quoted glob patterns or @FILE")
    return names


OnResult = Callable[[DatabaseResult], None]


def fleet_up(
    settings: Settings,
    databases: Sequence[Path | str],
    *,
    target: int | None = None,
    jobs: int | None = None,
    canary: int | None = None,
    max_failures: int | None = None,
    dask: str | None = None,
    dask_workers: Sequence[str] = (),
    dask_resources: str | None = None,
    journal: Path | None = None,
    on_start: Callable[[int, str], None] | None = None,
    on_result: OnResult | None = None,
) -> FleetReport:
    """Migrate every database in `databases` as `schemalog up` would, in parallel.

    `databases` are run in sorted order, at most `jobs` at once (default: the CPU count, or
    the Dask cluster's threads), each with `upgrade(...)`. `canary` K: the
    first K run first, and if one fails no other starts; `max_failures` F: no database starts
    after F failed. Every step is recorded in the fleet journal `journal` (default
    `./schemalog-fleet.journal.jsonl`). `on_start(total, where)` is called once the pool is
    up, `on_result` with every database's result as it arrives.

    Raises, before any database starts: ConfigError/UsageError/RegistryError/
    MigrationFileError (exit 2) for bad options or migration files, LockHeld (exit 3) when
    another fleet run holds the fleet journal, JournalError (exit 4) when the fleet journal
    is broken. A database's own errors never raise: they are its result.
    """
    try:
        policy = Policy(canary=canary, max_failures=max_failures)
    except ValueError as exc:
        raise UsageError(str(exc), hint="--canary and --max-failures take a number >= 1") from exc
    settings = _fleet_settings(settings)
    head, digest = _load_files(settings, target)
    names = _sorted_names(databases)
    journal_path = Path(journal) if journal is not None else Path.cwd() / DEFAULT_FLEET_JOURNAL
    fleet_id = new_run_id()
    with FleetJournal(journal_path, fleet_id=fleet_id, durability=settings.durability) as fj:
        previous = fj.previous
        resumes = previous.run_id if previous is not None and not fj.previous_finished() else None
        with open_pool(
            jobs=jobs,
            dask=dask,
            dask_workers=dask_workers,
            dask_resources=dask_resources,
            items=len(names),
        ) as pool:
            if fj.saved_torn is not None:
                fj.record(Kind.JOURNAL_REPAIRED, what="torn_tail", saved_to=str(fj.saved_torn))
            fj.record(
                Kind.FLEET_STARTED,
                target,
                databases=names,
                jobs=pool.slots,
                where=pool.where,
                canary=canary,
                max_failures=max_failures,
                target=target,
                head=head,
                migrations=str(settings.migrations),
                dask=dask,
                host=socket.gethostname(),
                pid=os.getpid(),
                resumes=resumes,
            )
            if on_start is not None:
                on_start(len(names), pool.where)
            jobs_of = {n: Job(n, settings, target, digest) for n in names}
            results, stopped, outcome = _drive(pool, jobs_of, names, policy, fj, on_result)
        ordered = [results[n] for n in names]
        summary = summarize(ordered)
        fj.record(Kind.FLEET_FINISHED, None, outcome=outcome, reason=stopped, summary=summary)
        fj.sync()
    return FleetReport(
        fleet_id=fleet_id,
        databases=ordered,
        summary=summary,
        outcome=outcome,
        stopped=stopped,
        resumes=resumes,
        journal=str(journal_path),
    )


def _died(db: str, exc: BaseException) -> DatabaseResult:
    """The result of a database whose job raised instead of returning (the worker died)."""
    if isinstance(exc, BrokenExecutor):
        error = (
            "the worker process died while migrating it, twice; the database recovers by "
            "itself on its next run (re-run `fleet up` once the cause is fixed)"
        )
    else:
        error = f"the job failed outside schemalog: {error_text(exc)}"
    return DatabaseResult(database=db, outcome="failed", error=error, exit_code=1)


class _Drive:
    """One fleet run's scheduling loop (see `_drive`)."""

    def __init__(
        self,
        pool: Pool,
        jobs: dict[str, Job],
        names: list[str],
        policy: Policy,
        fj: FleetJournal,
        on_result: OnResult | None,
    ) -> None:
        self.pool, self.jobs, self.names, self.policy = pool, jobs, names, policy
        self.fj, self.on_result = fj, on_result
        self.finished: dict[str, DatabaseResult] = {}
        self.running: dict[Future, str] = {}
        self.retry: list[str] = []  # started, then lost with a broken pool: run once more
        self.attempts: dict[str, int] = {}
        self.isolating = False
        self.index, self.stopped, self.outcome = 0, None, "completed"

    def finish(self, result: DatabaseResult) -> None:
        self.finished[result.database] = result
        self.fj.record(Kind.DATABASE_FINISHED, result.to_version, **_converter.unstructure(result))
        if self.on_result is not None:
            self.on_result(result)

    def next_name(self) -> str | None:
        """The database to start now, or None (wait, or nothing is left to start)."""
        if self.stopped is not None:
            return None
        if self.retry or self.isolating:
            # A database lost with a broken pool runs again alone, so that a second death
            # is its own: wait until nothing else runs, then run the retries one by one.
            if self.running:
                return None
            if self.retry:
                self.isolating = True
                return self.retry.pop(0)
            self.isolating = False
        if self.index >= len(self.names):
            return None
        verdict, reason = next_verdict(self.index, self.policy, self.names, self.finished)
        if verdict is Verdict.STOP:
            self.stopped, self.outcome = reason, "stopped"
            return None
        if verdict is Verdict.WAIT:
            return None
        self.index += 1
        return self.names[self.index - 1]

    def start(self, name: str) -> None:
        self.attempts[name] = self.attempts.get(name, 0) + 1
        self.fj.record(Kind.DATABASE_STARTED, None, database=name, attempt=self.attempts[name])
        try:
            future = self.pool.submit(migrate_one, self.jobs[name])
        except BrokenExecutor:
            self.pool.restart()
            future = self.pool.submit(migrate_one, self.jobs[name])
        self.running[future] = name

    def collect(self, done: set[Future]) -> None:
        """Record the finished jobs; a job lost with a broken pool runs once more."""
        broken = False
        for future in sorted(done, key=lambda f: self.running[f]):
            name = self.running.pop(future)
            exc = future.exception()
            if isinstance(exc, BrokenExecutor):
                # A worker died: the pool stopped every worker, so any of the databases
                # running then may be the cause. Each gets one more try, alone, in a new
                # pool (its recovery settles the interrupted run); one that kills it again
                # fails.
                broken = True
                if self.attempts[name] < 2:
                    self.retry.append(name)
                    continue
            self.finish(future.result() if exc is None else _died(name, exc))
        if broken:
            self.pool.restart()

    def run(self) -> tuple[dict[str, DatabaseResult], str | None, str]:
        while True:
            while len(self.running) < self.pool.slots:
                name = self.next_name()
                if name is None:
                    break
                self.start(name)
            if not self.running:
                break
            try:
                done, _ = wait(self.running, return_when=FIRST_COMPLETED)
            except KeyboardInterrupt:
                if self.outcome == "interrupted":
                    raise
                self.stopped = "interrupted (Ctrl-C): no new database was started"
                self.outcome = "interrupted"
                continue
            self.collect(done)
        for name in self.retry:  # lost with a broken pool after the run was stopped
            self.finish(_died(name, BrokenExecutor()))
        for name in self.names[self.index :]:
            self.finish(
                DatabaseResult(
                    database=name,
                    outcome="skipped",
                    error=f"not started: {self.stopped}",
                    exit_code=0,
                )
            )
        return self.finished, self.stopped, self.outcome


def _drive(
    pool: Pool,
    jobs: dict[str, Job],
    names: list[str],
    policy: Policy,
    fj: FleetJournal,
    on_result: OnResult | None,
) -> tuple[dict[str, DatabaseResult], str | None, str]:
    """Start databases in order while the policy allows, at most `pool.slots` at once.

    Returns every database's result, why the rest were skipped, and the fleet run's
    outcome (`completed`, `stopped`, `interrupted`). A first Ctrl-C starts no new database
    and lets the running ones finish; a second one interrupts at once.
    """
    return _Drive(pool, jobs, names, policy, fj, on_result).run()


def fleet_status(
    settings: Settings,
    databases: Sequence[Path | str],
    *,
    jobs: int | None = None,
    dask: str | None = None,
    dask_workers: Sequence[str] = (),
    dask_resources: str | None = None,
) -> FleetStatusReport:
    """Every database's version, pending migrations, recovery need and error. Read-only.

    Raises ConfigError/RegistryError/MigrationFileError (exit 2) for bad settings or
    migration files; a database's own errors are its row's `error`.
    """
    settings = _fleet_settings(settings)
    head, digest = _load_files(settings, None)
    names = _sorted_names(databases)
    job_list = [Job(n, settings, None, digest) for n in names]
    with open_pool(
        jobs=jobs,
        dask=dask,
        dask_workers=dask_workers,
        dask_resources=dask_resources,
        items=len(names),
    ) as pool:
        rows = pool.map(status_one, job_list)
    rows = [
        attrs.evolve(r, head=head) if r.error is not None and r.version is None else r for r in rows
    ]
    return FleetStatusReport(databases=rows, versions=version_histogram(rows), head=head)


def fleet_history(journal: Path | None = None) -> list[FleetRun]:
    """Every fleet run the fleet journal records, oldest first, with each database. Read-only."""
    path = Path(journal) if journal is not None else Path.cwd() / DEFAULT_FLEET_JOURNAL
    return fleet_runs(read_fleet_journal(path), live=fleet_journal_live(path))
