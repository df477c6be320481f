"""`schemalog fleet up|status|history`: the fleet commands (engine.commands.fleet).

Each command calls the library function of the same name with the same options, and only
turns its result into output and an exit code. The library and rich are imported when a
command runs, so `schemalog --help` does not pay for them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from schemalog.engine.base.terminal import is_tty
from schemalog.engine.cli.app import App, SchemalogGroup, emit_json, json_option, pass_app

if TYPE_CHECKING:
    from schemalog.engine.commands.fleet import FleetReport, FleetStatusReport
    from schemalog.engine.core.fleet import DatabaseResult
    from schemalog.engine.core.fleet_history import FleetRun

__all__ = ["fleet"]

_databases_argument = click.argument("databases", nargs=-1, required=True, metavar="DATABASE...")
_jobs_option = click.option(
    "--jobs",
    type=click.IntRange(min=1),
    metavar="N",
    help="Databases at once (default: the CPU count; with --dask, the cluster's threads).",
)
_dask_options = [
    click.option(
        "--dask",
        "dask",
        metavar="ADDRESS",
        help="Run the per-database jobs on this Dask scheduler (tcp://HOST:8786; schemalog[dask]).",
    ),
    click.option(
        "--dask-workers",
        metavar="NAMES",
        help="Only these Dask workers (names or addresses, comma-separated): pins jobs to hosts.",
    ),
    click.option(
        "--dask-resources",
        metavar="SPEC",
        help="Only Dask workers offering these resources (NAME=AMOUNT[,...]), e.g. tenants-a=1.",
    ),
]
_journal_option = click.option(
    "--fleet-journal",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="PATH",
    help="The fleet journal (default ./schemalog-fleet.journal.jsonl).",
)


def _with(options: list[Any]) -> Any:
    def decorate(fn: Any) -> Any:
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


def _names(value: str | None) -> tuple[str, ...]:
    return tuple(n.strip() for n in (value or "").split(",") if n.strip())


def _expand(databases: tuple[str, ...]) -> list[Path]:
    from schemalog.engine.shell.fleet_targets import expand_databases

    return expand_databases(databases, Path.cwd())


@click.group(cls=SchemalogGroup)
def fleet() -> None:
    """Migrate or inspect many databases (one per tenant, user or device) at once.

    Each database is migrated exactly as by `up`: its own lock, backup, journals and
    recovery. DATABASE is a path, a glob pattern (quote it: schemalog expands it) or
    @FILE (one path per line). See `schemalog help fleets`.

    \b
    Example:
        schemalog --migrations migrations fleet up --canary 5 'tenants/*.db'
        schemalog --migrations migrations fleet status 'tenants/*.db'
    """


class _Progress:
    """A progress bar on stderr (a terminal only): done, failed, remaining, ETA."""

    def __init__(self, app: App) -> None:
        self.enabled = not app.quiet and is_tty(sys.stderr)
        self._bar: Any = None
        self._task: Any = None
        self._failed = 0
        self._done = 0
        self._total = 0

    def start(self, total: int, where: str) -> None:
        if not self.enabled:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._total = total
        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("done · [red]{task.fields[failed]} failed[/red] ·"),
            TextColumn("{task.fields[remaining]} remaining · ETA"),
            TimeRemainingColumn(),
            console=Console(file=sys.stderr),
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task(
            f"migrating on {where}", total=total, failed=0, remaining=total
        )

    def result(self, result: DatabaseResult) -> None:
        if self._bar is None:
            return
        self._done += 1
        self._failed += result.outcome in ("failed", "refused")
        self._bar.update(
            self._task,
            completed=self._done,
            failed=self._failed,
            remaining=self._total - self._done,
        )

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


@fleet.command("up")
@_databases_argument
@_jobs_option
@click.option(
    "--canary",
    type=click.IntRange(min=1),
    metavar="K",
    help="Run the first K databases (sorted) first; if one fails, start no other.",
)
@click.option(
    "--max-failures",
    type=click.IntRange(min=1),
    metavar="F",
    help="Start no database after F have failed (default: no limit).",
)
@click.option("--to", "target", type=click.IntRange(min=0), metavar="V", help="Stop at version V.")
@_with(_dask_options)
@_journal_option
@json_option
@pass_app
def fleet_up(
    app: App,
    databases: tuple[str, ...],
    jobs: int | None,
    canary: int | None,
    max_failures: int | None,
    target: int | None,
    dask: str | None,
    dask_workers: str | None,
    dask_resources: str | None,
    fleet_journal: Path | None,
    as_json: bool,
) -> None:
    """Migrate every DATABASE as `up` would, several at once, recorded in the fleet journal.

    Databases start in sorted order. A failed or refused database is reported with its
    error and the others go on; --canary and --max-failures bound how far a failing
    migration spreads. Re-running after an interruption (even kill -9) resumes: databases
    at the head are up to date, interrupted ones recover by themselves. Exit 0 when no
    database failed or was refused, 1 otherwise, 2 for a usage or migration-file error.

    \b
    Example:
        schemalog --migrations migrations fleet up --jobs 4 --canary 3 'tenants/*.db'
        schemalog --migrations migrations fleet up --max-failures 5 @tenants.txt --json
    """
    from schemalog.engine.base.errors import FleetIncomplete
    from schemalog.engine.commands.fleet import fleet_up as run

    paths = _expand(databases)
    progress = _Progress(app)
    try:
        report = run(
            app.settings,
            paths,
            target=target,
            jobs=jobs,
            canary=canary,
            max_failures=max_failures,
            dask=dask,
            dask_workers=_names(dask_workers),
            dask_resources=dask_resources,
            journal=fleet_journal,
            on_start=progress.start,
            on_result=progress.result,
        )
    finally:
        progress.stop()
    if as_json:
        emit_json(
            {
                "fleet_id": report.fleet_id,
                "databases": report.databases,
                "summary": report.summary,
                "outcome": report.outcome,
                "stopped": report.stopped,
                "resumes": report.resumes,
                "journal": report.journal,
            }
        )
    else:
        _show_up(app, report)
    if report.outcome == "interrupted":
        click.echo(f"interrupted: {report.summary['skipped']} database(s) not started", err=True)
        click.get_current_context().exit(130)
    if report.exit_code:
        bad = report.summary["failed"] + report.summary["refused"]
        msg = (
            f"{bad} of {len(report.databases)} database(s) failed or were refused "
            f"(fleet run {report.fleet_id})"
        )
        raise FleetIncomplete(
            msg, hint="fix what each error says, then re-run the same `fleet up` (it resumes)"
        )


def _show_up(app: App, report: FleetReport) -> None:
    out = app.out
    if report.resumes:
        out.line(f"resumed the interrupted fleet run {report.resumes}")
    trouble = [r for r in report.databases if r.outcome in ("failed", "refused")]
    if trouble:
        out.table(
            ["database", "outcome", "version", "error"],
            [[r.database, r.outcome, _versions(r), r.error or ""] for r in trouble],
            title="databases that need attention",
            style_column=1,
        )
    out.line(f"fleet run {report.fleet_id}: {len(report.databases)} database(s)", "bold")
    out.table(
        ["outcome", "databases"],
        [[outcome, count] for outcome, count in report.summary.items()],
    )
    if report.stopped:
        skipped = report.summary["skipped"]
        out.line(f"stopped: {report.stopped}; {skipped} database(s) not started", "bold yellow")
    out.line(f"recorded in {report.journal}; see `schemalog fleet history`")


def _versions(result: Any) -> str:
    """`2 -> 5`, or `5` when it did not change (a DatabaseResult or a FleetDatabase)."""

    def v(value: int | None) -> str:
        return "?" if value is None else str(value)

    if result.from_version == result.to_version:
        return v(result.to_version)
    return f"{v(result.from_version)} -> {v(result.to_version)}"


@fleet.command("status")
@_databases_argument
@_jobs_option
@_with(_dask_options)
@click.option(
    "--exit-code",
    is_flag=True,
    help="Exit 1 when a database has pending migrations, needs recovery or has an error.",
)
@json_option
@pass_app
def fleet_status(
    app: App,
    databases: tuple[str, ...],
    jobs: int | None,
    dask: str | None,
    dask_workers: str | None,
    dask_resources: str | None,
    exit_code: bool,
    as_json: bool,
) -> None:
    """Show how many databases are at each version, which need recovery, which have errors.

    Read-only: never writes and never takes a lock.

    \b
    Example:
        schemalog --migrations migrations fleet status 'tenants/*.db' --json
    """
    from schemalog.engine.commands.fleet import fleet_status as run

    report = run(
        app.settings,
        _expand(databases),
        jobs=jobs,
        dask=dask,
        dask_workers=_names(dask_workers),
        dask_resources=dask_resources,
    )
    if as_json:
        emit_json({"databases": report.databases, "versions": report.versions})
    else:
        _show_status(app, report)
    if exit_code and any(
        d.pending or d.needs_recovery or d.error is not None for d in report.databases
    ):
        click.get_current_context().exit(1)


def _show_status(app: App, report: FleetStatusReport) -> None:
    out = app.out
    total = len(report.databases)
    widest = max(report.versions.values(), default=1)
    out.table(
        ["version", "databases", ""],
        [
            [
                f"{v}{' (head)' if int(v) == report.head else ''}",
                n,
                "#" * max(1, round(40 * n / widest)),
            ]
            for v, n in report.versions.items()
        ],
        title=f"{total} database(s); head is version {report.head}",
    )
    if report.needing_recovery:
        out.table(
            ["database", "version"],
            [[d.database, d.version] for d in report.needing_recovery],
            title="need recovery (their next `up` or `fleet up` runs it)",
        )
    if report.with_errors:
        out.table(
            ["database", "error"],
            [[d.database, d.error] for d in report.with_errors],
            title="errors",
        )
    if not report.needing_recovery and not report.with_errors:
        out.line("no database needs recovery or has an error")


@fleet.command("history")
@_journal_option
@click.option("--run", "fleet_id", metavar="ID", help="Only the fleet run ID.")
@json_option
@pass_app
def fleet_history(
    app: App, fleet_journal: Path | None, fleet_id: str | None, as_json: bool
) -> None:
    """List every fleet run, oldest first, with each database's outcome.

    Read-only. A run killed before it finished is shown as interrupted, with the
    databases it had started as interrupted; the next `fleet up` resumes it.

    \b
    Example:
        schemalog fleet history --run 1f2e3d4c5b6a
    """
    from schemalog.engine.commands.fleet import fleet_history as run

    runs = run(fleet_journal)
    if fleet_id is not None:
        runs = [r for r in runs if r.fleet_id == fleet_id]
        if not runs:
            from schemalog.engine.base.errors import UsageError

            msg = f"no fleet run with id {fleet_id!r}"
            raise UsageError(msg, hint="see `schemalog fleet history` for the ids")
    if as_json:
        emit_json(runs)
    else:
        _show_history(app, runs)


def _show_history(app: App, runs: list[FleetRun]) -> None:
    from schemalog.engine.cli.output import ts

    out = app.out
    if not runs:
        out.line("no fleet run is recorded")
        return
    out.table(
        ["fleet run", "started", "finished", "outcome", "databases", "counts"],
        [
            [
                r.fleet_id,
                ts(r.started_at),
                ts(r.finished_at),
                r.outcome,
                len(r.databases),
                ", ".join(f"{k} {v}" for k, v in r.summary.items() if v),
            ]
            for r in runs
        ],
        title="fleet runs, oldest first",
        style_column=3,
    )
    for r in runs:
        title = f"fleet run {r.fleet_id} ({r.outcome}"
        title += f": {r.reason})" if r.reason else ")"
        if r.resumes:
            title += f", resuming {r.resumes}"
        out.table(
            ["database", "outcome", "version", "error"],
            [
                [
                    d.database,
                    d.outcome,
                    "" if d.outcome in ("not_started", "skipped", "running") else _versions(d),
                    d.error or "",
                ]
                for d in r.databases
            ],
            title=title,
            style_column=1,
        )
