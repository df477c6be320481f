"""The one clock: UTC instants and their two spellings (ISO-8601 text and file-name stamps)."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["ISO_FORMAT", "STAMP_FORMAT", "iso", "now", "parse_iso", "stamp", "utc_now"]

#: `2024-05-01T10:00:00.123456Z`: event times, backup times, lock records.
ISO_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
#: `20240501T100000.123456`: the same instant inside file names (no `:`), `Z` added by callers.
STAMP_FORMAT = "%Y%m%dT%H%M%S.%f"


def utc_now() -> datetime:
    """The current instant, timezone-aware, in UTC."""
    return datetime.now(UTC)


def iso(instant: datetime) -> str:
    """`instant` as ISO-8601 UTC text with microseconds and a `Z`. Pure."""
    return instant.astimezone(UTC).strftime(ISO_FORMAT)


def now() -> str:
    """The current UTC time as ISO-8601 text with microseconds and a `Z`."""
    return iso(utc_now())


def stamp(instant: datetime) -> str:
    """`instant` (UTC) in the form used inside file names, `20240501T100000.123456`. Pure."""
    return instant.astimezone(UTC).strftime(STAMP_FORMAT)


def parse_iso(text: str) -> datetime:
    """The instant an ISO-8601 text names (naive means UTC); raises ValueError otherwise. Pure."""
    instant = datetime.fromisoformat(text)
    return instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant
