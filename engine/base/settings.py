"""Settings: the value one command is configured with, and the allowed values of each choice.

Constructing `Settings` validates every value (ValueError naming the setting). Where the
values come from (flags, environment, config file, defaults) is `engine.base.config`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, get_args

import attrs

from schemalog.engine.base.connection import IntegrityLevel
from schemalog.engine.base.errors import ConfigError, UsageError
from schemalog.engine.base.functions import FunctionsSpec, check_functions, to_functions
from schemalog.engine.base.paths import DatabasePaths
from schemalog.journal.jsonl import Durability

__all__ = [
    "COMPRESSIONS",
    "CONFIG_FILE_NAME",
    "COUNT_FORM",
    "DURABILITIES",
    "ENV_PREFIX",
    "INTEGRITIES",
    "LOG_FORMATS",
    "SECONDS_FORM",
    "SETTING_NAMES",
    "SIZE_FORM",
    "TRANSACTIONS",
    "Settings",
    "check_choice",
    "check_count",
    "check_literal",
    "check_seconds",
    "check_size",
]

ENV_PREFIX = "SCHEMALOG_"
CONFIG_FILE_NAME = "schemalog.toml"

# --- value checks, shared by the attrs validators and the cattrs hooks ---------------------

SECONDS_FORM = "expected a number of seconds >= 0"
COUNT_FORM = "expected a whole number >= 1, or 'none' for no limit"
SIZE_FORM = "expected a size >= 1 byte such as 500MB or 2GiB, or 'none' for no limit"


def check_seconds(value: float) -> float:
    """Return `value` if it is a finite number >= 0; raise ValueError otherwise."""
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(SECONDS_FORM)
    return value


def check_count(value: int | None) -> int | None:
    """Return `value` if it is None or >= 1; raise ValueError otherwise."""
    if value is not None and value < 1:
        raise ValueError(COUNT_FORM)
    return value


def check_size(value: int | None) -> int | None:
    """Return `value` if it is None or >= 1; raise ValueError otherwise."""
    if value is not None and value < 1:
        raise ValueError(SIZE_FORM)
    return value


def check_literal(value: object, literal: Any) -> object:
    """Return `value` if it is a member of the Literal type `literal`; raise ValueError."""
    allowed = get_args(literal)
    if not isinstance(value, str) or value not in allowed:
        msg = "expected one of " + ", ".join(repr(a) for a in allowed)
        raise ValueError(msg)
    return value


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    """Raise UsageError unless `value` is one of `choices` (for library callers' arguments)."""
    if value not in choices:
        msg = f"unknown {name} {value!r} (choose one of: {', '.join(choices)})"
        raise UsageError(msg)


def _validator(check: Callable[[Any], Any]) -> Callable[[Any, attrs.Attribute, Any], None]:
    """An attrs validator running `check`, naming the attribute in its ValueError."""

    def validate(_instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        try:
            check(value)
        except ValueError as exc:
            msg = f"{attribute.name}={value!r}: {exc}"
            raise ValueError(msg) from None

    return validate


def _one_of(literal: Any) -> Callable[[Any, attrs.Attribute, Any], None]:
    """An attrs validator accepting only the members of the Literal type `literal`."""
    return _validator(lambda value: check_literal(value, literal))


# The allowed values of each choice setting: one Literal type each, and its tuple of values
# (for messages and click's choices) derived from it.
Integrity = IntegrityLevel
Compression = Literal["none", "gzip"]
Transaction = Literal["run", "step"]
LogFormat = Literal["auto", "human", "json"]
DURABILITIES: tuple[str, ...] = get_args(Durability)
INTEGRITIES: tuple[str, ...] = get_args(Integrity)
COMPRESSIONS: tuple[str, ...] = get_args(Compression)
TRANSACTIONS: tuple[str, ...] = get_args(Transaction)
LOG_FORMATS: tuple[str, ...] = get_args(LogFormat)


@attrs.frozen
class Settings:
    """The configuration of one command, after flags, environment, file and defaults.

    Paths from `load_settings` are anchored: relative ones are resolved against the
    config file's directory (file values) or the working directory (everything else).
    Constructing it directly validates every value (ValueError on a bad one).
    """

    database: Path | None = None
    migrations: Path = Path("migrations")
    backup_dir: Path | None = None
    lock_timeout: float = attrs.field(default=30.0, validator=_validator(check_seconds))
    durability: Durability = attrs.field(default="normal", validator=_one_of(Durability))
    integrity: Integrity = attrs.field(default="quick", validator=_one_of(Integrity))
    retention_count: int | None = attrs.field(default=10, validator=_validator(check_count))
    retention_bytes: int | None = attrs.field(default=None, validator=_validator(check_size))
    compression: Compression = attrs.field(default="none", validator=_one_of(Compression))
    transaction: Transaction = attrs.field(default="run", validator=_one_of(Transaction))
    #: A process that waited for the lock behind a run that then failed tries the same
    #: migration again instead of reporting that failure.
    retry: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    log_format: LogFormat = attrs.field(default="auto", validator=_one_of(LogFormat))
    #: `module:callable` (or, from Python, the callable itself) that registers the
    #: application's SQL functions on every connection (`engine.base.functions`).
    functions: FunctionsSpec | Callable[..., Any] | None = attrs.field(
        default=None, converter=to_functions, validator=_validator(check_functions)
    )
    #: A file holding the secret key of the journal's keyed chain (HMAC-SHA-256); None: the
    #: chain is plain SHA-256 (`schemalog help events`, what each mode detects).
    journal_key_file: Path | None = None

    @property
    def paths(self) -> DatabasePaths:
        """The files of the configured database.

        Raises ConfigError when no database is set.
        """
        if self.database is None:
            msg = "no database is set"
            raise ConfigError(
                msg,
                hint=f"pass --database PATH, set {ENV_PREFIX}DATABASE, "
                f'or add database = "app.db" to {CONFIG_FILE_NAME}',
            )
        return DatabasePaths.for_database(self.database, self.backup_dir)


attrs.resolve_types(Settings)

SETTING_NAMES: tuple[str, ...] = tuple(f.name for f in attrs.fields(Settings))
