"""Logs: the library logs through the standard `logging` module; the CLI renders them.

Every module logs through `get_logger(channel, **bound)`: records go to the stdlib logger
`schemalog.<channel>` (e.g. `schemalog.run`), so an application's logging configuration
decides what appears and where. The library itself adds only a `NullHandler` to `schemalog`:
an application that configures nothing sees nothing, and one set to WARNING sees no info line.
A record's message reads `step applied version=3 name=add_email run_id=...`; the record also
carries `schemalog_event` (the event's name) and `schemalog_fields` (a dict of the key/values).

The CLI (and fleet workers) take the `schemalog` logger over: `configure_logging` renders its
records with structlog on stderr (stdout belongs to `--json` documents), one line per event
with a UTC ISO-8601 `timestamp`, a `level` and the fields; `json` writes one JSON object per
line, `human` and `auto` plain `key=value` lines, coloured only on a terminal without
`NO_COLOR`. `silence_logging` drops every record without importing structlog (it costs tens
of milliseconds); `reset_logging` gives the logger back to the application's configuration.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, TextIO

from schemalog.engine.base.errors import ConfigError
from schemalog.engine.base.settings import LOG_FORMATS
from schemalog.engine.base.terminal import is_tty

__all__ = [
    "LOGGER_NAME",
    "Logger",
    "configure_logging",
    "get_logger",
    "reset_logging",
    "silence_logging",
]

#: The root of schemalog's loggers (children: `schemalog.run`, ...).
LOGGER_NAME = "schemalog"
_OFF = logging.CRITICAL + 10
_TAG = "_schemalog_cli"  # marks the handler the CLI installed (so it can be replaced)

logging.getLogger(LOGGER_NAME).addHandler(logging.NullHandler())


class _Message:
    """A record's message: the event and its fields, formatted only when a handler asks."""

    __slots__ = ("event", "fields")

    def __init__(self, event: str, fields: dict[str, Any]) -> None:
        self.event = event
        self.fields = fields

    def __str__(self) -> str:
        parts = [self.event]
        for key, value in self.fields.items():
            text = str(value)
            parts.append(f"{key}={value!r}" if not text or " " in text else f"{key}={text}")
        return " ".join(parts)


class Logger:
    """Events with key/values (`log.info("step applied", version=3)`) onto one stdlib logger.

    `bind(**fields)` returns a logger that adds `fields` to every event. Nothing is built
    when the stdlib logger would drop the level.
    """

    __slots__ = ("_bound", "_logger")

    def __init__(self, logger: logging.Logger, bound: dict[str, Any]) -> None:
        self._logger = logger
        self._bound = bound

    @property
    def name(self) -> str:
        """The stdlib logger's name (`schemalog.run`, ...)."""
        return self._logger.name

    def bind(self, **fields: Any) -> Logger:
        """This logger with `fields` added to every event."""
        return Logger(self._logger, {**self._bound, **fields})

    def _log(self, level: int, event: str, fields: dict[str, Any], exc_info: bool = False) -> None:
        if not self._logger.isEnabledFor(level):
            return
        # the event's own fields first, then the bound ones (the call's value wins)
        merged = {**fields, **{k: v for k, v in self._bound.items() if k not in fields}}
        self._logger.log(
            level,
            _Message(event, merged),
            exc_info=exc_info,
            stacklevel=3,  # the record names the caller of info/error/...
            extra={"schemalog_event": event, "schemalog_fields": merged},
        )

    def debug(self, event: str, **fields: Any) -> None:
        self._log(logging.DEBUG, event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._log(logging.INFO, event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._log(logging.WARNING, event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._log(logging.ERROR, event, fields)

    def critical(self, event: str, **fields: Any) -> None:
        self._log(logging.CRITICAL, event, fields)

    def exception(self, event: str, **fields: Any) -> None:
        """An error event with the exception being handled."""
        self._log(logging.ERROR, event, fields, exc_info=True)


def get_logger(channel: str = "", /, **bound: Any) -> Logger:
    """A logger onto `schemalog.<channel>` (`schemalog` without one), with `bound` on every
    event (e.g. `run_id`, `command`). What appears is the application's (or the CLI's) choice.
    """
    name = f"{LOGGER_NAME}.{channel}" if channel else LOGGER_NAME
    return Logger(logging.getLogger(name), dict(bound))


def _take_over(handler: logging.Handler, level: int) -> None:
    """Make `handler` the CLI's only handler of `schemalog`, at `level`, not propagating."""
    logger = logging.getLogger(LOGGER_NAME)
    for old in list(logger.handlers):
        if getattr(old, _TAG, False):
            logger.removeHandler(old)
    setattr(handler, _TAG, True)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


def silence_logging() -> None:
    """Drop every schemalog record until `configure_logging` (no structlog import)."""
    _take_over(logging.NullHandler(), _OFF)


def reset_logging() -> None:
    """Undo `configure_logging`/`silence_logging`: records go to the application's handlers."""
    logger = logging.getLogger(LOGGER_NAME)
    for old in list(logger.handlers):
        if getattr(old, _TAG, False):
            logger.removeHandler(old)
    logger.setLevel(logging.NOTSET)
    logger.propagate = True


def _fields_of_record(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: a schemalog record's event name and fields as the event dict."""
    record = event_dict.get("_record")
    event = getattr(record, "schemalog_event", None)
    if event is None:
        return event_dict
    return {**event_dict, **getattr(record, "schemalog_fields", {}), "event": event}


def configure_logging(
    *,
    fmt: str = "auto",
    verbose: bool = False,
    quiet: bool = False,
    stream: TextIO | None = None,
) -> None:
    """Render schemalog's records to `stream` (default: the current `sys.stderr`) in `fmt`.

    For the CLI and fleet workers, which own their process's output. `quiet` shows warnings
    and worse, `verbose` adds debug events, the default shows info. Replaces any earlier
    configuration; loggers obtained earlier from `get_logger` follow it.

    Raises ConfigError for an unknown `fmt` or for `verbose` and `quiet` together.
    """
    if fmt not in LOG_FORMATS:
        msg = f"unknown log format {fmt!r}"
        raise ConfigError(msg, hint="use one of " + ", ".join(LOG_FORMATS))
    if verbose and quiet:
        msg = "--verbose and --quiet were both given"
        raise ConfigError(msg, hint="pass only one of them")
    import structlog

    out = sys.stderr if stream is None else stream
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO

    renderer: list[Any]
    if fmt == "json":
        renderer = [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        colors = is_tty(out) and "NO_COLOR" not in os.environ
        renderer = [
            structlog.dev.ConsoleRenderer(
                colors=colors, exception_formatter=structlog.dev.plain_traceback
            )
        ]
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                _fields_of_record,
                structlog.contextvars.merge_contextvars,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.processors.StackInfoRenderer(),
            ],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
        )
    )
    _take_over(handler, level)
