"""The CLI's plumbing: the global options (`App`), errors to exit codes, and `show()`.

The CLI is the only place that turns errors into output and exit codes: a `SchemalogError`
prints `error: <message>` on stderr and exits with its `exit_code` (0 success, 1 failed and
rolled back / check found a problem, 2 usage or file error, 3 lock held or database busy,
4 a human must look, 130/143 interrupted). `--json` prints exactly one JSON document on
stdout. Settings are loaded only when a command needs them, and the renderers (rich tables,
progress bars) only for human output, so `status --json` starts fast.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from schemalog.engine.base.config import load_settings
from schemalog.engine.base.context import Context, Observer
from schemalog.engine.base.errors import SchemalogError
from schemalog.engine.base.logs import configure_logging, silence_logging
from schemalog.engine.base.settings import Settings
from schemalog.engine.base.terminal import is_tty

__all__ = ["App", "CliObserver", "SchemalogGroup", "emit_json", "json_option", "pass_app", "show"]

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class SchemalogGroup(click.Group):
    """A click group that suggests the closest command and turns errors into exit codes."""

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            name = args[0] if args else ""
            if "No such command" in exc.message and "Did you mean" not in exc.format_message():
                import difflib  # only to suggest a command

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
        except OSError as exc:  # every command maps its own I/O: this is the output failing
            reason = exc.strerror or str(exc)
            _report(
                ctx,
                exc,
                f"cannot write the output ({reason}); what the command did is journaled: "
                "see `schemalog status` and `schemalog history`",
            )
            ctx.exit(1)
        except Exception as exc:  # a bug in schemalog: say so, and how to see more
            text = str(exc).splitlines()[0] if str(exc) else ""
            _report(ctx, exc, f"unexpected {type(exc).__name__}: {text}".rstrip(": "))
            ctx.exit(1)


def _report(ctx: click.Context, exc: BaseException, message: str) -> None:
    app = ctx.obj if isinstance(ctx.obj, App) else None
    if app is not None:
        app.close_progress()
        if app.verbose:
            import traceback  # only with --verbose

            traceback.print_exception(exc, file=sys.stderr)
    click.echo(f"error: {message}", err=True)


class CliObserver(Observer):
    """Says once, on stderr, whose lock a run waits for; draws copy progress on a terminal."""

    def __init__(self, *, quiet: bool) -> None:
        self.quiet = quiet
        self._waited = False
        self._bar: Any = None

    def lock_wait(self, holder: str | None, waited: float) -> None:
        """Say once whose lock this run waits for."""
        if not self._waited:
            self._waited = True
            click.echo(f"waiting for the lock held by {holder or 'another process'}…", err=True)

    def progress(self, done: int, total: int) -> None:
        """A progress bar for backups and restores, on a terminal only."""
        if self.quiet or not is_tty(sys.stderr):
            return
        if self._bar is None:
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
            self._bar = (bar, bar.add_task("copy", total=total))
        bar, task = self._bar
        bar.update(task, completed=done, total=total)
        if done >= total:
            self.close()

    def close(self) -> None:
        """Stop the progress bar if one is showing."""
        if self._bar is not None:
            self._bar[0].stop()
            self._bar = None


class App:
    """What the global options gave; builds the settings and the context on first use."""

    def __init__(
        self, *, flags: dict[str, Any], config: Path | None, verbose: bool, quiet: bool
    ) -> None:
        self.flags = flags
        self.config = config
        self.verbose = verbose
        self.quiet = quiet
        self.observer = CliObserver(quiet=quiet)
        self._settings: Settings | None = None
        self._out: Any = None

    @property
    def settings(self) -> Settings:
        """The settings (flag > env > file > default); logging is configured from them."""
        if self._settings is None:
            settings = load_settings(
                flags=self.flags, env=os.environ, cwd=Path.cwd(), config_file=self.config
            )
            if settings.log_format == "auto" and not self.verbose:
                # The CLI's own output (stdout, and `error:` on stderr) reports what happened;
                # log lines would repeat it. They show with -v or an explicit --log-format.
                silence_logging()
            else:
                configure_logging(fmt=settings.log_format, verbose=self.verbose, quiet=self.quiet)
            if settings.functions is not None and os.getcwd() not in sys.path:
                sys.path.append(os.getcwd())  # the application's module, as `python -m` finds it
            self._settings = settings
        return self._settings

    @property
    def context(self) -> Context:
        """The context every command function is called with (ConfigError without a database)."""
        settings = self.settings
        settings.paths  # noqa: B018 - raises ConfigError naming the fix when no database is set
        return Context(settings, observer=self.observer)

    @property
    def out(self) -> Any:
        """Human output (rich on a terminal)."""
        if self._out is None:
            from schemalog.engine.cli.output import Out

            self._out = Out()
        return self._out

    def close_progress(self) -> None:
        """Stop the progress bar if one is showing."""
        self.observer.close()


pass_app = click.make_pass_decorator(App)

json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


def emit_json(value: Any) -> None:
    """Print `value` (attrs instances, lists, dicts) as one JSON document on stdout."""
    from cattrs import Converter

    doc = Converter().unstructure(value)
    click.echo(json.dumps(doc, indent=2, ensure_ascii=False, default=str))


def show(app: App, value: Any, as_json: bool, text: str | Callable[..., None], *args: Any) -> None:
    """Print a command's result: one JSON document with `--json`, else the renderer `text`
    (a function of `engine.cli.render` by name, or a callable) as `text(out, value, *args)`."""
    if as_json:
        emit_json(value)
        return
    if isinstance(text, str):
        from schemalog.engine.cli import render

        text = getattr(render, text)
    text(app.out, value, *args)
