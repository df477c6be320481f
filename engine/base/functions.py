"""The `functions` setting: the application's SQL functions and collations, on every connection.

`functions = "myapp.db:register_sql"` names a callable that schemalog calls with every sqlite3
connection it opens to the database or to a scratch copy of it (`check`, `lint`), so that
migrations, verify queries, triggers and views can use what the application registers
(`conn.create_function`, `create_collation`, `create_aggregate`). The setting is resolved once
per command, when its `Context` is made: a module that cannot be imported, a missing name or
a value that is not callable is a ConfigError (exit 2) naming where the setting came from.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any

import attrs

from schemalog.engine.base.connection import Functions
from schemalog.engine.base.errors import ConfigError

__all__ = [
    "FUNCTIONS_FORM",
    "FunctionsSpec",
    "check_functions",
    "resolve_functions",
    "to_functions",
]

FUNCTIONS_FORM = "expected module:callable, e.g. myapp.db:register_sql"
_TARGET = re.compile(r"[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")


@attrs.frozen(repr=False)
class FunctionsSpec:
    """A `module:callable` target and where the setting came from (for messages)."""

    target: str
    source: str = "the functions setting"

    def __str__(self) -> str:
        return self.target

    def __repr__(self) -> str:
        return repr(self.target)


def check_functions(value: object) -> object:
    """Return `value` if it is None, a callable or a well-formed spec; raise ValueError."""
    if value is None or callable(value):
        return value
    if isinstance(value, FunctionsSpec) and _TARGET.fullmatch(value.target.strip()):
        return value
    raise ValueError(FUNCTIONS_FORM)


def to_functions(value: Any) -> Any:
    """The setting's value: a string becomes a FunctionsSpec; anything else is kept."""
    if isinstance(value, str):
        return FunctionsSpec(value.strip()) if value.strip() else None
    return value


def resolve_functions(value: FunctionsSpec | Callable[..., Any] | None) -> Functions | None:
    """The callable the setting names (imported now), or None when it is not set.

    Raises ConfigError naming the setting's source when the module cannot be imported (or
    raises while importing), the name is missing, or the object is not callable.
    """
    if value is None or not isinstance(value, FunctionsSpec):
        return value
    module_name, _, attr_path = value.target.partition(":")
    where = f"{value.target!r} (from {value.source})"
    hint = (
        "check the module:callable it names; the module must be importable "
        "(installed, on PYTHONPATH, or in the current directory)"
    )
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:
        msg = f"cannot import the functions setting {where}: {type(exc).__name__}: {exc}"
        raise ConfigError(msg, hint=hint) from exc
    for part in attr_path.split("."):
        try:
            target = getattr(target, part)
        except AttributeError as exc:
            msg = f"the functions setting {where}: {module_name} has no {attr_path}"
            raise ConfigError(msg, hint=hint) from exc
    if not callable(target):
        msg = f"the functions setting {where} names a {type(target).__name__}, not a callable"
        raise ConfigError(msg, hint="name a function taking the sqlite3 connection")
    return target
