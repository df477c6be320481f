"""The `schemalog` command line: one command per library function, same names, same options.

The root group holds the global options; each group of commands lives in a module of its
own (`project`, `inspect`, `migrate`, `schema`, `backups`, `locks`, `fleet`, `help`), and every command calls the
command function of the same name (`up` calls `upgrade`, `down` calls `downgrade`) and
prints its result with `show()`. Errors become exit codes in `engine.cli.app`.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import click

from schemalog.engine.base.errors import ConfigError
from schemalog.engine.base.settings import LOG_FORMATS
from schemalog.engine.cli.app import CONTEXT_SETTINGS, App, SchemalogGroup
from schemalog.engine.shell import signals

__all__ = ["cli", "main"]

#: Every command: the module of this package that defines it, and its name there.
COMMANDS = {
    "init": ("project", "init"),
    "new": ("project", "new"),
    "status": ("inspect", "status"),
    "history": ("inspect", "history"),
    "replay": ("inspect", "replay"),
    "events": ("inspect", "events"),
    "verify": ("inspect", "verify"),
    "up": ("migrate", "up"),
    "down": ("migrate", "down"),
    "check": ("migrate", "check"),
    "recover": ("migrate", "recover"),
    "baseline": ("migrate", "baseline"),
    "schema": ("schema", "schema"),
    "lint": ("schema", "lint"),
    "repair": ("schema", "repair"),
    "backup": ("backups", "backup"),
    "lock": ("locks", "lock"),
    "fleet": ("fleet", "fleet"),
    "help": ("help", "help_"),
}


def _module(name: str) -> ModuleType:
    """The command module `name`, imported when first needed: a command pays at start-up for
    its own module only (help, which lists them all, imports every one)."""
    if name == "project":
        from schemalog.engine.cli import project as module
    elif name == "inspect":
        from schemalog.engine.cli import inspect as module
    elif name == "migrate":
        from schemalog.engine.cli import migrate as module
    elif name == "schema":
        from schemalog.engine.cli import schema as module
    elif name == "backups":
        from schemalog.engine.cli import backups as module
    elif name == "locks":
        from schemalog.engine.cli import locks as module
    elif name == "fleet":
        from schemalog.engine.cli import fleet as module
    else:
        from schemalog.engine.cli import help as module
    return module


class _Root(SchemalogGroup):
    """The root group: its commands are loaded by name (`COMMANDS`)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = COMMANDS.get(cmd_name)
        if where is None:
            return None
        command = getattr(_module(where[0]), where[1])
        assert isinstance(command, click.Command)
        return command


@click.group(cls=_Root, context_settings=CONTEXT_SETTINGS)
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
@click.option(
    "--functions",
    metavar="MODULE:CALLABLE",
    help="Register the application's SQL functions on every connection (env SCHEMALOG_FUNCTIONS).",
)
@click.option(
    "--journal-key-file",
    metavar="FILE",
    help="Secret key of the journal's keyed chain, HMAC-SHA-256 (env SCHEMALOG_JOURNAL_KEY_FILE).",
)
@click.option("-v", "--verbose", is_flag=True, help="Show debug logs and error tracebacks.")
@click.option("-q", "--quiet", is_flag=True, help="Show only warnings and errors in the logs.")
@click.option(
    "--log-format",
    type=click.Choice(LOG_FORMATS),
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
    functions: str | None,
    journal_key_file: str | None,
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
    another run, or the database stays busy; 4 the journal or database needs a human
    (nothing was changed); 130/143 interrupted by SIGINT/SIGTERM (rolled back).

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
        "functions": functions,
        "journal_key_file": journal_key_file,
    }
    ctx.obj = App(
        flags={k: v for k, v in flags.items() if v is not None},
        config=config,
        verbose=verbose,
        quiet=quiet,
    )
    ctx.call_on_close(ctx.obj.close_progress)


def main(argv: list[str] | None = None) -> None:
    """The console script `schemalog` (and `python -m schemalog`)."""
    signals.install()
    cli.main(args=argv, prog_name="schemalog")
