"""Tests for journal.table: the append-only, layout-versioned `schemalog_journal` table."""

from __future__ import annotations

import sqlite3

import pytest

from schemalog.journal.chain import find_break
from schemalog.journal.errors import JournalCorrupt, JournalLayoutError
from schemalog.journal.table import LAYOUT_VERSION, META, TABLE, TableStore
from tests.journal.conftest import connect
from tests.journal.strategies import events


def _objects(conn: sqlite3.Connection) -> set[tuple[str, str]]:
    return {(t, n) for t, n in conn.execute("SELECT type, name FROM sqlite_master")}


def _drop_triggers(conn: sqlite3.Connection) -> None:
    conn.execute(f"DROP TRIGGER {TABLE}_no_update")
    conn.execute(f"DROP TRIGGER {TABLE}_no_delete")


class TestEnsure:
    def test_first_use_creates_table_triggers_and_layout(self, table, conn):
        """ensure() creates the table, both append-only triggers and the layout record."""
        assert not table.exists()
        table.ensure()
        assert table.exists()
        assert {
            ("table", TABLE),
            ("trigger", f"{TABLE}_no_update"),
            ("trigger", f"{TABLE}_no_delete"),
            ("table", META),
        } <= _objects(conn)
        row = conn.execute(f"SELECT value FROM {META} WHERE key = 'journal_layout'").fetchone()
        assert row == (str(LAYOUT_VERSION),)
        assert not conn.in_transaction

    def test_ensure_is_idempotent(self, table):
        """A second ensure() keeps the events already there."""
        table.ensure()
        table.append(events(2))
        table.ensure()
        assert table.read().events == tuple(events(2))

    def test_ensure_inside_a_transaction_joins_it(self, table, conn):
        """ensure() in an open transaction creates the table as part of it (rolled back with it)."""
        conn.execute("BEGIN")
        table.ensure()
        assert table.exists()
        conn.execute("ROLLBACK")
        assert not table.exists()

    def test_failed_creation_leaves_nothing(self, table, conn):
        """If creating the layout fails half way, nothing of it is left behind."""
        conn.execute("CREATE TABLE other (x)")
        conn.execute(f"CREATE INDEX {META} ON other (x)")  # the name the layout needs
        before = _objects(conn)
        with pytest.raises(sqlite3.OperationalError):
            table.ensure()
        assert _objects(conn) == before
        assert not conn.in_transaction

    def test_failed_creation_inside_a_transaction_leaves_it_to_the_caller(self, table, conn):
        """A creation failure inside the caller's transaction propagates and keeps it open."""
        conn.execute("CREATE TABLE other (x)")
        conn.execute(f"CREATE INDEX {META} ON other (x)")
        conn.execute("BEGIN")
        with pytest.raises(sqlite3.OperationalError):
            table.ensure()
        assert conn.in_transaction
        conn.execute("ROLLBACK")
        assert not table.exists()

    def test_missing_layout_record_is_restored(self, table, conn):
        """A journal table without schemalog_meta gets the layout record back on ensure()."""
        table.ensure()
        conn.execute(f"DROP TABLE {META}")
        table.ensure()
        row = conn.execute(f"SELECT value FROM {META} WHERE key = 'journal_layout'").fetchone()
        assert row == (str(LAYOUT_VERSION),)

    def test_absent_table_reads_empty(self, table):
        """Before first use the store reads as no events, `exists=False`, last seq 0."""
        result = table.read()
        assert (result.events, result.exists) == ((), False)
        assert table.last_seq() == 0


class TestAppendOnly:
    @pytest.fixture
    def filled(self, table):
        """A table holding three events."""
        table.ensure()
        table.append(events(3))
        return table

    def test_update_is_refused(self, filled, conn):
        """UPDATE on the journal raises a sqlite3 error and changes nothing."""
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute(f"UPDATE {TABLE} SET data = '{{}}' WHERE seq = 2")
        assert filled.read().events == tuple(events(3))

    def test_delete_is_refused(self, filled, conn):
        """DELETE on the journal raises a sqlite3 error and every row survives."""
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute(f"DELETE FROM {TABLE}")
        assert filled.read().events == tuple(events(3))
        assert filled.last_seq() == 3

    def test_duplicate_seq_is_refused_atomically(self, filled):
        """A batch that clashes with a stored seq inserts none of its events."""
        more = events(5)
        with pytest.raises(sqlite3.IntegrityError):
            filled.append([more[3], more[0]])
        assert filled.last_seq() == 3
        assert not filled.conn.in_transaction


class TestTransactions:
    def test_append_in_open_transaction_rolls_back_with_it(self, table, conn):
        """Events appended inside the caller's transaction vanish when it rolls back."""
        table.ensure()
        conn.execute("BEGIN IMMEDIATE")
        table.append(events(2))
        assert conn.in_transaction
        assert len(table.read().events) == 2
        conn.execute("ROLLBACK")
        assert table.read().events == ()

    def test_append_in_open_transaction_commits_with_it(self, table, conn, tmp_path):
        """Events appended inside the caller's transaction are invisible elsewhere until COMMIT."""
        table.ensure()
        other = connect(tmp_path / "app.db")
        try:
            conn.execute("BEGIN IMMEDIATE")
            table.append(events(2))
            assert TableStore(other).read().events == ()
            conn.execute("COMMIT")
            assert TableStore(other).read().events == tuple(events(2))
        finally:
            other.close()

    def test_append_outside_a_transaction_commits_on_its_own(self, table, conn, tmp_path):
        """Outside a transaction an append is committed at once and visible to another connection."""
        table.ensure()
        table.append(events(3))
        assert not conn.in_transaction
        other = connect(tmp_path / "app.db")
        try:
            assert TableStore(other).read().events == tuple(events(3))
            assert TableStore(other).last_seq() == 3
        finally:
            other.close()

    def test_empty_append_does_nothing(self, table, conn):
        """Appending no events neither opens a transaction nor needs the table."""
        table.append([])
        assert not conn.in_transaction
        assert not table.exists()


