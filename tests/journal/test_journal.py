"""Tests for journal.journal: one append API keeping the table and the JSONL identical."""

from __future__ import annotations

import sqlite3

import pytest

from schemalog.journal.chain import GENESIS, find_break
from schemalog.journal.consistency import compare
from schemalog.journal.errors import JournalTableUnwritable, JournalUnavailable
from schemalog.journal.events import Draft, Kind
from schemalog.journal.journal import Journal
from schemalog.journal.jsonl import JsonlStore
from tests.journal.strategies import d, events


def _both(journal: Journal):
    """The events of the table and of the JSONL, as read now."""
    return journal.table.read().events, journal.jsonl.read().events


def _assert_in_step(journal: Journal, n: int) -> None:
    """Both stores hold the same valid chain of `n` events and the head is at its end."""
    table, jsonl = _both(journal)
    assert table == jsonl
    assert len(table) == n
    assert find_break(table) is None
    assert compare(table, jsonl).consistent
    assert journal.head_seq == n
    assert journal.head_hash == (table[-1].hash if table else GENESIS)


class TestConstruction:
    def test_refuses_a_connection_not_in_autocommit(self, tmp_path, jsonl):
        """A connection with an isolation level would hide transactions; it is refused."""
        conn = sqlite3.connect(tmp_path / "x.db")
        try:
            with pytest.raises(ValueError, match="autocommit"):
                Journal(conn, jsonl)
        finally:
            conn.close()

    def test_starts_at_genesis(self, journal):
        """A new journal continues from nothing: seq 0 and the genesis hash."""
        assert (journal.head_seq, journal.head_hash, journal.pending) == (0, GENESIS, ())


class TestAppendOutsideTransaction:
    def test_append_writes_both_stores(self, journal):
        """An append outside a transaction lands in both stores, chained from genesis."""
        event = journal.append(d(Kind.RUN_STARTED, command="up"))
        assert (event.seq, event.prev) == (1, GENESIS)
        journal.append(d(Kind.RUN_FINISHED))
        _assert_in_step(journal, 2)
        assert not journal.conn.in_transaction

    def test_jsonl_is_written_before_the_table(self, journal, monkeypatch):
        """The JSONL gets the events first; a failing table insert leaves them only there."""
        journal.table.ensure()
        seen_by_table: list = []
        real_append = journal.table.append

        def table_append(evs):
            seen_by_table.append(journal.jsonl.read().events)
            real_append(evs)

        monkeypatch.setattr(journal.table, "append", table_append)
        event = journal.append(d(Kind.RUN_STARTED))
        assert seen_by_table == [(event,)]

    def test_append_many_is_one_chain(self, journal):
        """append_many seals consecutive events, linked to each other, in one write per store."""
        out = journal.append_many(
            [d(Kind.RUN_STARTED), d(Kind.LOCK_ACQUIRED), d(Kind.RUN_FINISHED)]
        )
        assert [e.seq for e in out] == [1, 2, 3]
        assert [e.prev for e in out[1:]] == [e.hash for e in out[:-1]]
        _assert_in_step(journal, 3)

    def test_append_many_of_nothing(self, journal):
        """Appending no drafts returns no events and moves nothing."""
        assert journal.append_many([]) == []
        assert journal.head_seq == 0

    def test_append_creates_the_table(self, journal):
        """The first append outside a transaction creates the journal table."""
        assert not journal.table.exists()
        journal.append(d(Kind.RUN_STARTED))
        assert journal.table.exists()


