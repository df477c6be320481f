"""`schemalog status`, `history`, `replay`, `events` and `verify`: every one read-only."""

from __future__ import annotations

import click

from schemalog.engine.base.errors import SchemalogError
from schemalog.engine.cli.app import App, json_option, pass_app, show

__all__ = ["events", "history", "replay", "status", "verify"]


@click.command()
@click.option(
    "--exit-code",
    is_flag=True,
    help="Exit 1 when migrations are pending, a file has an error, drift or recovery is found.",
)
@json_option
@pass_app
def status(app: App, exit_code: bool, as_json: bool) -> None:
    """Show the version, pending migrations, lock, drift and journal health.

    Read-only: never writes and never takes the lock. A database that does not exist
    yet is reported as version 0 with every migration pending. With --exit-code (for
    health checks and CI) it exits 1 when migrations are pending, the migration files
    have an error, the schema drifted or recovery is needed.

    \b
    Example:
        schemalog --database app.db status --json
        schemalog --database app.db status --exit-code || alert "database not current"
    """
    from schemalog.engine.commands import inspect

    st = inspect.status(app.context)
    show(app, st, as_json, "status")
    reasons = inspect.unhealthy(st) if exit_code else []
    if reasons:
        if not as_json:
            click.echo(f"status: {'; '.join(reasons)}", err=True)
        click.get_current_context().exit(1)


@click.command()
@json_option
@pass_app
def history(app: App, as_json: bool) -> None:
    """List every migration attempt, oldest first: applied, reverted, failed, interrupted.

    Read-only.

    \b
    Example:
        schemalog --database app.db history --json
    """
    from schemalog.engine.commands import inspect

    show(app, inspect.history(app.context), as_json, "history")


@click.command()
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
    from schemalog.engine.commands import inspect

    show(app, inspect.replay(app.context, until), as_json, "replayed_state", until)


@click.command()
@json_option
@pass_app
def events(app: App, as_json: bool) -> None:
    """Print every journal event (seq, time, run, kind, version, data).

    Read-only.

    \b
    Example:
        schemalog --database app.db events --json
    """
    from schemalog.engine.commands import inspect

    show(app, inspect.events(app.context), as_json, "event_table")


@click.command()
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
    from schemalog.engine.commands.verify import verify as verify_all

    try:
        checks = verify_all(app.context)
    except SchemalogError as exc:
        found = getattr(exc, "checks", None) or []
        doc = {"ok": False, "checks": found, "error": exc.message}
        show(app, doc, as_json, "failed_checks")
        raise
    show(app, {"ok": True, "checks": checks, "error": None}, as_json, "verified")
