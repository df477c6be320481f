"""`schemalog up`, `down`, `baseline`, `recover` and `check`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from schemalog.engine.cli.app import App, json_option, pass_app, show

__all__ = ["baseline", "check", "down", "recover", "up"]

_to = click.option(
    "--to", "target", type=click.IntRange(min=0), metavar="V", help="Stop at version V."
)
_dry_run = click.option(
    "--dry-run", is_flag=True, help="Print the plan and its SQL; change nothing."
)
_allow_drift = click.option(
    "--allow-drift", is_flag=True, help="Accept a schema changed outside schemalog (recorded)."
)


@click.command()
@_to
@_dry_run
@_allow_drift
@click.option(
    "--retry", is_flag=True, help="Try again even if a run this one waited behind failed."
)
@pass_app
def up(app: App, target: int | None, dry_run: bool, allow_drift: bool, retry: bool) -> None:
    """Apply pending migrations (to the newest, or to --to V), each all-or-nothing.

    Takes the lock, recovers from any interrupted run, backs the database up, then
    applies the migrations. A failing migration is rolled back (exit 1); the ones
    before it stay applied.

    \b
    Example:
        schemalog --database app.db up --dry-run
        schemalog --database app.db up --to 3
    """
    from schemalog.engine.cli import render
    from schemalog.engine.commands import migrate, project

    if retry:
        app.flags["retry"] = True
    ctx = app.context
    report = migrate.upgrade(ctx, target, dry_run=dry_run, allow_drift=allow_drift)
    render.run(app.out, report, str(ctx.settings.paths.database), ctx.settings.paths)
    directory = ctx.settings.migrations
    if report.plan.empty and report.plan.to_version == 0 and project.next_version(directory) == 1:
        app.out.line(f"no migration files in {directory}; create one with `schemalog new NAME`")


@click.command()
@click.option(
    "--to", "target", type=click.IntRange(min=0), metavar="V", required=True, help="Target version."
)
@_dry_run
@_allow_drift
@pass_app
def down(app: App, target: int, dry_run: bool, allow_drift: bool) -> None:
    """Revert applied migrations, newest first, down to version V.

    Refuses before anything runs if a migration on the way has no `down`. Each revert
    is checked against the schema recorded before the migration was applied.

    \b
    Example:
        schemalog --database app.db down --to 2 --dry-run
    """
    from schemalog.engine.cli import render
    from schemalog.engine.commands import migrate

    ctx = app.context
    report = migrate.downgrade(ctx, target, dry_run=dry_run, allow_drift=allow_drift)
    render.run(app.out, report, str(ctx.settings.paths.database), ctx.settings.paths)


@click.command()
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
    from schemalog.engine.commands import migrate

    ctx = app.context
    migrate.baseline(ctx, version)
    click.echo(f"{ctx.settings.paths.database} adopted at version {version}")


@click.command()
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

    from schemalog.engine.cli import render
    from schemalog.engine.commands import recover as recovering

    plan = recovering.recover(app.context, dry_run=dry_run)

    def keep(attribute: attrs.Attribute, _value: Any) -> bool:
        # The repaired events and torn bytes themselves stay out: `events --json` has them.
        return attribute.name not in ("events", "torn")

    doc = {
        "dry_run": dry_run,
        "needed": plan.needed,
        "version": plan.state.version if plan.state is not None else None,
        "actions": [attrs.asdict(a, filter=keep) for a in plan.actions],
    }
    show(app, doc, as_json, lambda out, _doc: render.recovery(out, plan, dry_run=dry_run))


@click.command()
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
    from schemalog.engine.cli import render
    from schemalog.engine.commands import check as checking

    out = app.out
    settings = app.settings
    seen: list[Any] = []
    passes: list[str] = []

    def on_pass(description: str) -> None:
        if passes and not seen:
            out.line("  nothing pending")
        passes.append(description)
        seen.clear()
        render.check_header(out, description)

    def on_result(result: Any) -> None:
        seen.append(result)
        render.check_result(out, result)

    try:
        reports = checking.check(
            settings,
            from_scratch=from_scratch,
            workdir=scratch_dir,
            on_result=on_result,
            on_pass=on_pass,
        )
    except CheckFailed as exc:
        render.check_summary(out, getattr(exc, "reports", []))
        raise
    if passes and not seen:
        out.line("  nothing pending")
    render.check_summary(out, reports)
