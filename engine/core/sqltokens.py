"""SQL tokens: just enough of SQLite's lexer to read a statement's shape. Pure.

`tokens(sql)` yields the words, quoted names, string literals and punctuation of one statement
with whitespace and comments dropped, so the schema diff can take a `CREATE TABLE` apart into
columns and constraints, and lint can tell a `DROP TABLE users` from a string that mentions one.
It is not a parser: it never decides whether a statement is valid (SQLite does, when it runs).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import attrs

__all__ = ["Token", "name_of", "span", "split_top_level", "tokens", "words"]

_TOKEN = re.compile(
    r"""
      (?P<space>\s+)
    | (?P<comment>--[^\n]*|/\*.*?(?:\*/|\Z))
    | (?P<string>'(?:[^']|'')*(?:'|\Z))
    | (?P<quoted>"(?:[^"]|"")*(?:"|\Z)|`(?:[^`]|``)*(?:`|\Z)|\[[^\]]*(?:\]|\Z))
    | (?P<punct>[(),;.])
    | (?P<word>[^\s(),;.'"`\[]+)
    """,
    re.VERBOSE | re.DOTALL,
)


@attrs.frozen
class Token:
    """One token: its kind (`word`, `quoted`, `string`, `punct`), its text as written, and
    where it is in the statement (`start`, `end`: offsets into the text given to `tokens`)."""

    kind: str
    text: str
    start: int = 0
    end: int = 0

    @property
    def upper(self) -> str:
        """The text in upper case (keywords are compared this way)."""
        return self.text.upper()

    @property
    def value(self) -> str:
        """A name's value: the text without its quotes (`"a""b"` -> `a"b`); else the text."""
        if self.kind != "quoted":
            return self.text
        body = self.text[1:-1] if len(self.text) >= 2 else self.text[1:]
        if self.text[0] == '"':
            return body.replace('""', '"')
        if self.text[0] == "`":
            return body.replace("``", "`")
        return body

    def is_(self, *keywords: str) -> bool:
        """Whether this is a bare word equal (case-insensitively) to one of `keywords`."""
        return self.kind == "word" and self.upper in keywords


def tokens(sql: str) -> list[Token]:
    """The tokens of `sql`, whitespace and comments left out. Never raises."""
    found = []
    for match in _TOKEN.finditer(sql):
        kind = match.lastgroup
        if kind in ("space", "comment"):
            continue
        found.append(Token(str(kind), match.group(), match.start(), match.end()))
    return found


def words(toks: Sequence[Token]) -> list[str]:
    """The upper-cased text of every token (handy for matching keyword sequences)."""
    return [t.upper for t in toks]


def name_of(tok: Token | None) -> str | None:
    """The object name a token spells (a bare word or a quoted name), or None."""
    if tok is None or tok.kind not in ("word", "quoted"):
        return None
    return tok.value


def split_top_level(toks: Sequence[Token]) -> list[list[Token]]:
    """`toks` cut at every comma outside parentheses (the parts of a column list)."""
    parts: list[list[Token]] = [[]]
    depth = 0
    for tok in toks:
        if tok.kind == "punct":
            if tok.text == "(":
                depth += 1
            elif tok.text == ")":
                depth -= 1
            elif tok.text == "," and depth == 0:
                parts.append([])
                continue
        parts[-1].append(tok)
    return [p for p in parts if p]


def span(sql: str, toks: Sequence[Token]) -> str:
    """The text of `sql` from the first of `toks` to the end of the last ('' for none)."""
    return sql[toks[0].start : toks[-1].end] if toks else ""
