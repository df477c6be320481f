"""The one terminal check: whether a stream is an open terminal (colour, tables, progress)."""

from __future__ import annotations

from typing import Any

__all__ = ["is_tty"]


def is_tty(stream: Any) -> bool:
    """Whether `stream` is an open terminal; False for anything without a working `isatty`."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
