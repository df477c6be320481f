"""The journal: one append API over the two stores, keeping them identical, whatever fails.

Rule (`schemalog help events`): events appended while the database connection has a
transaction open are inserted into the table inside that transaction and written to the JSONL only after COMMIT,
so neither journal can claim a change that did not happen. Events appended outside a
transaction go to the JSONL first, then to the table (committed at once). A *lasting* event
(`append_lasting`, e.g. the run's backup taken under the write lock) is appended inside a
transaction but written to the JSONL at once: it describes a file, not a change to the
database, so it must survive a rollback.

Faults never leave a gap in either store. Events a store could not take (the JSONL after a
COMMIT on a full disk, the table after a JSONL append) are kept and written before anything
else the next time that store is appended to; what cannot be settled in this process is what
the next command's recovery mirrors. When the outcome of a COMMIT cannot be known (an I/O
error while reading it back), the journal refuses every further append: the table is the
truth, and the next command reads it.

The journal provides the transaction verbs (`begin`, `commit`, `rollback`, savepoints) so
that this rule cannot be bypassed; the executor is their one caller during a run.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Sequence

from schemalog.journal import failpoints
from schemalog.journal.chain import GENESIS, keyed_since, seal_after
from schemalog.journal.consistency import compare
from schemalog.journal.errors import JournalTableUnwritable, JournalUnavailable, JournalUnsettled
from schemalog.journal.events import Draft, Event, Kind
from schemalog.journal.jsonl import JsonlStore
from schemalog.journal.recent import TailMemo, read_from_checkpoint
from schemalog.journal.snapshot import Snapshot
from schemalog.journal.table import TableStore

__all__ = ["Journal", "Snapshot", "TailMemo"]


class Journal:
    """Appends events to `schemalog_journal` (through `conn`) and to the JSONL file."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        jsonl: JsonlStore,
        *,
        key: bytes | None = None,
        memo: TailMemo | None = None,
    ) -> None:
        if conn.isolation_level is not None:
            msg = "the journal needs a connection in autocommit mode (isolation_level=None)"
            raise ValueError(msg)
        self.conn = conn
        #: The journal key: chains are checked under it, and events sealed with it from the
        #: chain's `journal_keyed` event on (written before the first event it seals).
        self.key = key
        self._keyed_since: int | None = None
        self.table = TableStore(conn)
        self.jsonl = jsonl
        self._head: tuple[int, str] = (0, GENESIS)
        self._pending: list[Event] = []  # in the open transaction; the JSONL gets them on COMMIT
        self._lasting: list[Event] = []  # in the open transaction and already in the JSONL
        self._savepoints: list[tuple[str, int, tuple[int, str]]] = []
        self._tx_head: tuple[int, str] | None = None
        self._table_behind: list[Event] = []  # in the JSONL, not yet in the table
        self._jsonl_behind: list[Event] = []  # committed in the table, not yet in the JSONL
        self._offline = False
        self._unsettled: str | None = None
        self.memo = memo
        #: The seq of the last checkpoint seen by the last read (0: none).
        self.checkpoint_seq = 0

    # -- position ------------------------------------------------------------

    @property
    def head_seq(self) -> int:
        """The seq of the last event appended (or known) in this chain."""
        return self._head[0]

    @property
    def head_hash(self) -> str:
        """The hash of the last event appended (or known) in this chain."""
        return self._head[1]

    def continue_after(self, events: Sequence[Event]) -> None:
        """Continue the chain after the last of `events` (both stores must hold them)."""
        self._head = (events[-1].seq, events[-1].hash) if events else (0, GENESIS)
        self._keyed_since = keyed_since(events)

    def carry_over(self, old: Journal) -> None:
        """Continue where `old` (the journal of a replaced connection) stood."""
        self._head = old._head
        self._keyed_since = old._keyed_since
        self._offline = old._offline
        self._table_behind = list(old._table_behind)
        self._jsonl_behind = list(old._jsonl_behind)
        self.checkpoint_seq = old.checkpoint_seq

    @property
    def table_offline(self) -> bool:
        """Whether events go to the JSONL only (the table is about to be replaced)."""
        return self._offline

    def take_table_offline(self) -> None:
        """Write events to the JSONL only until `bring_table_online` (a damaged database)."""
        self._offline = True

    def bring_table_online(self) -> None:
        """Write events to both stores again."""
        self._offline = False

    @property
    def jsonl_behind(self) -> tuple[Event, ...]:
        """Committed events the JSONL could not take yet (written before its next append)."""
        return tuple(self._jsonl_behind)

    @property
    def table_behind(self) -> tuple[Event, ...]:
        """Events in the JSONL the table could not take yet (written before its next append)."""
        return tuple(self._table_behind)

    # -- reading -------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """Read both stores and compare them. Read-only."""
        table = self.table.read()
        jsonl = self.jsonl.read()
        snap = Snapshot(
            table=table,
            jsonl=jsonl,
            consistency=compare(table.events, jsonl.events, key=self.key),
            key=self.key,
        )
        self.checkpoint_seq = _last_checkpoint_seq(snap.longest)
        return snap

    def recent(self) -> Snapshot:
        """Both stores from the last checkpoint they both hold, identical, at the same seq
        (`Snapshot.base`); both whole (`snapshot()`) when they hold none in common. A memo
        (`TailMemo`) hands back its snapshot while neither store has changed. Read-only.

        Checks the chain of the events after the checkpoint, not before (`verify` does).
        """
        key = self.memo.key(self.table, self.jsonl) if self.memo is not None else None
        snap = self.memo.lookup(key) if self.memo is not None else None
        if snap is None:
            snap = read_from_checkpoint(self.table, self.jsonl, key=self.key) or self.snapshot()
            if self.memo is not None:
                self.memo.remember(key, snap)
        self.checkpoint_seq = _last_checkpoint_seq(snap.longest)
        return snap

    # -- appending -----------------------------------------------------------

    def append(self, draft: Draft) -> Event:
        """Seal and record one event (see the module rule); returns it."""
        return self.append_many([draft])[0]

    def append_many(self, drafts: Sequence[Draft]) -> list[Event]:
        """Seal and record several events in one write to each store.

        Raises JournalUnavailable when the JSONL cannot be written (outside a transaction:
        then nothing was recorded), JournalTableUnwritable when the table cannot (the JSONL
        holds the events; the table takes them at its next append or the next command), and
        JournalUnsettled after a COMMIT whose outcome is unknown.
        """
        events = self._seal(drafts)
        if not events:
            return events
        if self._offline:
            self._to_jsonl(events)
            self._head = (events[-1].seq, events[-1].hash)
        elif self.conn.in_transaction:
            # `begin()` flushed what the table lacked: no gap can open inside a transaction.
            self.table.append(events)
            self._pending.extend(events)
            self._head = (events[-1].seq, events[-1].hash)
        else:
            self.table.ensure()
            self._flush_jsonl_behind()
            start = self.jsonl.size()
            self.jsonl.append(events)
            # The JSONL holds them now: the chain continues after them whatever the table does.
            self._head = (events[-1].seq, events[-1].hash)
            self._to_table_now(events, jsonl_start=start)
        return events

    def append_lasting(self, drafts: Sequence[Draft]) -> list[Event]:
        """Record events that must survive a rollback of the open transaction.

        Inside a transaction they go to the JSONL at once and into the table within the
        transaction; if the transaction is rolled back they are put back into the table.
        They must come first in their transaction (raises ValueError otherwise). Outside a
        transaction this is `append_many`.
        """
        if not self.conn.in_transaction or self._offline:
            return self.append_many(drafts)
        if self._pending:
            msg = "lasting events must come before any other event of their transaction"
            raise ValueError(msg)
        events = self._seal(drafts)
        self._to_jsonl(events)
        self._head = (events[-1].seq, events[-1].hash)
        self._tx_head = self._head  # a rollback returns to after them
        self._lasting.extend(events)
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
        """`BEGIN IMMEDIATE`: take the write lock; appends now join this transaction.

        Raises sqlite3.OperationalError (SQLITE_BUSY) when another connection keeps the
        write lock past the connection's busy timeout; nothing is open then.
        """
        self._check_settled()
        self.table.ensure()
        self._to_table_now(())  # what the table lacks goes in first, outside the transaction
        self.conn.execute("BEGIN IMMEDIATE")
        self._tx_head = self._head

    def commit(self) -> None:
        """COMMIT, then write the transaction's events to the JSONL.

        If COMMIT fails, what SQLite did is read back: a transaction that committed after
        all is treated as committed; one that was rolled back leaves the journal as before
        `begin()` and the error is re-raised; if it cannot be known, the error is re-raised
        and every further append refuses (JournalUnsettled). A JSONL that cannot take the
        events after a successful COMMIT does not make this fail: they are kept and written
        before the JSONL's next append (see `jsonl_behind`).
        """
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error:
            if not self._committed_after_all():
                raise
        failpoints.hit("after_commit")  # committed; the JSONL does not have the events yet
        pending = [e for e in self._pending if e not in self._lasting]
        self._end_transaction()
        self._jsonl_behind.extend(pending)
        # kept in `jsonl_behind`; the next append (or the next command) writes them
        with contextlib.suppress(JournalUnavailable):
            self._flush_jsonl_behind()

    def rollback(self) -> None:
        """ROLLBACK; the transaction's events are gone from the table and never reach the JSONL.

        Lasting events are put back into the table (they are already in the JSONL). Also
        settles a transaction SQLite rolled back by itself (see `transaction_lost`).
        """
        if self.conn.in_transaction:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                if self.conn.in_transaction:
                    raise
        self._forget_transaction()

    def transaction_lost(self) -> bool:
        """Whether SQLite ended the open transaction by itself (SQLITE_FULL, some I/O errors).

        Call after an error inside a transaction. If it was lost, every event appended since
        `begin()` is gone from the table: the journal goes back to where it stood before
        `begin()` (lasting events are put back) and True is returned.
        """
        if self._tx_head is None or self.conn.in_transaction:
            return False
        self._forget_transaction()
        return True

    def savepoint(self, name: str) -> None:
        """`SAVEPOINT name` inside the open transaction (raises ValueError outside one)."""
        if not self.conn.in_transaction:
            msg = "savepoint() needs an open transaction (call begin() first)"
            raise ValueError(msg)
        self.conn.execute(f'SAVEPOINT "{name}"')
        self._savepoints.append((name, len(self._pending), self._head))

    def rollback_to(self, name: str) -> None:
        """Undo everything since `SAVEPOINT name`, its events included, and release it."""
        self.conn.execute(f'ROLLBACK TO "{name}"')
        self.conn.execute(f'RELEASE "{name}"')
        while self._savepoints:
            sp_name, pending_len, head = self._savepoints.pop()
            if sp_name == name:
                del self._pending[pending_len:]
                self._head = head
                return

    def release(self, name: str) -> None:
        """`RELEASE name`: keep the savepoint's work as part of the outer transaction."""
        self.conn.execute(f'RELEASE "{name}"')
        while self._savepoints:
            if self._savepoints.pop()[0] == name:
                return

    @property
    def pending(self) -> tuple[Event, ...]:
        """Events of the open transaction not yet in the JSONL."""
        return tuple(e for e in self._pending if e not in self._lasting)

    def sync(self) -> None:
        """Write what the JSONL still lacks, then force it to stable storage.

        Raises JournalUnavailable when that fails (the table holds the events).
        """
        self._flush_jsonl_behind()
        self.jsonl.sync()

    def close(self) -> None:
        """Sync and close the JSONL file."""
        self.jsonl.close()

    # -- internals -------------------------------------------------------------

    def _seal(self, drafts: Sequence[Draft]) -> list[Event]:
        self._check_settled()
        events, self._keyed_since = seal_after(
            drafts, head=self._head, key=self.key, keyed_since=self._keyed_since
        )
        return events

    def _check_settled(self) -> None:
        if self._unsettled is not None:
            raise JournalUnsettled(self._unsettled)

    def _to_jsonl(self, events: Sequence[Event]) -> None:
        """Write what the JSONL lacks, then `events`; raises JournalUnavailable."""
        self._flush_jsonl_behind()
        self.jsonl.append(events)

    def _flush_jsonl_behind(self) -> None:
        """Write the committed events the JSONL lacks; raises JournalUnavailable."""
        if not self._jsonl_behind:
            return
        try:
            self.jsonl.append(self._jsonl_behind)
        except JournalUnavailable as exc:
            raise JournalUnavailable(
                exc.what,
                path=exc.path,
                state=f"{len(self._jsonl_behind)} committed event(s) are in the database's "
                "journal table only; the next command copies them into the JSONL",
                hint=exc.hint,
            ) from exc
        self._jsonl_behind.clear()

    def _flush_table_behind(self) -> None:
        """Insert the events the table lacks (skipping any it already took); raises sqlite3.Error."""
        if not self._table_behind:
            return
        have = self.table.last_seq()
        self.table.append([e for e in self._table_behind if e.seq > have])
        self._table_behind.clear()

    def _to_table_now(self, events: Sequence[Event], *, jsonl_start: int | None = None) -> None:
        """Insert `events` outside a transaction.

        If the table refuses them, the append is undone as a whole: the JSONL is cut back to
        `jsonl_start` (its length before them; this process holds the migration lock, so no
        one else appended) and the error is re-raised as SQLite gave it — a busy database is
        then just busy, with both journals equal. When the JSONL cannot be cut back, the events
        are kept and the table takes them before its next append (JournalTableUnwritable).
        """
        try:
            self._flush_table_behind()
            self.table.append(events)
        except sqlite3.Error as exc:
            if events and jsonl_start is not None and self.jsonl.cut_back(jsonl_start):
                self._head = (events[0].seq - 1, events[0].prev)
                raise
            self._table_behind.extend(events)
            raise JournalTableUnwritable(
                f"cannot write the journal table of the database ({exc})",
                state=f"the JSONL holds {len(self._table_behind)} event(s) the table lacks; "
                "the next command copies them into the table",
                hint="free disk space (or fix the file's permissions), then run "
                "`schemalog recover`",
            ) from exc
        self._table_behind.clear()

    def _committed_after_all(self) -> bool:
        """After a failed COMMIT: whether the transaction's events are in the table now."""
        if self.conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
        written = self._lasting + self._pending
        last = written[-1].seq if written else None
        try:
            seq = self.table.last_seq()
        except sqlite3.Error as exc:
            self._unsettled = (
                f"cannot tell whether the last COMMIT took effect ({exc}); the journal table "
                "holds the truth and the next command reads it"
            )
            self._forget_transaction(put_back=False)
            return False
        if last is not None and seq >= last:
            return True
        self._forget_transaction()
        return False

    def _forget_transaction(self, *, put_back: bool = True) -> None:
        """Reset to before `begin()`; lasting events go back into the table (or wait)."""
        lasting = list(self._lasting)
        if self._tx_head is not None:
            self._head = self._tx_head
        self._end_transaction()
        if put_back and lasting:
            self._table_behind.extend(lasting)
            # kept: the JSONL holds them, the next append or command puts them back
            with contextlib.suppress(sqlite3.Error):
                self._flush_table_behind()

    def _end_transaction(self) -> None:
        self._pending.clear()
        self._lasting.clear()
        self._savepoints.clear()
        self._tx_head = None


def _last_checkpoint_seq(events: Sequence[Event]) -> int:
    for event in reversed(events):
        if event.kind is Kind.CHECKPOINT:
            return event.seq
    return 0
