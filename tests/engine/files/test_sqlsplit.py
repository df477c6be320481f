"""Tests for schemalog.engine.files.sqlsplit: splitting scripts into statements and recognising blank SQL."""

from __future__ import annotations

import sqlite3
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemalog.engine.files.sqlsplit import find_untakeable, is_blank_sql, split_statements

WHITESPACE = " \t\n\f\r"


def strip_lead(chunk: str) -> str:
    """Drop whitespace and complete comments before the first token, and whitespace after."""
    while True:
        chunk = chunk.lstrip(WHITESPACE)
        if chunk.startswith("--"):
            newline = chunk.find("\n")
            chunk = "" if newline < 0 else chunk[newline + 1 :]
        elif chunk.startswith("/*") and chunk.find("*/", 2) >= 0:
            chunk = chunk[chunk.find("*/", 2) + 2 :]
        else:
            return chunk.rstrip(WHITESPACE)


def reference_split(sql: str) -> list[str]:
    """The slow, obviously right splitter: test completeness after every character."""
    statements: list[str] = []
    chunk = ""
    for char in sql:
        chunk += char
        if sqlite3.complete_statement(chunk):
            if not is_blank_sql(chunk):
                statements.append(strip_lead(chunk))
            chunk = ""
    if not is_blank_sql(chunk):
        statements.append(strip_lead(chunk))
    return statements


TRIGGER = (
    "CREATE TRIGGER audit AFTER INSERT ON users BEGIN\n"
    "  INSERT INTO log VALUES ('insert; user', new.id);\n"
    "  UPDATE counters SET n = n + 1;\n"
    "END;"
)


