"""Splitting an SQL script into the statements SQLite would execute one by one.

`Connection.executescript()` commits any open transaction first, so the executor runs
a script statement by statement inside its own transaction. SQLite itself decides where
a statement ends: `sqlite3.complete_statement()` knows about strings, quoted
identifiers, comments and the `BEGIN ... END;` body of `CREATE TRIGGER`.

The functions here are pure and only read their argument.
"""

from __future__ import annotations

import re
import sqlite3

__all__ = ["SQL_WHITESPACE", "find_untakeable", "is_blank_sql", "split_statements"]

#: The characters SQLite's tokenizer treats as whitespace (no vertical tab, no Unicode spaces).
SQL_WHITESPACE = " \t\n\f\r"

# The lexical regions inside which a `;` cannot end a statement, with the same rules as
# SQLite's `sqlite3_complete()`: a doubled quote inside a string reads as two adjacent
# strings, `--` runs to a newline, and an unterminated string, quoted identifier or `/*`
# comment runs to the end of the text. Only the `;` outside them are candidates, so each
# character is scanned once; `complete_statement()` still decides at every candidate.
_CANDIDATES = re.compile(
    r"""
      '[^']*(?:'|\Z)
    | "[^"]*(?:"|\Z)
    | `[^`]*(?:`|\Z)
    | \[[^\]]*(?:\]|\Z)
    | --[^\n]*
    | /\*.*?(?:\*/|\Z)
    | (?P<semicolon>;)
    """,
    re.VERBOSE | re.DOTALL,
)

# Whitespace, comments and empty statements, matched possessively so that a failing match
# cannot backtrack through long runs of dashes or semicolons.
_BLANK = re.compile(
    r"(?:[ \t\n\f\r]++|--[^\n]*+|/\*.*?(?:\*/|\Z)|;)*+",
    re.DOTALL,
)


# Characters SQLite's C API cannot receive in a statement: NUL ends the C string, and a
# lone surrogate cannot be encoded to UTF-8.
_UNTAKEABLE = re.compile("[\x00\ud800-\udfff]")


def _describe(char: str) -> str:
    return "a NUL character" if char == "\x00" else f"a lone surrogate (U+{ord(char):04X})"


# The whitespace and complete comments before a statement's first token.
_LEADING = re.compile(r"(?:[ \t\n\f\r]++|--[^\n]*+|/\*.*?\*/)*+", re.DOTALL)


def find_untakeable(text: str) -> str | None:
    """Describe the first character SQLite cannot take (NUL, lone surrogate) in `text`, or None.

    The description reads like "a NUL character at offset 9". Never raises.
    """
    bad = _UNTAKEABLE.search(text)
    if bad is None:
        return None
    return f"{_describe(bad.group())} at offset {bad.start()}"


def is_blank_sql(text: str) -> bool:
    """Return True when `text` holds no SQL statement.

    Blank means only SQLite whitespace, `--` and `/* */` comments, and empty statements
    (bare `;`). Never raises.
    """
    return _BLANK.fullmatch(text) is not None


def split_statements(sql: str) -> list[str]:
    """Split `sql` into its complete statements, in order, each from its first token to its end.

    A statement ends at the first `;` where `sqlite3.complete_statement()` says the text
    since the previous statement is complete, so `;` inside strings, quoted identifiers,
    comments and trigger bodies do not split. Whitespace and comments before a statement's
    first token and whitespace after its end are dropped (comments inside it stay), so a
    statement starts with its keyword; chunks holding only whitespace, comments or bare `;`
    are dropped. Text after the last complete statement (a final statement without `;`,
    or an unterminated string or trigger) is returned as one last statement unless it is
    blank, for SQLite to accept or reject when it runs. Line endings are kept as given.

    Raises ValueError when `sql` contains a NUL character or a lone surrogate, which
    SQLite cannot take.

    Cost is linear in the length of `sql`, except that a trigger body is rescanned once
    per statement inside it.
    """
    problem = find_untakeable(sql)
    if problem is not None:
        msg = f"SQL contains {problem}"
        raise ValueError(msg)
    statements: list[str] = []
    start = 0
    for match in _CANDIDATES.finditer(sql):
        if match.lastgroup != "semicolon":
            continue
        end = match.end()
        chunk = sql[start:end]
        if sqlite3.complete_statement(chunk):
            _keep(statements, chunk)
            start = end
    _keep(statements, sql[start:])
    return statements


def _keep(statements: list[str], chunk: str) -> None:
    """Append `chunk`, from its first token on, to `statements` unless it holds no statement."""
    if not is_blank_sql(chunk):
        # The pattern matches (maybe empty) at offset 0, so this removes only the lead.
        statements.append(_LEADING.sub("", chunk, count=1).rstrip(SQL_WHITESPACE))