class TestLayout:
    def test_wrong_shaped_table_is_refused(self, table, conn):
        """A `schemalog_journal` with other columns raises JournalLayoutError on ensure and read."""
        conn.execute(f"CREATE TABLE {TABLE} (seq INTEGER PRIMARY KEY, body TEXT)")
        conn.execute(f"CREATE TABLE {META} (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        with pytest.raises(JournalLayoutError, match="has columns seq, body") as info:
            table.ensure()
        assert info.value.exit_code == 4
        with pytest.raises(JournalLayoutError):
            table.read()

    def test_newer_layout_is_refused(self, table, conn):
        """A layout version above the one this code knows raises JournalLayoutError."""
        table.ensure()
        table.append(events(1))
        conn.execute(
            f"UPDATE {META} SET value = ? WHERE key = 'journal_layout'", (str(LAYOUT_VERSION + 1),)
        )
        with pytest.raises(JournalLayoutError, match="newer") as info:
            table.ensure()
        assert "upgrade schemalog" in str(info.value)
        with pytest.raises(JournalLayoutError, match="newer"):
            table.read()

    def test_older_layout_is_accepted(self, table, conn):
        """A layout record at or below the known version is read normally."""
        table.ensure()
        table.append(events(1))
        conn.execute(f"DELETE FROM {META}")
        assert table.read().events == tuple(events(1))

    def test_wrong_shaped_table_is_refused_before_any_write(self, table, conn):
        """Refusing a foreign `schemalog_journal` leaves the database exactly as it was."""
        conn.execute(f"CREATE TABLE {TABLE} (seq INTEGER PRIMARY KEY, body TEXT)")
        before = _objects(conn)
        with pytest.raises(JournalLayoutError):
            table.ensure()
        assert _objects(conn) == before

    def test_read_without_layout_table_is_not_a_raw_sqlite_error(self, table, conn):
        """A well-shaped journal whose schemalog_meta is missing reads as layout 0, not a crash."""
        table.ensure()
        table.append(events(2))
        conn.execute(f"DROP TABLE {META}")
        assert table.read().events == tuple(events(2))

    def test_newer_layout_without_the_table_is_refused(self, table, conn):
        """A database whose schemalog_meta records a newer layout is refused even if the table is absent."""
        conn.execute(f"CREATE TABLE {META} (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute(f"INSERT INTO {META} VALUES ('journal_layout', ?)", (str(LAYOUT_VERSION + 1),))
        with pytest.raises(JournalLayoutError, match="newer"):
            table.ensure()
        assert not table.exists()


class TestEditedRows:
    @pytest.fixture
    def unguarded(self, table, conn):
        """A table of four events whose append-only triggers were dropped (an attacker's view)."""
        table.ensure()
        table.append(events(4))
        _drop_triggers(conn)
        return table

    def test_edited_data_breaks_the_chain_at_its_seq(self, unguarded, conn):
        """A row whose data was rewritten (still canonical JSON) is found by find_break at its seq."""
        conn.execute(f"""UPDATE {TABLE} SET data = '{{"i":99}}' WHERE seq = 3""")
        brk = find_break(unguarded.read().events)
        assert brk is not None
        assert brk.seq == 3

    def test_deleted_row_is_a_gap(self, unguarded, conn):
        """A deleted row shows as a missing seq."""
        conn.execute(f"DELETE FROM {TABLE} WHERE seq = 2")
        brk = find_break(unguarded.read().events)
        assert brk is not None
        assert (brk.seq, "missing seq" in brk.reason) == (3, True)

    @pytest.mark.parametrize(
        ("column", "value"),
        [
            ("data", '{"i": 1}'),
            ("data", "not json"),
            ("data", "[1]"),
            ("kind", "step_exploded"),
            ("version", "abc"),
        ],
        ids=["non-canonical-data", "data-not-json", "data-not-object", "bad-kind", "bad-version"],
    )
    def test_undecodable_row_is_corrupt(self, unguarded, conn, column, value):
        """A row that no longer decodes to an event raises JournalCorrupt naming its seq."""
        conn.execute(f"UPDATE {TABLE} SET {column} = ? WHERE seq = 2", (value,))
        with pytest.raises(JournalCorrupt, match=f"{TABLE} seq 2"):
            unguarded.read()

    def test_fractional_version_is_detected(self, unguarded, conn):
        """A version column edited to a fraction is reported (corrupt or chain break)."""
        conn.execute(f"UPDATE {TABLE} SET version = version + 0.5 WHERE seq = 2")
        try:
            evs = unguarded.read().events
        except JournalCorrupt:
            return
        assert find_break(evs) is not None
