"""`schemalog backup create|list|restore|prune`."""

from __future__ import annotations

import click

from schemalog.engine.cli.app import App, SchemalogGroup, json_option, pass_app, show

__all__ = ["backup"]


@click.group(cls=SchemalogGroup)
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
    from schemalog.engine.commands import backups

    ctx = app.context
    show(app, backups.backup_create(ctx), False, "backup", ctx.settings.paths)


@backup.command("list")
@json_option
@pass_app
def backup_list(app: App, as_json: bool) -> None:
    """List the backups the journal knows, oldest first. Read-only.

    \b
    Example:
        schemalog --database app.db backup list --json
    """
    from schemalog.engine.commands import backups

    ctx = app.context
    show(app, backups.backup_list(ctx), as_json, "backups", ctx.settings.paths)


@backup.command("restore")
@click.argument("backup_id", metavar="ID")
@pass_app
def backup_restore(app: App, backup_id: str) -> None:
    """Restore backup ID (see `backup list`); the replaced database is preserved first.

    Says what the replaced database held beyond the backup (rows per table) and where it
    is kept.

    \b
    Example:
        schemalog --database app.db backup restore v0003-20240101T120000.000000Z
    """
    from schemalog.engine.commands import backups

    show(app, backups.backup_restore(app.context, backup_id), False, "restored")


@backup.command("prune")
@pass_app
def backup_prune(app: App) -> None:
    """Delete the backups beyond the retention budget (retention_count, retention_bytes).

    The newest verified backup is always kept.

    \b
    Example:
        SCHEMALOG_RETENTION_COUNT=3 schemalog --database app.db backup prune
    """
    from schemalog.engine.commands import backups

    removed = backups.backup_prune(app.context)
    if removed:
        click.echo(f"removed {len(removed)} backup(s): " + ", ".join(b.id for b in removed))
    else:
        click.echo("nothing to remove: the backups fit the retention budget")
