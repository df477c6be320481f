"""The journal: one append API over the two stores, keeping them identical.

Rule (DESIGN.md): events appended while the database connection has a
transaction open are inserted into the table inside that transaction and
written to the JSONL only after COMMIT (`commit()`), so neither journal can
claim a change that did not happen. Events appended outside a transaction go
to the JSONL first, then to the table (committed at once).

The journal owns the transaction verbs (`begin`, `commit`, `rollback`,
savepoints) so that this rule cannot be bypassed by the engine.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import attrs

from schemalog.journal import failpoints
from schemalog.journal.chain import GENESIS, seal
from schemalog.journal.consistency import Consistency, compare
from schemalog.journal.events import Draft, Event
from schemalog.journal.jsonl import JsonlStore
from schemalog.journal.store import ReadResult
from schemalog.journal.table import TableStore

__all__ = ["Journal", "Snapshot"]


@attrs.frozen
class Snapshot:
    """Both stores as read at one moment, and how they compare."""

    table: ReadResult
    jsonl: ReadResult
    consistency: Consistency

    @property
    def longest(self) -> tuple[Event, ...]:
        """The events of the store that holds more (the two share a prefix unless tampered)."""
        t, j = self.table.events, self.jsonl.events
        return t if len(t) >= len(j) else j


class Journal:
    """Appends events to `schemalog_journal` (through `conn`) and to the JSONL file."""

    def __init__(self, conn: sqlite3.Connection, jsonl: JsonlStore) -> None:
        if conn.isolation_level is not None:
            msg = "the journal needs a connection in autocommit mode (isolation_level=None)"
            raise ValueError(msg)
        self.conn = conn
        self.table = TableStore(conn)
        self.jsonl = jsonl
        self.head_seq = 0
        self.head_hash = GENESIS
        self._pending: list[Event] = []
        self._savepoints: list[tuple[str, int, int, str]] = []
        self._tx_head: tuple[int, str] | None = None
        #: True while the table cannot be trusted or written (a damaged database about to be
        #: restored): events go to the JSONL only, and are mirrored into the table afterwards.
        self.table_offline = False

    # -- reading -------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """Read both stores and compare them. Read-only."""
        table = self.table.read()
        jsonl = self.jsonl.read()
        return Snapshot(table=table, jsonl=jsonl, consistency=compare(table.events, jsonl.events))

    def set_head(self, events: Sequence[Event]) -> None:
        """Continue the chain after the last of `events` (both stores must hold them)."""
        if events:
            self.head_seq, self.head_hash = events[-1].seq, events[-1].hash
        else:
            self.head_seq, self.head_hash = 0, GENESIS

    # -- appending -----------------------------------------------------------

    def append(self, draft: Draft) -> Event:
        """Seal and record one event (see the module rule); returns it."""
        return self.append_many([draft])[0]

    def append_many(self, drafts: Sequence[Draft]) -> list[Event]:
        """Seal and record several events in one write to each store."""
        events = []
        seq, prev = self.head_seq, self.head_hash
        for draft in drafts:
            seq += 1
            event = seal(draft, seq=seq, prev=prev)
            events.append(event)
            prev = event.hash
        if self.table_offline:
            self.jsonl.append(events)
            self.head_seq, self.head_hash = seq, prev
        elif self.conn.in_transaction:
            self.table.append(events)
            self._pending.extend(events)
            self.head_seq, self.head_hash = seq, prev
        else:
            self.table.ensure()
            self.jsonl.append(events)
            # The JSONL holds them now: the chain continues after them even if the table
            # insert fails (recovery mirrors them into the table later).
            self.head_seq, self.head_hash = seq, prev
            self.table.append(events)
        return events

    def mirror_to_jsonl(self, events: Sequence[Event]) -> None:
        """Write events the table already holds to the JSONL (recovery)."""
        self.jsonl.append(events)

    def mirror_to_table(self, events: Sequence[Event]) -> None:
        """Insert events the JSONL already holds into the table (recovery)."""
        self.table.ensure()
        self.table.append(events)

    # -- transactions --------------------------------------------------------

    def begin(self) -> None:
        """`BEGIN IMMEDIATE`: take the write lock; appends now join this transaction."""
        self.table.ensure()
        self.conn.execute("BEGIN IMMEDIATE")
        self._tx_head = (self.head_seq, self.head_hash)

    def commit(self) -> None:
        """COMMIT, then write the transaction's events to the JSONL."""
        self.conn.execute("COMMIT")
        failpoints.hit("after_commit")  # committed; the JSONL does not have the events yet
        pending, self._pending = self._pending, []
        self._savepoints.clear()
        self._tx_head = None
        self.jsonl.append(pending)

    def rollback(self) -> None:
        """ROLLBACK; the transaction's events are gone from the table and never reach the JSONL."""
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
        self._pending.clear()
        self._savepoints.clear()
        if self._tx_head is not None:
            self.head_seq, self.head_hash = self._tx_head
        self._tx_head = None

    def savepoint(self, name: str) -> None:
        """`SAVEPOINT name` inside the open transaction (raises ValueError outside one)."""
        if not self.conn.in_transaction:
            msg = "savepoint() needs an open transaction (call begin() first)"
            raise ValueError(msg)
        self.conn.execute(f'SAVEPOINT "{name}"')
        self._savepoints.append((name, len(self._pending), self.head_seq, self.head_hash))

    def rollback_to(self, name: str) -> None:
        """Undo everything since `SAVEPOINT name`, its events included, and release it."""
        self.conn.execute(f'ROLLBACK TO "{name}"')
        self.conn.execute(f'RELEASE "{name}"')
        while self._savepoints:
            sp_name, pending_len, seq, prev = self._savepoints.pop()
            if sp_name == name:
                del self._pending[pending_len:]
                self.head_seq, self.head_hash = seq, prev
                return

    def release(self, name: str) -> None:
        """`RELEASE name`: keep the savepoint's work as part of the outer transaction."""
        self.conn.execute(f'RELEASE "{name}"')
        while self._savepoints:
            if self._savepoints.pop()[0] == name:
                return

    def adopt_commit(self) -> None:
        """Mirror pending events to the JSONL after a COMMIT issued behind the journal's back."""
        if not self.conn.in_transaction and self._pending:
            pending, self._pending = self._pending, []
            self._savepoints.clear()
            self._tx_head = None
            self.jsonl.append(pending)

    @property
    def pending(self) -> tuple[Event, ...]:
        """Events of the open transaction not yet in the JSONL."""
        return tuple(self._pending)

    def sync(self) -> None:
        """Force the JSONL to stable storage (end of command, before a restore)."""
        self.jsonl.sync()

    def close(self) -> None:
        """Sync and close the JSONL file."""
        self.jsonl.close()