class TestTransaction:
    def test_events_reach_the_jsonl_only_after_commit(self, journal):
        """Inside begin()/commit() events are in the table and pending, in the JSONL after COMMIT."""
        journal.append(d(Kind.RUN_STARTED))
        journal.begin()
        applied = journal.append_many([d(Kind.STEP_STARTED, 1), d(Kind.STEP_APPLIED, 1)])
        table, jsonl = _both(journal)
        assert len(table) == 3
        assert len(jsonl) == 1
        assert journal.pending == tuple(applied)
        journal.commit()
        assert journal.pending == ()
        _assert_in_step(journal, 3)

    def test_begin_takes_the_write_lock(self, journal, tmp_path):
        """begin() is BEGIN IMMEDIATE: another connection cannot write meanwhile."""
        journal.begin()
        other = sqlite3.connect(tmp_path / "app.db", isolation_level=None, timeout=0)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        finally:
            other.close()
            journal.rollback()

    def test_rollback_leaves_neither_store_with_the_events(self, journal):
        """After rollback() the transaction's events are in neither store, and the chain continues."""
        journal.append(d(Kind.RUN_STARTED))
        head = (journal.head_seq, journal.head_hash)
        journal.begin()
        journal.append_many([d(Kind.STEP_STARTED, 1), d(Kind.STEP_APPLIED, 1)])
        journal.rollback()
        assert (journal.head_seq, journal.head_hash) == head
        assert journal.pending == ()
        _assert_in_step(journal, 1)
        after = journal.append(d(Kind.STEP_FAILED, 1))
        assert (after.seq, after.prev) == (2, head[1])
        _assert_in_step(journal, 2)

    def test_rollback_after_sqlite_already_rolled_back(self, journal):
        """rollback() also works when the transaction is already gone (SQLite rolled it back)."""
        journal.begin()
        journal.append(d(Kind.STEP_STARTED, 1))
        journal.conn.execute("ROLLBACK")
        journal.rollback()
        assert journal.head_seq == 0
        journal.append(d(Kind.STEP_FAILED, 1))
        _assert_in_step(journal, 1)

    def test_rollback_without_begin_is_harmless(self, journal):
        """rollback() with no transaction open keeps the head where it is."""
        journal.append(d(Kind.RUN_STARTED))
        journal.rollback()
        _assert_in_step(journal, 1)

    def test_commit_with_nothing_pending(self, journal):
        """An empty transaction commits and writes nothing to the JSONL."""
        journal.begin()
        journal.commit()
        assert _both(journal) == ((), ())


class TestSavepoints:
    def test_rollback_to_discards_exactly_the_events_since_the_savepoint(self, journal):
        """rollback_to drops the savepoint's events from the table and from pending; later ones chain."""
        journal.begin()
        kept = journal.append(d(Kind.STEP_STARTED, 1))
        journal.savepoint("step")
        journal.append_many([d(Kind.STEP_APPLIED, 1), d(Kind.STEP_STARTED, 2)])
        journal.rollback_to("step")
        assert journal.pending == (kept,)
        assert journal.table.read().events == (kept,)
        assert (journal.head_seq, journal.head_hash) == (1, kept.hash)
        failed = journal.append(d(Kind.STEP_FAILED, 1))
        assert (failed.seq, failed.prev) == (2, kept.hash)
        journal.commit()
        _assert_in_step(journal, 2)

    def test_release_keeps_the_savepoints_events(self, journal):
        """release() keeps the events as part of the outer transaction."""
        journal.begin()
        journal.savepoint("step")
        evs = journal.append_many([d(Kind.STEP_STARTED, 1), d(Kind.STEP_APPLIED, 1)])
        journal.release("step")
        assert journal.pending == tuple(evs)
        journal.commit()
        _assert_in_step(journal, 2)

    def test_nested_savepoints(self, journal):
        """Rolling back to an outer savepoint also drops the inner one and its events."""
        journal.begin()
        journal.savepoint("outer")
        a = journal.append(d(Kind.STEP_STARTED, 1))
        journal.savepoint("inner")
        journal.append(d(Kind.STEP_APPLIED, 1))
        journal.release("inner")
        journal.savepoint("inner2")
        journal.append(d(Kind.STEP_STARTED, 2))
        journal.rollback_to("inner2")
        assert journal.pending[-1].kind is Kind.STEP_APPLIED
        journal.rollback_to("outer")
        assert journal.pending == ()
        assert journal.head_seq == 0
        b = journal.append(d(Kind.STEP_FAILED, 1))
        assert (b.seq, b.prev) == (1, GENESIS)
        assert a.seq == b.seq  # the discarded seq is reused, so no gap
        journal.commit()
        _assert_in_step(journal, 1)

    def test_rollback_to_then_rollback_rewinds_to_begin(self, journal):
        """A rollback after a rollback_to still rewinds to where begin() started."""
        journal.append(d(Kind.RUN_STARTED))
        journal.begin()
        journal.append(d(Kind.STEP_STARTED, 1))
        journal.savepoint("s")
        journal.append(d(Kind.STEP_APPLIED, 1))
        journal.rollback_to("s")
        journal.rollback()
        journal.append(d(Kind.RUN_FINISHED))
        _assert_in_step(journal, 2)

    def test_savepoint_outside_begin_keeps_the_stores_equal(self, journal):
        """Whatever the caller does with savepoints, committed events end up in both stores."""
        journal.append(d(Kind.RUN_STARTED))
        try:
            journal.savepoint("loose")
        except Exception:
            return  # refusing is fine
        journal.append(d(Kind.STEP_STARTED, 1))
        journal.release("loose")  # SQLite commits the outermost savepoint here
        assert not journal.conn.in_transaction
        _assert_in_step(journal, 2)


