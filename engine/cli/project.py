"""`schemalog init` and `schemalog new`: the project's files."""

from __future__ import annotations

from pathlib import Path

import click

from schemalog.engine.cli.app import App, pass_app

__all__ = ["init", "new"]


@click.command()
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
    from schemalog.engine.commands import project

    result = project.init(
        Path.cwd(),
        database=str(app.flags.get("database", "app.db")),
        migrations=str(app.flags.get("migrations", "migrations")),
        config=app.config,
    )
    click.echo(f"wrote {result.config}")
    made = "created" if result.migrations_created else "using existing"
    click.echo(f"{made} migrations directory {result.migrations}")
    click.echo("next: schemalog new <name>, then schemalog up")


@click.command()
@click.argument("name")
@click.option("--sql", "sql", is_flag=True, help="Write a .sql file (-- migrate:up sections).")
@pass_app
def new(app: App, name: str, sql: bool) -> None:
    """Create the next numbered migration NNN_NAME.py (or .sql) from a commented template.

    NAME is snake_case (lower-case letters, digits, _), or free text that becomes
    snake_case: "add widgets" -> add_widgets, AddEmail -> add_email, accents and
    punctuation folded. The new file's `up` is only a comment: schemalog refuses the
    file until you write its SQL.

    \b
    Example:
        schemalog new add_email
        schemalog new "index users by email" --sql
    """
    from schemalog.engine.commands import project

    path = project.new(app.settings.migrations, name, sql=sql)
    click.echo(f"created {path}")
    click.echo("next: write up, down and verify in it, then run `schemalog check`")
