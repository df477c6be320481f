"""schemalog: schema migrations for SQLite, recorded as an event-sourced, hash-chained journal.

    from schemalog import Migrator
    Migrator(database="app.db", migrations="migrations").upgrade()

Errors live in `schemalog.errors`, helpers for your own tests in `schemalog.testing`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from schemalog.engine.base.context import Observer
    from schemalog.engine.migrator import Migrator

__all__ = ["Migrator", "Observer", "__version__"]

__version__ = "0.2.0"


def __getattr__(name: str) -> Any:
    # The CLI imports this package first (it is the parent of every module): importing the
    # whole library here would cost every command its start-up time.
    if name == "Migrator":
        from schemalog.engine.migrator import Migrator

        return Migrator
    if name == "Observer":
        from schemalog.engine.base.context import Observer

        return Observer
    msg = f"module 'schemalog' has no attribute {name!r}"
    raise AttributeError(msg)
