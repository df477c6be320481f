"""`schemalog schema`, `lint` and `repair`: seeing the schema, and what the migrations do to it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from schemalog.engine.base.errors import SchemalogError
from schemalog.engine.cli.app import App, json_option, pass_app, show

__all__ = ["lint", "repair", "schema"]

_file = click.Path(path_type=Path, dir_okay=False)


def _show_report(
    app: App,
    as_json: bool,
    renderer: Callable[..., None],
    command: Callable[..., Any],
    *args: Any,
    **kw: Any,
) -> None:
    """Run `command` and show its report; when it fails with a report attached (the schema
    differs, lint found an error), show that report, then let the error give the exit code."""
    try:
        report = command(*args, **kw)
    except SchemalogError as exc:
        found = getattr(exc, "report", None)
        if found is not None:
            show(app, found, as_json, renderer)
        raise
    show(app, report, as_json, renderer)


@click.command()
@click.option("--output", type=_file, metavar="FILE", help="Write the schema to FILE.")
@click.option(
    "--diff", type=_file, metavar="FILE", help="Compare with FILE; exit 1 when an object differs."
)
@json_option
@pass_app
def schema(app: App, output: Path | None, diff: Path | None, as_json: bool) -> None:
    """Print the database's schema in canonical form, write it, or compare it with a file.

    Objects are ordered by type, then name, one statement each, normalised as the schema
    fingerprint normalises them; schemalog's own tables are left out. Read-only (the
    database is never written). --diff FILE names every object that differs from FILE
    (added, removed, changed: columns, constraints, definitions) and exits 1 if any does.

    \b
    Example:
        schemalog --database app.db schema --output schema.sql
        schemalog --database app.db schema --diff schema.sql
    """
    from schemalog.engine.cli import render_schema
    from schemalog.engine.commands import schema as schemas

    _show_report(app, as_json, render_schema.schema, schemas.schema, app.context, output, diff)


@click.command()
@click.option("--all", "every", is_flag=True, help="Lint every migration, from an empty database.")
@click.option(
    "--long-rows",
    type=click.IntRange(min=1),
    metavar="ROWS",
    help="Warn about statements touching at least ROWS rows (default 100000).",
)
@click.option(
    "--scratch-dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Where to put the scratch copy (default: the system's temp directory).",
)
@json_option
@pass_app
def lint(
    app: App, every: bool, long_rows: int | None, scratch_dir: Path | None, as_json: bool
) -> None:
    """Find the traps in pending migrations before they run, on a scratch copy.

    Runs each pending migration on a copy of the database (so rules that depend on the data
    see it), or with --all (or without a database) every migration from an empty database;
    the database itself is never changed. Each finding has a code (`schemalog help lint`), a severity, the file and the
    statement. Silence one in the file itself: `-- schemalog: allow CODE reason` (SQL) or
    `# schemalog: allow CODE reason` (Python). Exits 1 when any finding is an error.

    \b
    Example:
        schemalog --database app.db lint
        schemalog --database app.db lint --all --json
    """
    from schemalog.engine.base.context import Context
    from schemalog.engine.cli import render_schema
    from schemalog.engine.commands import lint as linting

    options: dict[str, Any] = {"every": every, "workdir": scratch_dir}
    if long_rows is not None:
        options["long_rows"] = long_rows
    ctx = Context(app.settings, observer=app.observer)  # no database needed: lint from empty
    _show_report(app, as_json, render_schema.lint, linting.lint, ctx, **options)


@click.command()
@click.argument("version", type=click.IntRange(min=1))
@click.option("--reason", required=True, metavar="TEXT", help="Why the edited file is accepted.")
@pass_app
def repair(app: App, version: int, reason: str) -> None:
    """Accept the edited file of applied migration VERSION (e.g. after fixing a comment).

    Records `checksum_accepted` with the old and new checksums and the reason (shown by
    `history`); runs no SQL. Refused for a migration that was never applied. Only for
    edits that do not change what the migration does: put real changes in a new migration.

    \b
    Example:
        schemalog --database app.db repair 3 --reason "fixed a typo in the docstring"
    """
    from schemalog.engine.commands import repair as repairing

    result = repairing.repair(app.context, version, reason)
    if not result.accepted:
        click.echo(f"{result.filename} already matches the journal; nothing recorded")
        return
    click.echo(
        f"accepted {result.filename}: checksum {result.old[:12] or '(none)'} -> "
        f"{result.new[:12]} (run {result.run_id})"
    )
