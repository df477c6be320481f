"""Tests for schemalog.engine.core.schema and schema_diff: the canonical schema, its file form,
what a step changed, the schema the journal records, and the structured diff."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemalog.engine.core.fingerprint import EMPTY_FINGERPRINT, schema_fingerprint, schema_rows
from schemalog.engine.core.schema import (
    Schema,
    SchemaFileError,
    expected_before,
    parse_schema,
    read_schema,
    recorded_schema,
    schema_changes,
)
from schemalog.engine.core.schema_diff import TableShape, diff_schemas, drift_diff
from schemalog.journal.events import Event, Kind


def build(*statements: str) -> sqlite3.Connection:
    """An in-memory database after `statements`."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    for statement in statements:
        conn.execute(statement)
    return conn


def schema_of(*statements: str) -> Schema:
    """The canonical schema after `statements`."""
    conn = build(*statements)
    try:
        return read_schema(conn)
    finally:
        conn.close()


@pytest.fixture
def conn() -> Iterator[sqlite3.Connection]:
    """An empty in-memory database."""
    c = build()
    yield c
    c.close()


NAMES = st.sampled_from(["id", "name", "email", "Age", "note", "weird name", 'q"uote'])
TYPES = st.sampled_from(
    ["", " INTEGER", " TEXT NOT NULL", " REAL DEFAULT 0", " TEXT  DEFAULT 'a  b'"]
)
SPACE = st.sampled_from([" ", "  ", "\n  ", "\t"])


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@st.composite
def schemas(draw) -> list[str]:
    """Statements building a small random schema, with random layout."""
    statements = []
    for t in range(draw(st.integers(0, 3))):
        columns = draw(st.lists(NAMES, min_size=1, max_size=4, unique_by=str.lower))
        typed = [_ident(c) + draw(TYPES) for c in columns]
        sep = "," + draw(SPACE)
        statements.append(f"CREATE TABLE t{t}{draw(SPACE)}({sep.join(typed)})")
        if draw(st.booleans()):
            unique = "UNIQUE " if draw(st.booleans()) else ""
            statements.append(f"CREATE {unique}INDEX ix{t} ON t{t} ({_ident(columns[0])})")
        if draw(st.booleans()):
            statements.append(f"CREATE VIEW v{t} AS SELECT * FROM t{t}")
    return statements


class TestCanonicalSchema:
    """The dump, the fingerprint and the file form agree."""

    @given(schemas())
    def test_fingerprint_is_the_schema_fingerprint(self, statements):
        """`Schema.fingerprint` equals the database's schema fingerprint."""
        conn = build(*statements)
        try:
            assert read_schema(conn).fingerprint == schema_fingerprint(conn)
        finally:
            conn.close()

    @given(schemas(), schemas())
    def test_text_differs_exactly_when_fingerprints_differ(self, a, b):
        """Two schemas have the same dump exactly when their fingerprints are equal."""
        one, two = schema_of(*a), schema_of(*b)
        assert (one.text() == two.text()) == (one.fingerprint == two.fingerprint)
        assert (one == two) == (one.fingerprint == two.fingerprint)
        assert bool(diff_schemas(one, two)) == (one.fingerprint != two.fingerprint)

    @given(schemas())
    def test_file_round_trip(self, statements):
        """The file text parses back to the same schema, fingerprint included."""
        schema = schema_of(*statements)
        parsed = parse_schema(schema.text())
        assert parsed == schema
        assert parsed.fingerprint == schema.fingerprint

    def test_order_and_own_tables(self):
        """Objects are ordered by type then name; schemalog's and SQLite's tables are left out."""
        schema = schema_of(
            "CREATE TABLE b (x)",
            "CREATE TABLE a (x INTEGER PRIMARY KEY AUTOINCREMENT)",
            "CREATE INDEX z ON a (x)",
            "CREATE TABLE schemalog_journal (seq)",
        )
        assert [o.key for o in schema.objects] == [("index", "z"), ("table", "a"), ("table", "b")]

    def test_layout_is_normalised_literals_are_not(self):
        """Re-indenting a statement changes nothing; the text of a literal does."""
        one = schema_of("CREATE TABLE t (a TEXT DEFAULT 'x  y' ,  b INT)")
        two = schema_of("CREATE TABLE t(\n  a TEXT DEFAULT 'x  y',\n  b INT\n)")
        three = schema_of("CREATE TABLE t (a TEXT DEFAULT 'x y', b INT)")
        assert one.text() == two.text() != three.text()

    def test_empty_schema(self, conn):
        """An empty database has the empty fingerprint and a header-only file."""
        schema = read_schema(conn)
        assert schema.fingerprint == EMPTY_FINGERPRINT
        assert parse_schema(schema.text()) == schema

    def test_header_lines(self):
        """Each object has a header naming it (and the table of an index or trigger)."""
        text = schema_of('CREATE TABLE "my t" (x)', 'CREATE INDEX i ON "my t" (x)').text()
        assert '-- table "my t"\nCREATE TABLE "my t"(x);' in text
        assert '-- index i on "my t"\n' in text


