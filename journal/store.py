"""What both journal stores promise (one protocol, one shared contract test)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import attrs

from schemalog.journal.events import Event

__all__ = ["DamagedRange", "EventStore", "ReadResult", "TornTail"]


@attrs.frozen
class TornTail:
    """Bytes after the last complete line of the JSONL: an append cut short by a crash."""

    offset: int
    data: bytes


@attrs.frozen
class DamagedRange:
    """Complete JSONL lines that hold no event (not UTF-8, not JSON, or not a JSON object):
    what power loss leaves when pages of the file are lost, zeroed or garbled.

    `offset`/`end` are byte offsets (`end` just after the last line's newline), `first_line`
    and `last_line` 1-based line numbers; `prev_seq` is the seq of the last event read before
    the range (0: none) and `next_seq` that of the first event after it (None: none, the range
    is at the end of the file).
    """

    offset: int
    end: int
    first_line: int
    last_line: int
    reason: str
    data: bytes = attrs.field(repr=False)
    prev_seq: int = 0
    next_seq: int | None = None

    @property
    def lines(self) -> str:
        """`N` or `N-M`, for messages."""
        if self.first_line == self.last_line:
            return str(self.first_line)
        return f"{self.first_line}-{self.last_line}"


@attrs.frozen
class ReadResult:
    """The events a store holds, in seq order, a torn tail if the store has one, and the
    ranges of damaged lines between or after them (JSONL only)."""

    events: tuple[Event, ...]
    torn: TornTail | None = None
    exists: bool = True
    damaged: tuple[DamagedRange, ...] = ()


class EventStore(Protocol):
    """An append-only sequence of events."""

    def read(self) -> ReadResult:
        """Every event, in order; raises JournalCorrupt for an edited entry. Read-only."""
        ...

    def append(self, events: Sequence[Event]) -> None:
        """Append `events` (already sealed, contiguous after the last one)."""
        ...