class TestFaults:
    """Whatever fails, neither store is left with a gap and neither claims what did not happen."""

    def test_a_transaction_sqlite_rolled_back_is_noticed(self, journal):
        """When SQLite ends the transaction by itself, the journal goes back to before BEGIN."""
        journal.append(d(Kind.RUN_STARTED))
        journal.begin()
        journal.append(d(Kind.STEP_STARTED, 1))
        journal.conn.execute("ROLLBACK")  # as SQLite does on SQLITE_FULL
        assert journal.transaction_lost()
        assert journal.pending == ()
        journal.append(d(Kind.STEP_FAILED, 1))
        _assert_in_step(journal, 2)

    def test_transaction_lost_is_false_while_it_is_open(self, journal):
        """An open transaction is not lost."""
        journal.begin()
        journal.append(d(Kind.STEP_STARTED, 1))
        assert not journal.transaction_lost()
        journal.commit()
        _assert_in_step(journal, 1)

    def test_lasting_events_survive_a_rollback(self, journal):
        """A lasting event is in the JSONL at once and back in the table after a rollback."""
        journal.begin()
        (kept,) = journal.append_lasting([d(Kind.BACKUP_TAKEN, id="b1")])
        assert journal.jsonl.read().events == (kept,)
        journal.append(d(Kind.STEP_STARTED, 1))
        journal.rollback()
        _assert_in_step(journal, 1)
        journal.append(d(Kind.RUN_FINISHED))
        _assert_in_step(journal, 2)

    def test_lasting_events_commit_once(self, journal):
        """Committed with the transaction, a lasting event is not written to the JSONL twice."""
        journal.begin()
        journal.append_lasting([d(Kind.BACKUP_TAKEN, id="b1")])
        journal.append(d(Kind.STEP_APPLIED, 1))
        journal.commit()
        _assert_in_step(journal, 2)

    def test_lasting_events_must_come_first(self, journal):
        """A lasting event after other events of the transaction is refused."""
        journal.begin()
        journal.append(d(Kind.STEP_STARTED, 1))
        with pytest.raises(ValueError, match="before any other"):
            journal.append_lasting([d(Kind.BACKUP_TAKEN, id="b1")])
        journal.rollback()

    def test_a_jsonl_failure_after_commit_is_caught_up(self, journal, monkeypatch):
        """Events the JSONL could not take after COMMIT are written before its next append."""
        journal.begin()
        journal.append(d(Kind.STEP_APPLIED, 1))
        real = journal.jsonl.append

        def full(events):
            raise JournalUnavailable("disk full")

        monkeypatch.setattr(journal.jsonl, "append", full)
        journal.commit()  # committed: the failure is kept, not raised
        assert [e.seq for e in journal.jsonl_behind] == [1]
        with pytest.raises(JournalUnavailable, match="committed event"):
            journal.append(d(Kind.RUN_FINISHED))
        monkeypatch.setattr(journal.jsonl, "append", real)
        journal.append(d(Kind.RUN_FINISHED))
        _assert_in_step(journal, 2)

    def test_a_table_failure_undoes_the_append(self, journal, monkeypatch):
        """An append the table refuses (busy, full) is undone in the JSONL too: both stay equal
        and SQLite's error is raised as it came."""
        journal.append(d(Kind.RUN_STARTED))
        real = journal.table.append
        monkeypatch.setattr(
            journal.table,
            "append",
            lambda evs: (_ for _ in ()).throw(sqlite3.OperationalError("database is locked")),
        )
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            journal.append(d(Kind.LOCK_ACQUIRED))
        _assert_in_step(journal, 1)
        monkeypatch.setattr(journal.table, "append", real)
        journal.append(d(Kind.RUN_FINISHED))
        _assert_in_step(journal, 2)

    def test_a_table_failure_is_caught_up(self, journal, monkeypatch):
        """When the JSONL cannot be cut back either, the table takes the events before its
        next append."""
        real = journal.table.append
        calls = []

        def fail_once(events):
            if not calls:
                calls.append(1)
                raise sqlite3.OperationalError("database or disk is full")
            return real(events)

        monkeypatch.setattr(journal.table, "append", fail_once)
        monkeypatch.setattr(journal.jsonl, "cut_back", lambda size: False)
        with pytest.raises(JournalTableUnwritable, match="journal table"):
            journal.append(d(Kind.RUN_STARTED))
        assert [e.seq for e in journal.table_behind] == [1]
        journal.append(d(Kind.RUN_FINISHED))
        _assert_in_step(journal, 2)

    def test_begin_puts_in_what_the_table_lacks(self, journal, monkeypatch):
        """BEGIN first inserts what the table lacks, so no gap can open inside a transaction."""
        real = journal.table.append
        monkeypatch.setattr(
            journal.table,
            "append",
            lambda evs: (_ for _ in ()).throw(sqlite3.OperationalError("full")),
        )
        monkeypatch.setattr(journal.jsonl, "cut_back", lambda size: False)
        with pytest.raises(JournalTableUnwritable):
            journal.append(d(Kind.RUN_STARTED))
        monkeypatch.setattr(journal.table, "append", real)
        journal.begin()
        journal.append(d(Kind.STEP_APPLIED, 1))
        journal.commit()
        _assert_in_step(journal, 2)

    def test_a_commit_that_happened_after_all(self, journal, monkeypatch):
        """A COMMIT that reports an error but took effect is treated as committed."""
        journal.begin()
        journal.append(d(Kind.STEP_APPLIED, 1))
        conn = journal.conn
        journal.conn = _CommitThenFail(conn)
        try:
            journal.commit()
        finally:
            journal.conn = conn
        _assert_in_step(journal, 1)

    def test_a_commit_that_failed_goes_back(self, journal):
        """A COMMIT that failed and rolled back leaves the journal as before BEGIN, and raises."""
        journal.append(d(Kind.RUN_STARTED))
        journal.begin()
        journal.append(d(Kind.STEP_APPLIED, 1))
        conn = journal.conn
        journal.conn = _FailCommit(conn)
        try:
            with pytest.raises(sqlite3.OperationalError):
                journal.commit()
        finally:
            journal.conn = conn
        journal.append(d(Kind.STEP_FAILED, 1))
        _assert_in_step(journal, 2)