class TestSplitStatements:
    def test_simple_statements(self) -> None:
        """Each semicolon-terminated statement comes back on its own, stripped."""
        sql = "CREATE TABLE a (x);\n  INSERT INTO a VALUES (1);\n"
        assert split_statements(sql) == ["CREATE TABLE a (x);", "INSERT INTO a VALUES (1);"]

    def test_trigger_body_is_one_statement(self) -> None:
        """The statements inside a trigger's BEGIN ... END do not split it."""
        sql = f"CREATE TABLE log (m, id);\n{TRIGGER}\nSELECT 1;"
        assert split_statements(sql) == ["CREATE TABLE log (m, id);", TRIGGER, "SELECT 1;"]

    def test_temp_trigger_is_one_statement(self) -> None:
        """A TEMP trigger's body does not split it either."""
        sql = "CREATE TEMP TRIGGER t AFTER DELETE ON a BEGIN DELETE FROM b; END; SELECT 2;"
        assert split_statements(sql) == [
            "CREATE TEMP TRIGGER t AFTER DELETE ON a BEGIN DELETE FROM b; END;",
            "SELECT 2;",
        ]

    @pytest.mark.parametrize(
        "statement",
        [
            "SELECT 'a;b';",
            "SELECT 'it''s; fine';",
            'SELECT "col;umn" FROM t;',
            "SELECT [col;umn] FROM t;",
            "SELECT `col;umn` FROM t;",
            "SELECT 1 /* no; split */ + 1;",
            "SELECT 1 -- no; split\n + 1;",
            "SELECT x'3b';",
        ],
    )
    def test_semicolon_inside_token_does_not_split(self, statement: str) -> None:
        """A `;` inside a string, quoted identifier or comment is not a statement end."""
        assert split_statements(f"{statement}\nSELECT 2;") == [statement, "SELECT 2;"]

    def test_crlf_line_endings(self) -> None:
        """CRLF line endings split like LF ones, and are kept inside statements."""
        sql = "CREATE TABLE a (x);\r\nINSERT INTO a\r\nVALUES (1);\r\n"
        assert split_statements(sql) == ["CREATE TABLE a (x);", "INSERT INTO a\r\nVALUES (1);"]

    def test_comment_with_crlf_ends_at_line_end(self) -> None:
        """A `--` comment on a CRLF line ends at the line end, not the script end."""
        sql = "SELECT 1; -- one;\r\nSELECT 2;\r\n"
        assert split_statements(sql) == ["SELECT 1;", "SELECT 2;"]

    def test_final_statement_without_semicolon_is_kept(self) -> None:
        """Text after the last `;` is a statement of its own."""
        assert split_statements("SELECT 1;\nSELECT 2\n") == ["SELECT 1;", "SELECT 2"]

    def test_single_statement_without_semicolon(self) -> None:
        """A script of one statement without `;` is that statement."""
        assert split_statements("  ALTER TABLE a ADD b  ") == ["ALTER TABLE a ADD b"]

    def test_comment_only_chunks_are_dropped(self) -> None:
        """Chunks holding only comments, whitespace or bare `;` yield no statement."""
        sql = "-- header; with semicolon\n;\n/* block; */ ;\nSELECT 1;\n-- trailer;\n  \n"
        assert split_statements(sql) == ["SELECT 1;"]

    def test_leading_comments_are_dropped(self) -> None:
        """Comments before a statement's first token are dropped; it starts with its keyword."""
        sql = "SELECT 1;\n-- the second; really\n/* block; */ /**/\tCOMMIT /* kept */ ;"
        assert split_statements(sql) == ["SELECT 1;", "COMMIT /* kept */ ;"]

    def test_trailing_comment_of_final_statement_is_kept(self) -> None:
        """A comment after a final statement without `;` stays part of it."""
        assert split_statements("-- lead\nSELECT 2 -- tail") == ["SELECT 2 -- tail"]

    @pytest.mark.parametrize("sql", ["", "   \n\t", "-- only a comment", "/* open comment ;"])
    def test_blank_script_has_no_statements(self, sql: str) -> None:
        """A script without statements splits into nothing."""
        assert split_statements(sql) == []

    def test_unterminated_string_is_one_final_statement(self) -> None:
        """An unterminated string swallows the rest, for SQLite to reject when it runs."""
        sql = "SELECT 1;\nSELECT 'oops; SELECT 2;"
        assert split_statements(sql) == ["SELECT 1;", "SELECT 'oops; SELECT 2;"]

    def test_unterminated_bracket_is_one_final_statement(self) -> None:
        """An unterminated `[` identifier swallows the rest."""
        assert split_statements("SELECT [a; SELECT [b;") == ["SELECT [a; SELECT [b;"]

    def test_unterminated_trigger_is_one_final_statement(self) -> None:
        """A trigger without END is returned whole, not cut at its inner `;`."""
        sql = "CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; SELECT 2;"
        assert split_statements(sql) == [sql]

    def test_statements_execute_one_by_one(self) -> None:
        """Executing the split statements one at a time builds the script's schema."""
        sql = (
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);\n"
            "CREATE TABLE log (m, id);\nCREATE TABLE counters (n);\n"
            "INSERT INTO counters VALUES (0);\n"
            f"{TRIGGER}\n"
            "INSERT INTO users (name) VALUES ('a;b');"
        )
        conn = sqlite3.connect(":memory:")
        for statement in split_statements(sql):
            conn.execute(statement)
        assert conn.execute("SELECT n FROM counters").fetchone() == (1,)
        assert conn.execute("SELECT m FROM log").fetchone() == ("insert; user",)

    def test_nul_character_is_refused(self) -> None:
        """A NUL character, which SQLite cannot take, raises ValueError naming its offset."""
        with pytest.raises(ValueError, match="offset 9"):
            split_statements("SELECT 1;\x00")

    def test_lone_surrogate_is_refused(self) -> None:
        """A lone surrogate, which cannot be encoded, raises ValueError naming it."""
        with pytest.raises(ValueError, match="surrogate \\(U\\+DC00\\) at offset 1"):
            split_statements("x\udc00;")

    def test_thousand_statements_split_in_milliseconds(self) -> None:
        """A 1000-statement script splits fast (no per-character completeness test)."""
        sql = "\n".join(
            f"INSERT INTO t VALUES ({i}, 'a;b', \"c;d\"); -- note {i};" for i in range(1000)
        )
        started = time.perf_counter()
        statements = split_statements(sql)
        elapsed = time.perf_counter() - started
        assert len(statements) == 1000
        assert elapsed < 0.25  # about 3 ms here; generous for loaded CI machines

    def test_many_semicolons_in_one_string_stay_linear(self) -> None:
        """A long string full of `;` is scanned once, not once per `;`."""
        sql = "INSERT INTO t VALUES ('" + "x;" * 100_000 + "');"
        started = time.perf_counter()
        assert split_statements(sql) == [sql]
        assert time.perf_counter() - started < 0.25


class TestFindUntakeable:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("SELECT 1", None),
            ("", None),
            ("ab\x00", "a NUL character at offset 2"),
            ("\ud83d", "a lone surrogate (U+D83D) at offset 0"),
            ("\U0001f600", None),
        ],
    )
    def test_describes_first_bad_character(self, text: str, expected: str | None) -> None:
        """NUL and lone surrogates are found and described; other text passes."""
        assert find_untakeable(text) == expected