class TestParseSchema:
    """Text that is not a schema file is refused with its line."""

    def test_sql_before_the_first_header(self):
        """A statement without a header is refused."""
        with pytest.raises(SchemaFileError, match="line 1"):
            parse_schema("CREATE TABLE t (x);\n")

    def test_header_without_statement(self):
        """A header with nothing after it is refused."""
        with pytest.raises(SchemaFileError, match="no statement"):
            parse_schema("-- table t\n\n-- table u\nCREATE TABLE u(x);\n")

    def test_index_header_needs_its_table(self):
        """An index header must name its table."""
        with pytest.raises(SchemaFileError, match="names no table"):
            parse_schema("-- index i\nCREATE INDEX i ON t(x);\n")

    def test_duplicate(self):
        """The same object twice is refused."""
        with pytest.raises(SchemaFileError, match="twice"):
            parse_schema("-- table t\nCREATE TABLE t(x);\n-- table t\nCREATE TABLE t(y);\n")

    def test_hand_edited_layout(self):
        """A re-indented statement in the file still compares equal."""
        text = "-- table t\nCREATE TABLE t (\n  a INT,\n  b TEXT\n);\n"
        assert parse_schema(text) == schema_of("CREATE TABLE t(a INT, b TEXT)")


class TestSchemaChanges:
    """What a step changed, and the schema before it recovered from the schema after it."""

    def test_changes_and_expected_before(self):
        """The changes lead from the schema after `up` back to the one before it."""
        conn = build("CREATE TABLE t (a)", "CREATE INDEX gone ON t (a)")
        before = schema_rows(conn)
        fingerprint = schema_fingerprint(conn)
        conn.execute("DROP INDEX gone")
        conn.execute("ALTER TABLE t ADD COLUMN b")
        conn.execute("CREATE TABLE u (x)")
        after = schema_rows(conn)
        changes = schema_changes(before, after)
        assert [(c[0], c[1]) for c in changes] == [
            ("index", "gone"),
            ("table", "t"),
            ("table", "u"),
        ]
        assert changes[0][3] is None and changes[2][2] is None
        restored = expected_before(after, changes, fingerprint)
        assert restored is not None and restored.fingerprint == fingerprint

    def test_layout_only_is_no_change(self):
        """Objects whose text differs only in layout are not listed."""
        rows = [("table", "t", "t", "CREATE TABLE t (a)")]
        assert schema_changes(rows, [("table", "t", "t", "CREATE TABLE t(\n a\n)")]) == []

    def test_expected_before_refuses_a_wrong_story(self):
        """Changes that do not lead to the recorded fingerprint give None, not a guess."""
        rows = [("table", "t", "t", "CREATE TABLE t (a)")]
        assert expected_before(rows, [], "0" * 64) is None
        assert expected_before(rows, None, EMPTY_FINGERPRINT) is None


def _event(seq: int, kind: Kind, **data) -> Event:
    return Event(seq, f"id{seq}", "2024-01-01T00:00:00Z", "run", kind, 1, data, "p", "h")