class _CommitThenFail:
    """A connection whose COMMIT takes effect and then reports an I/O error."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, *args):
        if sql == "COMMIT":
            self._conn.execute(sql)
            raise sqlite3.OperationalError("disk I/O error")
        return self._conn.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self._conn, name)


class _FailCommit(_CommitThenFail):
    """A connection whose COMMIT fails and rolls back (SQLITE_FULL)."""

    def execute(self, sql: str, *args):
        if sql == "COMMIT":
            self._conn.execute("ROLLBACK")
            raise sqlite3.OperationalError("database or disk is full")
        return self._conn.execute(sql, *args)


class TestHeadAndMirrors:
    def test_continue_after_an_existing_chain(self, conn, jsonl_path):
        """A new journal over stores that already hold events continues their chain after them."""
        first = Journal(conn, JsonlStore(jsonl_path))
        first.append_many([d(Kind.RUN_STARTED), d(Kind.RUN_FINISHED)])
        first.close()
        second = Journal(conn, JsonlStore(jsonl_path))
        second.continue_after(second.snapshot().table.events)
        event = second.append(d(Kind.RUN_STARTED, by="r2"))
        assert event.seq == 3
        _assert_in_step(second, 3)
        second.close()

    def test_continue_after_nothing_is_genesis(self, journal):
        """continue_after([]) restarts from genesis."""
        journal.append(d(Kind.RUN_STARTED))
        journal.continue_after([])
        assert (journal.head_seq, journal.head_hash) == (0, GENESIS)

    def test_snapshot_compares_the_stores(self, journal):
        """snapshot() reads both stores and reports how they compare."""
        journal.append(d(Kind.RUN_STARTED))
        snap = journal.snapshot()
        assert snap.table.events == snap.jsonl.events
        assert snap.consistency.consistent

    def test_mirrors_bring_the_stores_together(self, conn, tmp_path):
        """mirror_to_jsonl and mirror_to_table copy events one store lacks into it."""
        evs = events(4)
        journal = Journal(conn, JsonlStore(tmp_path / "j.jsonl"))
        journal.mirror_to_table(evs[:3])
        journal.mirror_to_jsonl(evs)
        snap = journal.snapshot()
        assert snap.consistency.jsonl_only == (evs[3],)
        journal.mirror_to_table(evs[3:])
        journal.continue_after(evs)
        assert journal.snapshot().consistency.consistent
        _assert_in_step(journal, 4)
        journal.close()

    def test_sync_and_close(self, journal, monkeypatch):
        """sync() and close() pass through to the JSONL store."""
        calls: list[str] = []
        monkeypatch.setattr(journal.jsonl, "sync", lambda: calls.append("sync"))
        monkeypatch.setattr(journal.jsonl, "close", lambda: calls.append("close"))
        journal.sync()
        journal.close()
        assert calls == ["sync", "close"]

    def test_draft_data_is_recorded_verbatim(self, journal):
        """What a caller drafts is what both stores hold."""
        draft = Draft("r", Kind.BACKUP_TAKEN, 2, {"id": "b", "nested": {"é": [1, None]}})
        event = journal.append(draft)
        table, jsonl = _both(journal)
        assert table == jsonl == (event,)
        assert (event.run_id, event.kind, event.version, event.data) == (
            draft.run_id,
            draft.kind,
            draft.version,
            draft.data,
        )
