"""Log output: one structlog configuration for every command.

Logs go to stderr (stdout belongs to `--json` documents), one line per event, with a UTC
ISO-8601 `timestamp`, a `level` and whatever a caller bound (`run_id`, `version`, ...).
`json` writes one JSON object per line; `human` and `auto` write plain `key=value` lines,
coloured only when the stream is a terminal and `NO_COLOR` is unset.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING, Any, TextIO

from schemalog.engine.base.errors import ConfigError
from schemalog.engine.base.settings import LOG_FORMATS
from schemalog.engine.base.terminal import is_tty

if TYPE_CHECKING:
    from structlog.typing import FilteringBoundLogger

__all__ = ["configure_logging", "get_logger", "silence_logging"]

# structlog (and, through structlog.dev, rich) costs tens of milliseconds to import;
# a command whose logs are silenced never pays for it.
_silenced = False


class _NullLogger:
    """A logger that drops everything (used while logging is silenced)."""

    def bind(self, **_kw: Any) -> _NullLogger:
        return self

    def _drop(self, *_a: Any, **_kw: Any) -> None:
        return None

    debug = info = warning = error = critical = exception = msg = _drop


def silence_logging() -> None:
    """Drop every log event until `configure_logging` is called again (no structlog import)."""
    global _silenced
    _silenced = True


def configure_logging(
    *,
    fmt: str = "auto",
    verbose: bool = False,
    quiet: bool = False,
    stream: TextIO | None = None,
) -> None:
    """Send log events to `stream` (default: the current `sys.stderr`) in format `fmt`.

    `quiet` shows warnings and worse, `verbose` adds debug events, the default shows info.
    Replaces any earlier configuration, so calling it again is safe; loggers obtained
    earlier from `get_logger` follow the new configuration.

    Raises ConfigError for an unknown `fmt` or for `verbose` and `quiet` together.
    """
    if fmt not in LOG_FORMATS:
        msg = f"unknown log format {fmt!r}"
        raise ConfigError(msg, hint="use one of " + ", ".join(LOG_FORMATS))
    if verbose and quiet:
        msg = "--verbose and --quiet were both given"
        raise ConfigError(msg, hint="pass only one of them")
    import structlog

    global _silenced
    _silenced = False
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
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            *renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        context_class=dict,
        logger_factory=structlog.PrintLoggerFactory(file=out),
        # Not cached, so a later configure_logging() reaches loggers already handed out.
        cache_logger_on_first_use=False,
    )


def get_logger(**bound: Any) -> FilteringBoundLogger:
    """A structlog logger with `bound` key/values (e.g. `run_id`, `version`) on every event.

    Bind more with `.bind(run_id=..., version=...)`. If logging was never configured, it is
    first configured with the defaults of `configure_logging` (info level, stderr).
    """
    if _silenced:
        return _NullLogger()  # type: ignore[return-value]
    import structlog

    if not structlog.is_configured():
        configure_logging()
    return structlog.get_logger(**bound)