class TestRecordedSchema:
    """The schema the journal records, folded from its events."""

    def test_fold_follows_steps_and_restores(self):
        """Steps apply their changes; a restore brings back the schema of its fingerprint."""
        one = [("table", "t", "t", "CREATE TABLE t (a)")]
        two = [*one, ("table", "u", "u", "CREATE TABLE u (b)")]
        fp1, fp2 = (
            schema_fingerprint(build(one[0][3])),
            schema_fingerprint(build(one[0][3], two[1][3])),
        )
        events = [
            _event(
                1, Kind.STEP_APPLIED, fingerprint_after=fp1, schema_changes=schema_changes([], one)
            ),
            _event(
                2, Kind.STEP_APPLIED, fingerprint_after=fp2, schema_changes=schema_changes(one, two)
            ),
        ]
        assert recorded_schema(events).fingerprint == fp2
        restored = [*events, _event(3, Kind.BACKUP_RESTORED, fingerprint=fp1)]
        assert recorded_schema(restored).fingerprint == fp1

    def test_unknown_without_details(self):
        """An old step without `schema_changes` makes the recorded schema unknown (None)."""
        fp = schema_fingerprint(build("CREATE TABLE t (a)"))
        assert recorded_schema([_event(1, Kind.STEP_APPLIED, fingerprint_after=fp)]) is None
        assert recorded_schema([]) is None

    def test_whole_schema_snapshot(self):
        """A `schema` snapshot (baseline) replaces what was known."""
        rows = [("table", "t", "t", "CREATE TABLE t (a)")]
        fp = schema_fingerprint(build(rows[0][3]))
        events = [_event(1, Kind.BASELINE_SET, fingerprint=fp, schema=schema_changes([], rows))]
        assert recorded_schema(events).fingerprint == fp

    def test_drift_diff(self):
        """drift_diff names what changed since the recorded schema."""
        rows = [("table", "t", "t", "CREATE TABLE t (a)")]
        fp = schema_fingerprint(build(rows[0][3]))
        events = [
            _event(
                1, Kind.STEP_APPLIED, fingerprint_after=fp, schema_changes=schema_changes([], rows)
            )
        ]
        live = schema_of("CREATE TABLE t (a, b)")
        assert drift_diff(events, live).lines() == ["table t: column b added"]
        assert drift_diff([], live) is None


class TestDiff:
    """The structured diff and its one-line text."""

    def test_reordered_columns(self):
        """A table re-created with its columns in another order says so, with both orders."""
        diff = diff_schemas(
            schema_of("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b TEXT)"),
            schema_of("CREATE TABLE t (id INTEGER PRIMARY KEY, b TEXT, a TEXT)"),
        )
        (obj,) = diff.objects
        assert obj.columns_reordered is not None
        assert obj.columns_reordered.expected == ("id", "a", "b")
        assert diff.lines() == ["table t: columns reordered (id, a, b → id, b, a)"]

    def test_columns_constraints_options(self):
        """Added, removed and changed columns, constraints and options are each named."""
        diff = diff_schemas(
            schema_of("CREATE TABLE t (id INT, a TEXT NOT NULL, gone INT, UNIQUE (a))"),
            schema_of("CREATE TABLE t (id INT, a TEXT, new INT, CHECK (id > 0)) STRICT"),
        )
        (obj,) = diff.objects
        assert obj.columns_added == ("new",)
        assert obj.columns_removed == ("gone",)
        assert [(c.name, c.expected, c.actual) for c in obj.columns_changed] == [
            ("a", "a TEXT NOT NULL", "a TEXT")
        ]
        assert obj.constraints_added == ("CHECK(id > 0)",)
        assert obj.constraints_removed == ("UNIQUE(a)",)
        assert obj.options == ("", "STRICT")
        assert obj.columns_reordered is None

    def test_added_removed_and_definitions(self):
        """Objects only on one side are added/removed; an index's definition is shown."""
        diff = diff_schemas(
            schema_of(
                "CREATE TABLE t (a, b)", "CREATE INDEX i ON t (a)", "CREATE VIEW v AS SELECT 1"
            ),
            schema_of("CREATE TABLE t (a, b)", "CREATE INDEX i ON t (a, b)", "CREATE TABLE u (x)"),
        )
        assert diff.lines() == [
            "index i: definition changed (CREATE INDEX i ON t(a) → CREATE INDEX i ON t(a,b))",
            "table u: added",
            "view v: removed",
        ]
        assert [o["change"] for o in diff.to_json()] == ["changed", "added", "removed"]

    def test_comments_in_create_table(self):
        """Comments inside a stored CREATE TABLE do not hide its columns."""
        shape = TableShape.parse("CREATE TABLE t (\n id INT, -- the id\n name TEXT /* n */\n)")
        assert shape is not None
        assert [c[0] for c in shape.columns] == ["id", "name"]

    def test_virtual_table_is_a_definition(self):
        """A virtual table is compared by its definition."""
        assert TableShape.parse("CREATE VIRTUAL TABLE f USING fts5(a)") is None

    def test_text_limit(self):
        """The one-line text shows the first objects and counts the rest."""
        many = schema_of(*(f"CREATE TABLE t{i} (x)" for i in range(9)))
        text = diff_schemas(Schema(), many).text(limit=2)
        assert text.startswith("table t0: added; table t1: added; and 7 more")
