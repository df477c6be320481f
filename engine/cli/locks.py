"""`schemalog lock status|break`."""

from __future__ import annotations

import click

from schemalog.engine.cli.app import App, SchemalogGroup, json_option, pass_app, show

__all__ = ["lock"]


@click.group(cls=SchemalogGroup)
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
    from schemalog.engine.commands import locks

    show(app, locks.lock_status(app.context), as_json, "lock")


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
    from schemalog.engine.cli.output import holder_text
    from schemalog.engine.commands import locks

    holder = locks.lock_break(app.context)
    if holder:
        click.echo("closed the record of the dead holder " + holder_text(holder))
    else:
        click.echo("the lock is free and no holder is recorded")
