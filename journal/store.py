"""What both journal stores promise (one protocol, one shared contract test)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import attrs

from schemalog.journal.events import Event

__all__ = ["EventStore", "ReadResult", "TornTail"]


@attrs.frozen
class TornTail:
    """Bytes after the last complete line of the JSONL: an append cut short by a crash."""

    offset: int
    data: bytes


@attrs.frozen
class ReadResult:
    """The events a store holds, in seq order, and a torn tail if the store has one."""

    events: tuple[Event, ...]
    torn: TornTail | None = None
    exists: bool = True


class EventStore(Protocol):
    """An append-only sequence of events."""

    def read(self) -> ReadResult:
        """Every event, in order; raises JournalCorrupt for an undecodable entry. Read-only."""
        ...

    def append(self, events: Sequence[Event]) -> None:
        """Append `events` (already sealed, contiguous after the last one)."""
        ...
