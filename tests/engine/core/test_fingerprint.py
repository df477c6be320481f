"""Tests for schemalog.engine.core.fingerprint: what counts as a schema change and what does not."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemalog.engine.core.fingerprint import (
    EMPTY_FINGERPRINT,
    normalize_sql,
    schema_fingerprint,
    schema_objects,
)
from schemalog.engine.core.fingerprint import fingerprint_of as fingerprint_of_objects
from schemalog.journal.journal import Journal
from schemalog.journal.jsonl import JsonlStore


@pytest.fixture
def conn() -> Iterator[sqlite3.Connection]:
    """An in-memory database in autocommit mode."""
    c = sqlite3.connect(":memory:", isolation_level=None)
    yield c
    c.close()


def fingerprint_of(*statements: str) -> str:
    """The fingerprint of a fresh in-memory database after `statements`."""
    c = sqlite3.connect(":memory:", isolation_level=None)
    try:
        for statement in statements:
            c.execute(statement)
        return schema_fingerprint(c)
    finally:
        c.close()


BASE = "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL, CHECK (length(name) > 0))"


class TestNormalizeSql:
    """`normalize_sql` forgets layout, not meaning."""

    def test_empty_and_none(self):
        """None and an empty string normalize to ''."""
        assert normalize_sql(None) == ""
        assert normalize_sql("") == ""

    def test_whitespace_runs_become_one_space(self):
        """Newlines, tabs and runs of spaces collapse; the ends are stripped."""
        assert normalize_sql("  CREATE\tTABLE\n\n  t  (x)  ") == "CREATE TABLE t(x)"

    def test_spaces_next_to_parentheses_and_commas_are_dropped(self):
        """`( a , b )` and `(a,b)` normalize alike."""
        assert normalize_sql("f ( a , b )") == normalize_sql("f(a,b)") == "f(a,b)"

    def test_quotes_around_plain_identifiers_are_dropped(self):
        """`"tasks"` (as ALTER TABLE ... RENAME TO stores it) equals `tasks`."""
        assert (
            normalize_sql('CREATE TABLE "tasks" ("id" INTEGER)') == "CREATE TABLE tasks(id INTEGER)"
        )

    def test_quotes_needed_by_the_identifier_are_kept(self):
        """An identifier that needs its quotes keeps them."""
        assert normalize_sql('CREATE TABLE "my table" (x)') == 'CREATE TABLE "my table"(x)'

    @settings(max_examples=200)
    @given(
        st.lists(
            st.one_of(
                st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True),
                st.from_regex(r'"[A-Za-z_][A-Za-z0-9_ ]{0,8}"', fullmatch=True),
                st.from_regex(r"'[A-Za-z0-9_ ,()]{0,8}'", fullmatch=True),
                st.sampled_from(["(", ")", ",", ";", "=", "<>", "||", "0", "1.5"]),
            ),
            max_size=20,
        ),
        st.lists(st.sampled_from([" ", "  ", "\n", "\t", " \n "]), min_size=21, max_size=21),
    )
    def test_idempotent(self, tokens: list[str], gaps: list[str]):
        """Normalizing SQL-like text twice gives what normalizing it once gave."""
        text = "".join(g + t for g, t in zip(gaps, tokens, strict=False))
        once = normalize_sql(text)
        assert normalize_sql(once) == once

    @settings(max_examples=200)
    @given(
        st.lists(
            st.one_of(
                st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True),
                st.sampled_from(["(", ")", ","]),
            ),
            min_size=1,
            max_size=20,
        ),
        st.lists(st.sampled_from([" ", "  ", "\n", "\t\t", " \n  "]), min_size=20, max_size=20),
    )
    def test_layout_does_not_matter(self, tokens: list[str], gaps: list[str]):
        """Any whitespace between tokens normalizes like a single space."""
        spaced = " ".join(tokens)
        laid_out = "".join(t + g for t, g in zip(tokens, gaps, strict=False))
        assert normalize_sql(laid_out) == normalize_sql(spaced)


class TestSchemaFingerprint:
    """The fingerprint changes with the schema and with nothing else."""

    def test_empty_database(self, conn: sqlite3.Connection):
        """A fresh database has the empty fingerprint and no objects."""
        assert schema_fingerprint(conn) == EMPTY_FINGERPRINT
        assert schema_objects(conn) == []

    def test_reindented_create_is_the_same(self):
        """Re-indenting and re-spacing a CREATE statement does not change the fingerprint."""
        laid_out = (
            "CREATE TABLE t (\n    id INTEGER PRIMARY KEY,\n"
            "    name TEXT NOT NULL,\n    CHECK ( length( name ) > 0 )\n)"
        )
        assert fingerprint_of(BASE) == fingerprint_of(laid_out)

    def test_quoted_identifiers_are_the_same(self):
        """Quoting plain identifiers does not change the fingerprint."""
        quoted = 'CREATE TABLE "t" ("id" INTEGER PRIMARY KEY, "name" TEXT NOT NULL, CHECK (length("name") > 0))'
        assert fingerprint_of(BASE) == fingerprint_of(quoted)

    def test_rename_of_a_rebuilt_table_is_the_same(self):
        """A table created under another name and renamed equals one created directly."""
        rebuilt = fingerprint_of(
            BASE.replace("TABLE t", "TABLE new_t"), "ALTER TABLE new_t RENAME TO t"
        )
        assert rebuilt == fingerprint_of(BASE)

    def test_creation_order_does_not_matter(self):
        """Objects are sorted: creating them in another order gives the same fingerprint."""
        a, b = "CREATE TABLE a (x)", "CREATE TABLE b (y)"
        assert fingerprint_of(a, b) == fingerprint_of(b, a)

    @pytest.mark.parametrize(
        "changed",
        [
            BASE.replace("name TEXT", "name BLOB"),  # a column's type
            BASE.replace("name TEXT NOT NULL", "name TEXT"),  # a constraint
            BASE.replace("> 0", "> 1"),  # a CHECK
            BASE.replace("name TEXT", "title TEXT").replace("length(name)", "length(title)"),
            BASE.replace("TABLE t", "TABLE u"),  # the table's name
            BASE.replace("CHECK", "extra INTEGER, CHECK"),  # one more column
        ],
    )
    def test_a_column_change_alters_it(self, changed: str):
        """Any change of a column's name, type, constraint or the table's name is a change."""
        assert fingerprint_of(changed) != fingerprint_of(BASE)

    @pytest.mark.parametrize(
        "extra",
        [
            "CREATE INDEX t_name ON t (name)",
            "CREATE VIEW v AS SELECT name FROM t",
            "CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END",
            "ALTER TABLE t ADD COLUMN note TEXT",
        ],
    )
    def test_new_objects_and_columns_alter_it(self, extra: str):
        """Adding an index, a view, a trigger or a column changes the fingerprint."""
        assert fingerprint_of(BASE, extra) != fingerprint_of(BASE)

    def test_fingerprint_of_objects_agrees_with_the_live_fingerprint(
        self, conn: sqlite3.Connection
    ):
        """`fingerprint_of(schema_objects(conn))` equals `schema_fingerprint(conn)`."""
        assert fingerprint_of_objects([]) == EMPTY_FINGERPRINT
        for statement in (
            BASE,
            "CREATE INDEX t_name ON t (name)",
            "CREATE VIEW v AS SELECT name FROM t",
            'CREATE TABLE "odd name" (x)',
        ):
            conn.execute(statement)
            assert fingerprint_of_objects(schema_objects(conn)) == schema_fingerprint(conn)

    def test_rows_do_not_alter_it(self, conn: sqlite3.Connection):
        """Inserting and deleting rows leaves the fingerprint as it was."""
        conn.execute(BASE)
        before = schema_fingerprint(conn)
        conn.execute("INSERT INTO t (name) VALUES ('x')")
        conn.execute("PRAGMA user_version = 9")
        assert schema_fingerprint(conn) == before

    def test_schemalog_objects_are_excluded(self, tmp_path):
        """The journal's own tables and triggers (schemalog_*) are not part of the schema."""
        conn = sqlite3.connect(tmp_path / "app.db", isolation_level=None)
        conn.execute(BASE)
        before = schema_fingerprint(conn)
        store = JsonlStore(tmp_path / "app.db.journal.jsonl")
        Journal(conn, store).table.ensure()
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert {"schemalog_journal", "schemalog_meta"} <= names
        assert schema_fingerprint(conn) == before
        assert all(not o[1].startswith("schemalog_") for o in schema_objects(conn))
        store.close()
        conn.close()

    def test_sqlite_internal_objects_are_excluded(self, conn: sqlite3.Connection):
        """sqlite_stat1 (from ANALYZE) and automatic indexes do not count."""
        conn.execute("CREATE TABLE u (a TEXT UNIQUE, b INTEGER)")
        conn.execute("CREATE INDEX u_b ON u (b)")
        conn.executemany("INSERT INTO u VALUES (?, ?)", [(str(i), i) for i in range(20)])
        before = schema_fingerprint(conn)
        conn.execute("ANALYZE")
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert "sqlite_stat1" in names and "sqlite_autoindex_u_1" in names
        assert schema_fingerprint(conn) == before
        assert {o[1] for o in schema_objects(conn)} == {"u", "u_b"}

    @pytest.mark.parametrize(
        ("before", "after"),
        [
            ("CHECK (status IN ('in progress'))", "CHECK (status IN ('in  progress'))"),
            ("DEFAULT 'a,b'", "DEFAULT 'a , b'"),
            ("""DEFAULT '"quoted"'""", "DEFAULT 'quoted'"),
        ],
    )
    def test_a_changed_string_literal_alters_it(self, before: str, after: str):
        """A constraint or default whose string literal changed is a different schema."""
        template = "CREATE TABLE t (status TEXT {})"
        assert fingerprint_of(template.format(before)) != fingerprint_of(template.format(after))
