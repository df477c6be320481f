"""What every command runs with: its settings, how to connect, and who is watching.

The CLI and the library build one `Context` and pass it to the command functions; nothing
below the commands reads the environment, the working directory or a config file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import attrs

from schemalog.engine.base.connection import Functions
from schemalog.engine.base.functions import resolve_functions
from schemalog.engine.base.settings import Settings
from schemalog.journal.recent import TailMemo

__all__ = ["Connect", "Context", "Observer"]

#: A factory returning a new sqlite3 connection to the database (e.g. the application's pool).
Connect = Callable[[], sqlite3.Connection]


class Observer:
    """What a command tells its caller while it runs; every method does nothing by default.

    The CLI subclasses it to draw lock waits and progress bars; the library's default
    ignores them (its logs go to the `schemalog` logger).
    """

    def lock_wait(self, holder: str | None, waited: float) -> None:
        """Another run holds the migration lock (`holder` names it); called while waiting."""

    def progress(self, done: int, total: int) -> None:
        """A backup or restore copied `done` of `total` pages."""

    def step_done(self, version: int, name: str, direction: str, outcome: str) -> None:
        """A migration step ended with `outcome` (applied, reverted or failed)."""


def _functions(context: Context) -> Functions | None:
    return resolve_functions(context.settings.functions)


@attrs.frozen
class Context:
    """The settings of one command, the connection factory and the observer.

    `functions` is the `functions` setting resolved to its callable when the context is made
    (ConfigError, exit 2, when it cannot be); every connection schemalog opens gets it.
    `memo` keeps the last healthy journal snapshot between the commands of one context (the
    library's `Migrator` reuses its context; see `journal.recent.TailMemo`).
    """

    settings: Settings
    connect: Connect | None = None
    observer: Observer = attrs.field(factory=Observer)
    functions: Functions | None = attrs.field(
        default=attrs.Factory(_functions, takes_self=True), kw_only=True
    )
    memo: TailMemo = attrs.field(factory=TailMemo, eq=False, repr=False)
