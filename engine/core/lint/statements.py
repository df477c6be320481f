"""What one migration statement does, as lint needs to know it: its kind and its targets. Pure.

`classify(sql)` reads the leading keywords of a statement (`DROP TABLE users`,
`ALTER TABLE users DROP COLUMN email`, `CREATE UNIQUE INDEX ... ON users(email)`, ...) with the
tokenizer of `engine.core.sqltokens`, so names in strings and comments never match. Anything it
does not recognise is kind `other`; SQLite remains the judge of what is valid.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import attrs

from schemalog.engine.core.sqltokens import Token, name_of, span, tokens

__all__ = ["Statement", "classify", "mentions"]

_TRANSACTION = ("BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE")
_RANDOM = ("RANDOM", "RANDOMBLOB")
_CURRENT = ("CURRENT_TIMESTAMP", "CURRENT_DATE", "CURRENT_TIME")
_WRITES = ("insert", "update", "delete", "create_table_as")


@attrs.frozen
class Statement:
    """One statement: `kind`, the table it acts on, and the details of its kind."""

    sql: str
    position: int
    kind: str
    table: str | None = None
    column: str | None = None  # drop/add/rename column: the column
    new_name: str | None = None  # rename: the new name
    index_columns: str | None = None  # create (unique) index: the text inside the parentheses
    index_where: str | None = None  # partial index: the WHERE condition
    not_null_without_default: bool = False  # add column
    pragma: str | None = None  # pragma: its name, lower-case

    @property
    def writes_rows(self) -> bool:
        """Whether the statement writes rows (where an inlined value lands in the data)."""
        return self.kind in _WRITES

    def non_deterministic(self) -> list[str]:
        """The non-deterministic values it inlines into rows: random(), the current time."""
        if not self.writes_rows:
            return []
        toks = tokens(self.sql)
        found: list[str] = []
        for i, tok in enumerate(toks):
            following = toks[i + 1] if i + 1 < len(toks) else None
            if tok.is_(*_RANDOM) and following is not None and following.text == "(":
                found.append(f"{tok.text.lower()}()")
            elif tok.is_(*_CURRENT):
                found.append(tok.upper)
            elif tok.kind == "string" and tok.text.lower() == "'now'":
                found.append("'now'")
            elif tok.is_("NOW") and following is not None and following.text == "(":
                found.append("now()")
        return list(dict.fromkeys(found))


def mentions(sql: str, name: str) -> bool:
    """Whether the statement `sql` names `name` (as a word or quoted name, any case)."""
    wanted = name.lower()
    return any(t.kind in ("word", "quoted") and t.value.lower() == wanted for t in tokens(sql))


def _qualified(toks: Sequence[Token], i: int) -> tuple[str | None, int]:
    """The (possibly `schema.`-qualified) name at `toks[i]`, and the index after it."""
    name = name_of(toks[i]) if i < len(toks) else None
    if i + 2 < len(toks) and toks[i + 1].text == ".":
        return name_of(toks[i + 2]), i + 3
    return name, i + 1


def _skip(toks: Sequence[Token], i: int, *words: str) -> int:
    """`i` moved past the keyword sequence `words` when it is there (e.g. IF NOT EXISTS)."""
    if all(i + k < len(toks) and toks[i + k].is_(w) for k, w in enumerate(words)):
        return i + len(words)
    return i


def classify(sql: str, position: int = 0) -> Statement:
    """The kind and targets of the statement `sql` (1-based `position` in its step). Pure."""
    toks = tokens(sql)
    plain = Statement(sql, position, "other")
    if not toks:
        return plain
    head = toks[0].upper
    if head in _TRANSACTION:
        return attrs.evolve(plain, kind="transaction")
    if head == "VACUUM":
        return attrs.evolve(plain, kind="vacuum")
    if head == "PRAGMA" and len(toks) > 1:
        name, _ = _qualified(toks, 1)
        return attrs.evolve(plain, kind="pragma", pragma=(name or "").lower())
    if head == "DROP" and len(toks) > 2 and toks[1].is_("TABLE"):
        table, _ = _qualified(toks, _skip(toks, 2, "IF", "EXISTS"))
        return attrs.evolve(plain, kind="drop_table", table=table)
    if head == "ALTER" and len(toks) > 3 and toks[1].is_("TABLE"):
        return _alter(plain, toks)
    if head == "CREATE":
        return _create(plain, toks)
    if head in ("INSERT", "REPLACE"):
        into = next((i for i, t in enumerate(toks) if t.is_("INTO")), None)
        table = _qualified(toks, into + 1)[0] if into is not None else None
        return attrs.evolve(plain, kind="insert", table=table)
    if head == "UPDATE" and len(toks) > 1:
        i = 3 if toks[1].is_("OR") else 1
        return attrs.evolve(plain, kind="update", table=_qualified(toks, i)[0])
    if head == "DELETE" and len(toks) > 2 and toks[1].is_("FROM"):
        return attrs.evolve(plain, kind="delete", table=_qualified(toks, 2)[0])
    return plain


def _alter(plain: Statement, toks: list[Token]) -> Statement:
    table, i = _qualified(toks, 2)
    if i >= len(toks):
        return attrs.evolve(plain, table=table)
    verb = toks[i].upper
    if verb == "DROP":
        j = _skip(toks, i + 1, "COLUMN")
        column = name_of(toks[j]) if j < len(toks) else None
        return attrs.evolve(plain, kind="drop_column", table=table, column=column)
    if verb == "ADD":
        j = _skip(toks, i + 1, "COLUMN")
        column = name_of(toks[j]) if j < len(toks) else None
        rest = [t.upper for t in toks[j + 1 :]]
        not_null = any(a == "NOT" and b == "NULL" for a, b in itertools.pairwise(rest))
        return attrs.evolve(
            plain,
            kind="add_column",
            table=table,
            column=column,
            not_null_without_default=not_null and "DEFAULT" not in rest,
        )
    if verb == "RENAME":
        if i + 2 < len(toks) and toks[i + 1].is_("TO"):
            return attrs.evolve(
                plain, kind="rename_table", table=table, new_name=name_of(toks[i + 2])
            )
        j = _skip(toks, i + 1, "COLUMN")
        if j + 2 < len(toks) and toks[j + 1].is_("TO"):
            return attrs.evolve(
                plain,
                kind="rename_column",
                table=table,
                column=name_of(toks[j]),
                new_name=name_of(toks[j + 2]),
            )
    return attrs.evolve(plain, table=table)


def _create(plain: Statement, toks: list[Token]) -> Statement:
    i = 1
    unique = toks[i].is_("UNIQUE") if i < len(toks) else False
    i += 1 if unique else 0
    if i < len(toks) and toks[i].is_("TEMP", "TEMPORARY"):
        i += 1
    if i < len(toks) and toks[i].is_("TABLE"):
        table, _ = _qualified(toks, _skip(toks, i + 1, "IF", "NOT", "EXISTS"))
        as_select = any(t.is_("AS") for t in toks) and not any(t.text == "(" for t in toks[:6])
        return attrs.evolve(
            plain, kind="create_table_as" if as_select else "create_table", table=table
        )
    if i >= len(toks) or not toks[i].is_("INDEX"):
        return plain
    on = next((k for k in range(i, len(toks)) if toks[k].is_("ON")), None)
    if on is None:
        return attrs.evolve(plain, kind="create_index")
    table, j = _qualified(toks, on + 1)
    columns = where = None
    if j < len(toks) and toks[j].text == "(":
        depth, k = 0, j
        for k in range(j, len(toks)):
            if toks[k].text == "(":
                depth += 1
            elif toks[k].text == ")":
                depth -= 1
                if depth == 0:
                    break
        columns = span(plain.sql, toks[j + 1 : k])
        rest = toks[k + 1 :]
        if rest and rest[0].is_("WHERE"):
            where = span(plain.sql, rest[1:])
    return attrs.evolve(
        plain,
        kind="create_unique_index" if unique else "create_index",
        table=table,
        index_columns=columns,
        index_where=where,
    )
