"""The `schemalog` command line: one command per `Migrator` method, same names, same options.

The CLI is the only place that turns errors into output and exit codes: a
`SchemalogError` prints `error: <message>` on stderr and exits with its `exit_code`
(0 success, 1 failed and rolled back / check found a problem, 2 usage or file error,
3 lock held, 4 a human must look). `--json` prints exactly one JSON document on stdout.
Settings are loaded only when a command needs them, and the human renderer
(`schemalog.engine.cli.render`, rich tables and progress bars) only for human output, so
`status --json` starts fast.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from schemalog.engine.base.errors import ConfigError, SchemalogError

if TYPE_CHECKING:
    from schemalog.engine.base.settings import Settings
    from schemalog.engine.cli.render import Out
    from schemalog.engine.migrator import Migrator
    from schemalog.engine.shell.lock import Holder

__all__ = ["cli", "main"]

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


# --- plumbing -----------------------------------------------------------------------------


class SchemalogGroup(click.Group):
    """A click group that suggests the closest command and turns errors into exit codes."""

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            name = args[0] if args else ""
            if "No such command" in exc.message and "Did you mean" not in exc.format_message():
                import difflib

                close = difflib.get_close_matches(name, self.list_commands(ctx), n=1)
                if close:
                    exc.message += f" Did you mean {close[0]!r}?"
            raise

    def invoke(self, ctx: click.Context) -> Any:
        if ctx.parent is not None:  # nested groups: the root handles errors
            return super().invoke(ctx)
        try:
            return super().invoke(ctx)
        except SchemalogError as exc:
            _report(ctx, exc, exc.message)
            ctx.exit(exc.exit_code)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:
            raise  # the reader went away (`| head`): click exits quietly
        except Exception as exc:
            text = str(exc).splitlines()[0] if str(exc) else ""
            _report(ctx, exc, f"unexpected {type(exc).__name__}: {text}".rstrip(": "))
            ctx.exit(1)


def _report(ctx: click.Context, exc: BaseException, message: str) -> None:
    app = ctx.obj if isinstance(ctx.obj, App) else None
    if app is not None and app.verbose:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    click.echo(f"error: {message}", err=True)


class App:
    """What the global options gave; builds Settings and the Migrator on first use."""

    def __init__(
        self,
        *,
        flags: dict[str, Any],
        config: Path | None,
        verbose: bool,
        quiet: bool,
    ) -> None:
        self.flags = flags
        self.config = config
        self.verbose = verbose
        self.quiet = quiet
        self._settings: Settings | None = None
        self._out: Out | None = None
        self._waited = False
        self._progress: Any = None

    @property
    def settings(self) -> Settings:
        """The settings (flag > env > file > default); logging is configured from them."""
        if self._settings is None:
            from schemalog.engine.base.logs import configure_logging, silence_logging
            from schemalog.engine.base.settings import load_settings

            settings = load_settings(
                flags=self.flags, env=os.environ, cwd=Path.cwd(), config_file=self.config
            )
            if settings.log_format == "auto" and not self.verbose:
                # The CLI's own output (stdout, and `error:` on stderr) reports what happened;
                # log lines would repeat it. They show with -v or an explicit --log-format.
                silence_logging()
            else:
                configure_logging(fmt=settings.log_format, verbose=self.verbose, quiet=self.quiet)
            self._settings = settings
        return self._settings

    def migrator(self) -> Migrator:
        """A Migrator for the configured database (ConfigError when none is set)."""
        from schemalog.engine.migrator import Migrator

        settings = self.settings
        settings.paths  # noqa: B018 - raises ConfigError naming the fix when no database is set
        return Migrator(settings, on_lock_wait=self.on_lock_wait, progress=self.progress)

    @property
    def out(self) -> Out:
        """Human output (rich on a terminal)."""
        if self._out is None:
            from schemalog.engine.cli.render import Out

            self._out = Out()
        return self._out

    def on_lock_wait(self, holder: Holder | None, waited: float) -> None:
        """Say once, on stderr, whose lock this run waits for."""
        if self._waited:
            return
        self._waited = True
        if holder is not None:
            who = (
                f"pid {holder.pid} on {holder.host} (run {holder.run_id}, "
                f"since {holder.acquired_at})"
            )
        else:
            who = "another process"
        click.echo(f"waiting for the lock held by {who}…", err=True)

    def progress(self, done: int, total: int) -> None:
        """A progress bar for backups and restores, on a terminal only."""
        if self.quiet or not _is_tty(sys.stderr):
            return
        if self._progress is None:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

            bar = Progress(
                TextColumn("copying"),
                BarColumn(),
                TaskProgressColumn(),
                console=Console(file=sys.stderr),
                transient=True,
            )
            bar.start()
            self._progress = (bar, bar.add_task("copy", total=total))
        bar, task = self._progress
        bar.update(task, completed=done, total=total)
        if done >= total:
            self.close_progress()

    def close_progress(self) -> None:
        """Stop the progress bar if one is showing."""
        if self._progress is not None:
            self._progress[0].stop()
            self._progress = None


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


pass_app = click.make_pass_decorator(App)


def emit_json(value: Any) -> None:
    """Print `value` (attrs instances, lists, dicts) as one JSON document on stdout."""
    from cattrs import Converter

    doc = Converter().unstructure(value)
    click.echo(json.dumps(doc, indent=2, ensure_ascii=False, default=str))


json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


# --- the root group ---------------------------------------------------------------------------


@click.group(cls=SchemalogGroup, context_settings=CONTEXT_SETTINGS)
@click.option(
    "--database",
    metavar="PATH",
    help="The SQLite database file (env SCHEMALOG_DATABASE).",
)
@click.option(
    "--migrations",
    metavar="DIR",
    help="The directory of migration files (env SCHEMALOG_MIGRATIONS; default migrations).",
)
@click.option(
    "--backup-dir",
    metavar="DIR",
    help="Where backups go (env SCHEMALOG_BACKUP_DIR; default <database>.backups).",
)
@click.option(
    "--config",
    metavar="FILE",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Config file to read instead of ./schemalog.toml or ./pyproject.toml.",
)
@click.option(
    "--lock-timeout",
    metavar="SECONDS",
    help="How long to wait for another run's lock (env SCHEMALOG_LOCK_TIMEOUT; default 30).",
)
@click.option("-v", "--verbose", is_flag=True, help="Show debug logs and error tracebacks.")
@click.option("-q", "--quiet", is_flag=True, help="Show only warnings and errors in the logs.")
@click.option(
    "--log-format",
    type=click.Choice(["auto", "human", "json"]),
    help="Log lines on stderr: auto (none unless -v), human or json.",
)
@click.version_option(package_name="schemalog", prog_name="schemalog")
@click.pass_context
def cli(
    ctx: click.Context,
    database: str | None,
    migrations: str | None,
    backup_dir: str | None,
    config: Path | None,
    lock_timeout: str | None,
    verbose: bool,
    quiet: bool,
    log_format: str | None,
) -> None:
    """Schema migrations for SQLite, recorded in an event-sourced, hash-chained journal.

    Global options go before the command; each can also come from the environment
    (SCHEMALOG_*) or the config file (schemalog.toml or [tool.schemalog] in pyproject.toml).
    Precedence: flag > environment > file > default.

    Exit codes: 0 success or nothing to do; 1 a migration or check failed (rolled back);
    2 usage, configuration or migration-file error (nothing ran); 3 the lock is held by
    another run; 4 the journal or database needs a human (nothing was changed).

    \b
    Example:
        schemalog init
        schemalog new add_email
        schemalog --database app.db up
        schemalog --database app.db status --json
    """
    if verbose and quiet:
        msg = "--verbose and --quiet were both given"
        raise ConfigError(msg, hint="pass only one of them")
    flags = {
        "database": database,
        "migrations": migrations,
        "backup_dir": backup_dir,
        "lock_timeout": lock_timeout,
        "log_format": log_format,
    }
    ctx.obj = App(
        flags={k: v for k, v in flags.items() if v is not None},
        config=config,
        verbose=verbose,
        quiet=quiet,
    )
    ctx.call_on_close(ctx.obj.close_progress)


# --- project files ------------------------------------------------------------------------------


@cli.command()
@pass_app
def init(app: App) -> None:
    """Write a commented schemalog.toml here and create the migrations directory.

    Uses --database and --migrations if given (default app.db and migrations). Never
    overwrites: refuses when schemalog.toml (or --config FILE) exists, or when
    pyproject.toml already has a [tool.schemalog] table.

    \b
    Example:
        schemalog --database data/app.db init
    """
    from schemalog.engine.files.scaffold import init_project

    result = init_project(
        Path.cwd(),
        database=str(app.flags.get("database", "app.db")),
        migrations=str(app.flags.get("migrations", "migrations")),
        config=app.config,
    )
    click.echo(f"wrote {result.config}")
    made = "created" if result.migrations_created else "using existing"
    click.echo(f"{made} migrations directory {result.migrations}")
    click.echo("next: schemalog new <name>, then schemalog up")


@cli.command()
@click.argument("name")
@click.option("--sql", "sql", is_flag=True, help="Write a .sql file (-- migrate:up sections).")
@pass_app
def new(app: App, name: str, sql: bool) -> None:
    """Create the next numbered migration NNN_NAME.py (or .sql) from a commented template.

    NAME is snake_case (lower-case letters, digits, _). The new file's `up` is only a
    comment: schemalog refuses the file until you write its SQL.

    \b
    Example:
        schemalog new add_email
        schemalog new index_users_by_email --sql
    """
    from schemalog.engine.files.scaffold import new_migration

    path = new_migration(app.settings.migrations, name, sql=sql)
    click.echo(f"created {path}")
    click.echo("next: write up, down and verify in it, then run `schemalog check`")


# --- reading ------------------------------------------------------------------------------------


@cli.command()
@json_option
@pass_app
def status(app: App, as_json: bool) -> None:
    """Show the version, pending migrations, lock, drift and journal health.

    Read-only: never writes and never takes the lock. A database that does not exist
    yet is reported as version 0 with every migration pending.

    \b
    Example:
        schemalog --database app.db status --json
    """
    st = app.migrator().status()
    if as_json:
        emit_json(st)
    else:
        app.out.status(st)


@cli.command()
@json_option
@pass_app
def history(app: App, as_json: bool) -> None:
    """List every migration attempt, oldest first: applied, reverted, failed, interrupted.

    Read-only.

    \b
    Example:
        schemalog --database app.db history --json
    """
    entries = app.migrator().history()
    if as_json:
        emit_json(entries)
    else:
        app.out.history(entries)


@cli.command()
@click.option("--until", type=click.IntRange(min=0), metavar="SEQ", help="Stop after event SEQ.")
@json_option
@pass_app
def replay(app: App, until: int | None, as_json: bool) -> None:
    """Replay the journal and show the state it gives (now, or right after event SEQ).

    Read-only.

    \b
    Example:
        schemalog --database app.db replay --until 12 --json
    """
    state = app.migrator().replay(until)
    if as_json:
        emit_json(state)
    else:
        app.out.state(state, until)


@cli.command()
@json_option
@pass_app
def events(app: App, as_json: bool) -> None:
    """Print every journal event (seq, time, run, kind, version, data).

    Read-only.

    \b
    Example:
        schemalog --database app.db events --json
    """
    evs = app.migrator().events()
    if as_json:
        emit_json(evs)
    else:
        app.out.events(evs)


@cli.command()
@json_option
@pass_app
def verify(app: App, as_json: bool) -> None:
    """Check both journals, integrity, foreign keys, the schema and every verify query.

    Read-only. Exits 1 when a check fails and 4 when the journal was tampered with.
    With --json, prints {ok, checks: [{check, ok, detail}], error} in every case.

    \b
    Example:
        schemalog --database app.db verify
    """
    try:
        checks = app.migrator().verify()
    except SchemalogError as exc:
        found = getattr(exc, "checks", None)
        if found is not None:
            if as_json:
                emit_json({"ok": False, "checks": found, "error": exc.message})
            else:
                app.out.checks(found)
        raise
    if as_json:
        emit_json({"ok": True, "checks": checks, "error": None})
    else:
        app.out.checks(checks)
        app.out.line(f"verify: all {len(checks)} checks passed", "bold green")


# --- migrating ----------------------------------------------------------------------------------


@cli.command()
@click.option("--to", "target", type=click.IntRange(min=0), metavar="V", help="Stop at version V.")
@click.option("--dry-run", is_flag=True, help="Print the plan and its SQL; change nothing.")
@click.option(
    "--allow-drift", is_flag=True, help="Accept a schema changed outside schemalog (recorded)."
)
@pass_app
def up(app: App, target: int | None, dry_run: bool, allow_drift: bool) -> None:
    """Apply pending migrations (to the newest, or to --to V), each all-or-nothing.

    Takes the lock, recovers from any interrupted run, backs the database up, then
    applies the migrations. A failing migration is rolled back (exit 1); the ones
    before it stay applied.

    \b
    Example:
        schemalog --database app.db up --dry-run
        schemalog --database app.db up --to 3
    """
    migrator = app.migrator()
    report = migrator.upgrade(target, dry_run=dry_run, allow_drift=allow_drift)
    app.out.run(report, str(migrator.paths.database))
    if report.plan.empty and report.plan.to_version == 0:
        from schemalog.engine.files.scaffold import next_version

        directory = app.settings.migrations
        if next_version(directory) == 1:
            app.out.line(f"no migration files in {directory}; create one with `schemalog new NAME`")


@cli.command()
@click.option(
    "--to", "target", type=click.IntRange(min=0), metavar="V", required=True, help="Target version."
)
@click.option("--dry-run", is_flag=True, help="Print the plan and its SQL; change nothing.")
@click.option(
    "--allow-drift", is_flag=True, help="Accept a schema changed outside schemalog (recorded)."
)
@pass_app
def down(app: App, target: int, dry_run: bool, allow_drift: bool) -> None:
    """Revert applied migrations, newest first, down to version V.

    Refuses before anything runs if a migration on the way has no `down`. Each revert
    is checked against the schema recorded before the migration was applied.

    \b
    Example:
        schemalog --database app.db down --to 2 --dry-run
    """
    migrator = app.migrator()
    report = migrator.downgrade(target, dry_run=dry_run, allow_drift=allow_drift)
    app.out.run(report, str(migrator.paths.database))


@cli.command()
@click.option("--all", "from_scratch", is_flag=True, help="Also test every migration from empty.")
@click.option(
    "--scratch-dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Where to put the scratch copy (default: the system's temp directory).",
)
@pass_app
def check(app: App, from_scratch: bool, scratch_dir: Path | None) -> None:
    """Test migrations on a scratch copy: up, verify, down, same schema, up again.

    Never touches the real database or its journal. Tests the pending migrations on a
    copy of the database (or, without one, every migration from an empty database);
    --all also tests every migration from an empty database. Exits 1 if any failed.

    \b
    Example:
        schemalog --database app.db check --all
    """
    from schemalog.engine.base.errors import CheckFailed
    from schemalog.engine.commands.check import check_copy, check_from_empty

    settings = app.settings
    out = app.out
    reports = []
    if settings.database is not None and settings.database.exists():
        out.check_header(f"pending migrations, on a copy of {settings.database}:")
        reports.append(check_copy(settings, workdir=scratch_dir, on_result=out.check_result))
        if not reports[-1].results:
            out.line("  nothing pending")
    if from_scratch or not reports:
        out.check_header("every migration, from an empty database:")
        reports.append(check_from_empty(settings, workdir=scratch_dir, on_result=out.check_result))
    out.check_summary(reports)
    failed = [r for rep in reports for r in rep.failed]
    if failed:
        msg = f"check: {len(failed)} migration(s) failed: " + "; ".join(
            f"{r.filename}: {r.detail}" for r in failed
        )
        raise CheckFailed(
            msg, state="the real database was not touched", hint="fix the migration and re-run"
        )


@cli.command()
@click.option("--dry-run", is_flag=True, help="Only say what recovery would do.")
@json_option
@pass_app
def recover(app: App, dry_run: bool, as_json: bool) -> None:
    """Reconcile the journals and the database after a crash (also done by every command).

    Repairs a torn JSONL line, copies events missing from one journal, finishes or
    undoes interrupted steps and restores, and closes dead runs. Refuses (exit 4,
    changing nothing) when a past event was tampered with.

    \b
    Example:
        schemalog --database app.db recover --dry-run
    """
    import attrs

    plan = app.migrator().recover(dry_run=dry_run)
    if as_json:
        # The repaired events and torn bytes themselves stay out: `events --json` has them.
        def keep(attribute: attrs.Attribute, _value: Any) -> bool:
            return attribute.name not in ("events", "torn")

        emit_json(
            {
                "dry_run": dry_run,
                "needed": plan.needed,
                "version": plan.state.version if plan.state is not None else None,
                "actions": [attrs.asdict(a, filter=keep) for a in plan.actions],
            }
        )
    else:
        app.out.recovery(plan, dry_run=dry_run)


@cli.command()
@click.argument("version", type=click.IntRange(min=0))
@pass_app
def baseline(app: App, version: int) -> None:
    """Adopt an existing database as being at VERSION, without running 1..VERSION.

    For databases created before schemalog managed them. Refuses a database that
    schemalog already manages.

    \b
    Example:
        schemalog --database legacy.db baseline 4
    """
    migrator = app.migrator()
    migrator.baseline(version)
    click.echo(f"{migrator.paths.database} adopted at version {version}")


# --- backups ------------------------------------------------------------------------------------


@cli.group(cls=SchemalogGroup)
def backup() -> None:
    """Take, list, restore and prune backups.

    \b
    Example:
        schemalog --database app.db backup list
    """


@backup.command("create")
@pass_app
def backup_create(app: App) -> None:
    """Take a verified backup now (journaled), then apply the retention budget.

    \b
    Example:
        schemalog --database app.db backup create
    """
    record = app.migrator().backup_create()
    app.out.backup(record)


@backup.command("list")
@json_option
@pass_app
def backup_list(app: App, as_json: bool) -> None:
    """List the backups the journal knows, oldest first. Read-only.

    \b
    Example:
        schemalog --database app.db backup list --json
    """
    records = app.migrator().backup_list()
    if as_json:
        emit_json(records)
    else:
        app.out.backups(records)


@backup.command("restore")
@click.argument("backup_id", metavar="ID")
@pass_app
def backup_restore(app: App, backup_id: str) -> None:
    """Restore backup ID (see `backup list`); the replaced database is preserved first.

    \b
    Example:
        schemalog --database app.db backup restore v0003-20240101T120000.000000Z
    """
    preserved = app.migrator().backup_restore(backup_id)
    click.echo(f"restored backup {backup_id}; the replaced database is kept in {preserved}")


@backup.command("prune")
@pass_app
def backup_prune(app: App) -> None:
    """Delete the backups beyond the retention budget (retention_count, retention_bytes).

    The newest verified backup is always kept.

    \b
    Example:
        SCHEMALOG_RETENTION_COUNT=3 schemalog --database app.db backup prune
    """
    removed = app.migrator().backup_prune()
    if removed:
        click.echo(f"removed {len(removed)} backup(s): " + ", ".join(b.id for b in removed))
    else:
        click.echo("nothing to remove: the backups fit the retention budget")


# --- the lock -----------------------------------------------------------------------------------


@cli.group(cls=SchemalogGroup)
def lock() -> None:
    """Inspect the migration lock, or clear a dead holder's record.

    \b
    Example:
        schemalog --database app.db lock status
    """


@lock.command("status")
@json_option
@pass_app
def lock_status(app: App, as_json: bool) -> None:
    """Show whether a live process holds the migration lock, and which. Read-only.

    \b
    Example:
        schemalog --database app.db lock status --json
    """
    doc = app.migrator().lock_status()
    if as_json:
        emit_json(doc)
    else:
        app.out.lock(doc)


@lock.command("break")
@pass_app
def lock_break(app: App) -> None:
    """Close the lock record of a holder that died (journaled); refuses while it lives.

    The lock itself is released by the kernel when its holder dies; this tidies the
    journal's and the lock file's record of it.

    \b
    Example:
        schemalog --database app.db lock break
    """
    holder = app.migrator().lock_break()
    if holder:
        from schemalog.engine.cli.render import holder_text

        click.echo("closed the record of the dead holder " + holder_text(holder))
    else:
        click.echo("the lock is free and no holder is recorded")


# --- fleets (engine/cli/fleet.py; it uses the plumbing above) -----------------------------------

from schemalog.engine.cli.fleet import fleet  # noqa: E402

cli.add_command(fleet)


# --- entry point ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """The console script `schemalog` (and `python -m schemalog`)."""
    cli.main(args=argv, prog_name="schemalog")
