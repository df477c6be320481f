"""Human output of the CLI: rich tables and colour on a terminal, plain text when piped.

Only the CLI uses this module, and only for human output: `--json` never imports it, and
rich itself is imported only when stdout is a terminal. `NO_COLOR` turns colour off
(rich honours it). The renderers of each result are in `engine.cli.render`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import Any

import click

from schemalog.engine.base.terminal import is_tty

__all__ = ["STYLES", "Out", "holder_text", "size_text", "ts"]

STYLES = {
    "applied": "green",
    "reverted": "cyan",
    "ok": "green",
    "succeeded": "green",
    "failed": "bold red",
    "interrupted": "yellow",
    "running": "yellow",
    "skipped": "yellow",
}


_QUIET = ("", "ok", "applied", "reverted", "succeeded")


def size_text(size: int | None) -> str:
    """`size` bytes as a short human-readable figure (1.5 MiB)."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


def ts(value: str | None) -> str:
    """An ISO-8601 UTC timestamp shortened for tables: `2024-05-01 10:00:00` (JSON keeps all)."""
    if not value:
        return "-"
    return value[:19].replace("T", " ") if len(value) >= 19 and value[10] == "T" else value


def holder_text(holder: dict[str, Any] | None) -> str:
    """A lock holder record as one phrase."""
    if not holder:
        return "an unknown process"
    return (
        f"pid {holder.get('pid')} on {holder.get('host')} "
        f"(run {holder.get('run_id')}, {holder.get('command')}, since {holder.get('acquired_at')})"
    )


class Out:
    """Writes human output to stdout; rich on a terminal, aligned plain text otherwise."""

    def __init__(self, *, rich: bool | None = None) -> None:
        self.rich = is_tty(sys.stdout) if rich is None else rich
        self._console: Any = None

    @property
    def console(self) -> Any:
        """The rich console (imported on first use)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(file=sys.stdout, highlight=False, soft_wrap=False)
        return self._console

    # -- primitives ---------------------------------------------------------------

    def line(self, text: str = "", style: str | None = None) -> None:
        """One line of text, styled on a terminal."""
        if self.rich:
            self.console.print(text, style=style, markup=False, highlight=False, soft_wrap=True)
        else:
            click.echo(text)

    def fields(self, pairs: Sequence[tuple[str, str, str | None] | tuple[str, str]]) -> None:
        """A block of `key  value` lines (an optional third item is the value's style)."""
        width = max((len(p[0]) for p in pairs), default=0)
        if self.rich:
            from rich.table import Table
            from rich.text import Text

            grid = Table.grid(padding=(0, 2))
            grid.add_column(style="bold")
            grid.add_column()
            for pair in pairs:
                style = pair[2] if len(pair) > 2 else None
                grid.add_row(pair[0], Text(pair[1], style=style or ""))
            self.console.print(grid)
        else:
            for pair in pairs:
                click.echo(f"{pair[0]:<{width}}  {pair[1]}".rstrip())

    def table(
        self,
        headers: Sequence[str],
        rows: Iterable[Sequence[Any]],
        *,
        title: str | None = None,
        style_column: int | None = None,
    ) -> None:
        """A table; in plain text, columns separated by two spaces and a header line."""
        cells = [["" if c is None else str(c) for c in row] for row in rows]
        widths = [len(h) for h in headers]
        for row in cells:
            for i, c in enumerate(row):
                widths[i] = max(widths[i], len(c))
        natural = sum(widths) + 3 * len(widths)  # rich pads each column
        if self.rich and natural <= self.console.width:
            self._rich_table(headers, cells, title, style_column)
            return
        # Piped, or too wide for the terminal: one line per row (a terminal wraps long
        # lines, but a row is never cut into columns of fragments).
        if title:
            self.line(title, "italic")

        def fmt_row(row: Sequence[str]) -> str:
            last = len(row) - 1
            return "  ".join(c if i == last else f"{c:<{widths[i]}}" for i, c in enumerate(row))

        self.line(fmt_row(list(headers)).rstrip(), "bold")
        for row in cells:
            outcome = row[style_column] if style_column is not None else ""
            # Whole rows are coloured only to flag trouble; success stays plain.
            self.line(fmt_row(row).rstrip(), None if outcome in _QUIET else STYLES.get(outcome))

    def _rich_table(
        self,
        headers: Sequence[str],
        cells: list[list[str]],
        title: str | None,
        style_column: int | None,
    ) -> None:
        from rich import box
        from rich.table import Table
        from rich.text import Text

        table = Table(
            title=title,
            title_justify="left",
            header_style="bold",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
        )
        for h in headers:
            table.add_column(h, no_wrap=True)
        for row in cells:
            table.add_row(
                *(
                    Text(c, style=STYLES.get(c, "") if i == style_column else "")
                    for i, c in enumerate(row)
                )
            )
        self.console.print(table)
