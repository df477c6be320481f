"""A snapshot: both journal stores as read at one moment, and how they compare."""

from __future__ import annotations

import attrs

from schemalog.journal.consistency import Consistency
from schemalog.journal.events import Event
from schemalog.journal.store import ReadResult

__all__ = ["Snapshot"]


@attrs.frozen
class Snapshot:
    """Both stores as read at one moment, and how they compare.

    `base` is None when both were read from their first event; otherwise it is the checkpoint
    both hold at the same seq, and the events of each store start with it (`Journal.recent`).
    """

    table: ReadResult
    jsonl: ReadResult
    consistency: Consistency
    base: Event | None = None
    #: The journal key the chains were checked under (None: plain chains).
    key: bytes | None = attrs.field(default=None, repr=False, eq=False)

    @property
    def longest(self) -> tuple[Event, ...]:
        """The events of the store that holds more (the two share a prefix unless tampered)."""
        t, j = self.table.events, self.jsonl.events
        return t if len(t) >= len(j) else j

    @property
    def table_count(self) -> int:
        """How many events the table holds (those before `base` included)."""
        return self._skipped + len(self.table.events)

    @property
    def jsonl_count(self) -> int:
        """How many events the JSONL holds (those before `base` included)."""
        return self._skipped + len(self.jsonl.events)

    @property
    def _skipped(self) -> int:
        return self.base.seq - 1 if self.base is not None else 0
