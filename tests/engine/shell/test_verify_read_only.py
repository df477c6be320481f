"""Verify queries run read-only (engine.base.readonly): a verify query that writes, ends the
run's transaction or changes the connection fails and changes nothing, in `up` and in
`verify`; the connection is as before afterwards, on every path."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from schemalog.engine.base.errors import CheckFailed, VerificationFailed
from schemalog.engine.base.readonly import query_read_only
from schemalog.engine.migrator import Migrator
from tests.engine.conftest import (
    assert_journals_identical,
    make_migrator,
    rows,
    user_version,
    write_migrations,
)

NOTES = """
    -- Notes, with two rows.
    -- migrate:up
    CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
    INSERT INTO notes (body) VALUES ('a'), ('b');
    -- migrate:down
    DROP TABLE notes;
    -- migrate:verify
    SELECT COUNT(*) = 2 FROM notes;
    """


def with_verify(query: str) -> str:
    """Migration 2: a column, and `query` as its verify query."""
    return f"""
        -- A column, verified by a query that may try to write.
        -- migrate:up
        ALTER TABLE notes ADD COLUMN c TEXT;
        -- migrate:down
        ALTER TABLE notes DROP COLUMN c;
        -- migrate:verify
        {query}
        """


#: Migration 3 writes: it fails if an earlier verify query left the connection read-only.
WRITES = """
    -- A third row.
    -- migrate:up
    INSERT INTO notes (body) VALUES ('c');
    -- migrate:down
    DELETE FROM notes WHERE body = 'c';
    """

ATTEMPTS = {
    "delete": ("DELETE FROM notes RETURNING 1;", "readonly"),
    "update": ("UPDATE notes SET body = 'x' RETURNING 1;", "readonly"),
    "user_version": ("PRAGMA user_version = 99;", "not authorized"),
    "query_only_off": ("PRAGMA query_only = OFF;", "not authorized"),
    "foreign_keys_off": ("PRAGMA foreign_keys = OFF;", "not authorized"),
    "commit": ("COMMIT;", "not authorized"),
    "rollback": ("ROLLBACK;", "not authorized"),
    "savepoint": ("SAVEPOINT sneaky;", "not authorized"),
    "attach": ("ATTACH DATABASE ':memory:' AS other;", "not authorized"),
}


@pytest.fixture
def conn() -> sqlite3.Connection:
    """A writable in-memory database with two rows, in autocommit mode."""
    c = sqlite3.connect(":memory:", isolation_level=None)
    c.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    c.execute("INSERT INTO notes (body) VALUES ('a'), ('b')")
    yield c
    c.close()


class TestQueryReadOnly:
    def test_reads_are_returned(self, conn):
        """A query that only reads gives its rows, table-valued pragmas included."""
        assert query_read_only(conn, "SELECT COUNT(*) FROM notes") == [(2,)]
        sql = "SELECT COUNT(*) = 1 FROM pragma_table_info('notes') WHERE name = 'body'"
        assert query_read_only(conn, sql) == [(1,)]
        assert query_read_only(conn, "PRAGMA table_info(notes)")

    @pytest.mark.parametrize("name", ATTEMPTS, ids=list(ATTEMPTS))
    def test_writes_are_refused_and_the_connection_is_restored(self, conn, name):
        """Every attempt to write or change the connection fails; afterwards the connection
        writes again, in the same transaction, with no authorizer left."""
        sql, message = ATTEMPTS[name]
        conn.execute("BEGIN")
        with pytest.raises(sqlite3.DatabaseError, match=message):
            query_read_only(conn, sql)
        assert conn.in_transaction
        assert conn.execute("PRAGMA query_only").fetchone() == (0,)
        assert conn.execute("PRAGMA foreign_keys").fetchone() == (0,)
        conn.execute("INSERT INTO notes (body) VALUES ('after')")
        conn.execute("COMMIT")
        assert conn.execute("SELECT COUNT(*) FROM notes").fetchone() == (3,)

    def test_an_already_read_only_connection_stays_so(self, conn):
        """query_only ON before the query is ON after it."""
        conn.execute("PRAGMA query_only = ON")
        query_read_only(conn, "SELECT 1")
        assert conn.execute("PRAGMA query_only").fetchone() == (1,)


class TestDuringUp:
    @pytest.mark.parametrize("name", ATTEMPTS, ids=list(ATTEMPTS))
    def test_a_writing_verify_query_fails_the_step_and_changes_nothing(self, tmp_path, name):
        """Migration 2's verify query tries to write: `up` fails at 2 (VerificationFailed), the
        rows and migration 1 stay as they were, both journals agree."""
        sql, message = ATTEMPTS[name]
        files = {"001_notes.sql": NOTES, "002_c.sql": with_verify(sql), "003_c.sql": WRITES}
        m = make_migrator(tmp_path, write_migrations(tmp_path / "migrations", files))
        with pytest.raises(VerificationFailed, match=message) as info:
            m.upgrade()
        assert "verify query 1" in info.value.what
        db = m.paths.database
        assert rows(db, "notes") == [(1, "a"), (2, "b")]
        assert user_version(db) == 1
        assert_journals_identical(db)
        assert m.status().version == 1

    def test_the_connection_writes_again_after_a_passing_verify_query(self, tmp_path):
        """A read-only verify query passes, and the next migration (an INSERT) still writes."""
        files = {
            "001_notes.sql": NOTES,
            "002_c.sql": with_verify("SELECT COUNT(*) = 2 FROM notes;"),
            "003_c.sql": WRITES,
        }
        m = make_migrator(tmp_path, write_migrations(tmp_path / "migrations", files))
        m.upgrade()
        assert [r[1] for r in rows(m.paths.database, "notes")] == ["a", "b", "c"]
        assert user_version(m.paths.database) == 3


class TestDuringVerify:
    def test_a_writing_verify_query_fails_its_check_and_deletes_nothing(self, tmp_path: Path):
        """`verify` on a writable connection (the application's factory): a baselined
        migration's `DELETE … RETURNING 1` fails its check; every row is still there."""
        db = tmp_path / "app.db"
        with closing(sqlite3.connect(db, isolation_level=None)) as c:
            c.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
            c.execute("INSERT INTO notes (body) VALUES ('a'), ('b')")
        files = {
            "001_notes.sql": NOTES.replace(
                "SELECT COUNT(*) = 2 FROM notes;", "DELETE FROM notes RETURNING 1;"
            )
        }
        migrations = write_migrations(tmp_path / "migrations", files)
        m = Migrator(
            database=db,
            migrations=migrations,
            connect=lambda: sqlite3.connect(db, isolation_level=None),
        )
        m.baseline(1)
        with pytest.raises(CheckFailed) as info:
            m.verify()
        failed = {c["check"]: c for c in info.value.checks if not c["ok"]}
        assert "readonly" in failed["verify 001_notes.sql #1"]["detail"]
        assert rows(db, "notes") == [(1, "a"), (2, "b")]