class TestIsBlankSql:
    @pytest.mark.parametrize(
        "text",
        ["", " \t\r\n\f", "-- c", "-- a;\n-- b", "/* x */", "/* open", ";", " ; -- x\n;"],
    )
    def test_blank(self, text: str) -> None:
        """Whitespace, comments and bare semicolons are blank."""
        assert is_blank_sql(text)

    @pytest.mark.parametrize(
        "text", ["SELECT 1", "-- c\nx", "- x", "/ x", "'str'", "\xa0", "\v", "/* a */ b"]
    )
    def test_not_blank(self, text: str) -> None:
        """Anything SQLite would read as a token is not blank."""
        assert not is_blank_sql(text)

    def test_long_dash_run_fails_fast(self) -> None:
        """A long comment of dashes followed by SQL is decided without backtracking blow-up."""
        text = "-" * 50_000 + "\nx"
        started = time.perf_counter()
        assert not is_blank_sql(text)
        assert time.perf_counter() - started < 0.25


# --- properties ------------------------------------------------------------------------

_WORDS = st.sampled_from(["SELECT", "1", "x", "+", ",", "(", ")", "AS", "y", "FROM", "t"])
_STRING_TEXT = st.text(alphabet=st.sampled_from('ab ;-*/"`[]\n'), max_size=8)
_COMMENT_TEXT = st.text(alphabet=st.sampled_from("ab ;'\"`[*"), max_size=8)


@st.composite
def _token(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["word", "string", "ident", "line", "block"]))
    if kind == "word":
        return draw(_WORDS)
    if kind == "string":
        return "'" + draw(_STRING_TEXT).replace("'", "''") + "'"
    if kind == "ident":
        return '"' + draw(_STRING_TEXT).replace('"', '""') + '"'
    if kind == "line":
        return "--" + draw(_COMMENT_TEXT).replace("\n", " ") + "\n"
    return "/*" + draw(_COMMENT_TEXT).replace("*", "") + "*/"


@st.composite
def _statement(draw: st.DrawFn) -> str:
    """A complete statement: a keyword, then tokens with `;` hidden in strings and comments."""
    tokens = draw(st.lists(_token(), max_size=6))
    if draw(st.booleans()):
        # An END outside a trigger ends nothing.
        tokens.append("CASE WHEN 1 THEN 'a;' END")
    return "SELECT " + " ".join(tokens) + " ;"


_SEPARATORS = st.sampled_from(["\n", "\r\n", " ", "\n\n", "\t", "\r\n\r\n"])
_SQL_ALPHABET = st.sampled_from(
    [
        *("'", '"', "`", "[", "]", ";", "-", "--", "/*", "*/", "\n", "\r\n", " ", "a", "x'"),
        *("CREATE TRIGGER t AFTER INSERT ON a BEGIN ", "END", " BEGIN ", "SELECT 1", "CASE"),
    ]
)


class TestSplitProperties:
    @given(st.lists(_statement(), max_size=8), _SEPARATORS)
    def test_join_then_split_round_trips(self, statements: list[str], sep: str) -> None:
        """Joining statements (hiding `;` in strings and comments) and splitting gives them back."""
        assert split_statements(sep.join(statements)) == statements

    @given(st.lists(_statement(), min_size=1, max_size=6), _COMMENT_TEXT)
    def test_comments_between_statements_are_dropped(
        self, statements: list[str], comment: str
    ) -> None:
        """Comments between statements (holding `;`) are dropped; the statements come back."""
        separator = f"\n-- {comment.replace(chr(10), ' ')}\n/* {comment.replace('*', '')} */\n"
        assert split_statements(separator + separator.join(statements) + separator) == statements

    @given(st.lists(_SQL_ALPHABET, max_size=25).map("".join))
    def test_each_statement_splits_into_itself(self, sql: str) -> None:
        """Splitting any returned statement again gives back exactly that statement."""
        for statement in split_statements(sql):
            assert split_statements(statement) == [statement]

    @given(st.lists(_SQL_ALPHABET, max_size=25).map("".join))
    def test_agrees_with_per_character_reference(self, sql: str) -> None:
        """The fast splitter cuts exactly where a per-character completeness test would."""
        assert split_statements(sql) == reference_split(sql)

    @given(
        st.text(
            st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), max_size=40
        )
    )
    def test_arbitrary_text_agrees_with_reference(self, sql: str) -> None:
        """On arbitrary text the fast splitter still agrees with the reference."""
        assert split_statements(sql) == reference_split(sql)
