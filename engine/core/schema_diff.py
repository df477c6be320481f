"""The structured difference between two schemas, and its one-line text. Pure.

`diff_schemas(expected, actual)` compares object by object (by type and name): an object only
in `actual` was `added`, one only in `expected` was `removed`, one in both with another
normalised definition `changed`. For a changed table it says which columns were added,
removed, changed (the column's definition) or reordered, which table constraints were added or
removed, and whether the options after the column list changed (`WITHOUT ROWID`, `STRICT`);
for an index, trigger or view (or a table whose definition cannot be taken apart) it gives
the two definitions. "Expected" is what the journal recorded, a schema file, or the schema
before a migration's `up`; "actual" is what the database holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from schemalog.engine.core.schema import Schema, SchemaObject, normalized, recorded_schema
from schemalog.engine.core.sqltokens import Token, span, split_top_level, tokens
from schemalog.journal.events import Event

__all__ = [
    "UNKNOWN",
    "ColumnChange",
    "ObjectDiff",
    "Reorder",
    "SchemaDiff",
    "TableShape",
    "diff_schemas",
    "drift_diff",
]

#: What a message says when the journal cannot tell which objects differ.
UNKNOWN = "which objects differ is not known (the journal holds no schema details for them)"

_CONSTRAINTS = ("CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN")
_CLIP = 120


@attrs.frozen
class TableShape:
    """A `CREATE TABLE` taken apart: columns (name, definition) in order, constraints, options."""

    columns: tuple[tuple[str, str], ...]
    constraints: tuple[str, ...]
    options: str

    @classmethod
    def parse(cls, sql: str) -> TableShape | None:
        """The shape of a `CREATE TABLE` statement; None for anything else (virtual tables)."""
        toks = tokens(sql)
        i = 1
        if not toks or not toks[0].is_("CREATE"):
            return None
        if i < len(toks) and toks[i].is_("TEMP", "TEMPORARY"):
            i += 1
        if i >= len(toks) or not toks[i].is_("TABLE"):
            return None
        opening = next((j for j in range(i, len(toks)) if _punct(toks[j], "(")), None)
        if opening is None:
            return None
        closing = _matching(toks, opening)
        if closing is None:
            return None
        columns: list[tuple[str, str]] = []
        constraints: list[str] = []
        for part in split_top_level(toks[opening + 1 : closing]):
            if part[0].is_(*_CONSTRAINTS):
                constraints.append(normalized(span(sql, part)))
            else:
                columns.append((part[0].value, normalized(span(sql, part))))
        return cls(tuple(columns), tuple(constraints), normalized(span(sql, toks[closing + 1 :])))


def _punct(tok: Token, text: str) -> bool:
    return tok.kind == "punct" and tok.text == text


def _matching(toks: list[Token], opening: int) -> int | None:
    depth = 0
    for j in range(opening, len(toks)):
        if _punct(toks[j], "("):
            depth += 1
        elif _punct(toks[j], ")"):
            depth -= 1
            if depth == 0:
                return j
    return None


@attrs.frozen
class ColumnChange:
    """A column in both schemas with another definition."""

    name: str
    expected: str
    actual: str


@attrs.frozen
class Reorder:
    """The order of the columns both schemas have, in each."""

    expected: tuple[str, ...]
    actual: tuple[str, ...]


@attrs.frozen
class ObjectDiff:
    """How one object differs: `change` is `added`, `removed` or `changed`."""

    type: str
    name: str
    change: str
    expected: str | None = None  # the normalised definition in the expected schema
    actual: str | None = None
    columns_added: tuple[str, ...] = ()
    columns_removed: tuple[str, ...] = ()
    columns_changed: tuple[ColumnChange, ...] = ()
    columns_reordered: Reorder | None = None
    constraints_added: tuple[str, ...] = ()
    constraints_removed: tuple[str, ...] = ()
    options: tuple[str, str] | None = None  # (expected, actual) when they differ

    @property
    def parts(self) -> list[str]:
        """What differs, one phrase each."""
        if self.change != "changed":
            return [self.change]
        parts = [f"column {c} added" for c in self.columns_added]
        parts += [f"column {c} removed" for c in self.columns_removed]
        parts += [
            f"column {c.name} changed ({_clip(c.expected)} → {_clip(c.actual)})"
            for c in self.columns_changed
        ]
        if self.columns_reordered is not None:
            was, now = self.columns_reordered.expected, self.columns_reordered.actual
            parts.append(f"columns reordered ({', '.join(was)} → {', '.join(now)})")
        parts += [f"constraint {_clip(c)} added" for c in self.constraints_added]
        parts += [f"constraint {_clip(c)} removed" for c in self.constraints_removed]
        if self.options is not None:
            parts.append(
                f"options changed ({self.options[0] or 'none'} → {self.options[1] or 'none'})"
            )
        if not parts:
            parts.append(f"definition changed ({_clip(self.expected)} → {_clip(self.actual)})")
        return parts

    def text(self) -> str:
        """One line: `table users: column email added, columns reordered (…)`."""
        return f"{self.type} {self.name}: {', '.join(self.parts)}"


@attrs.frozen
class SchemaDiff:
    """Every object that differs, ordered by (type, name); empty when the schemas are equal."""

    objects: tuple[ObjectDiff, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.objects)

    def lines(self) -> list[str]:
        """One line per object."""
        return [o.text() for o in self.objects]

    def text(self, limit: int = 6) -> str:
        """One line for messages: the first `limit` objects, then how many more."""
        shown = [o.text() for o in self.objects[:limit]]
        more = len(self.objects) - limit
        if more > 0:
            shown.append(f"and {more} more object(s) (`schemalog schema --diff` lists them)")
        return "; ".join(shown) if shown else "no object differs"

    def to_json(self) -> list[dict[str, Any]]:
        """The objects as JSON-ready dicts (for event payloads and `--json`)."""
        return [attrs.asdict(o, recurse=True) for o in self.objects]


def _clip(text: str | None) -> str:
    text = text or ""
    return text if len(text) <= _CLIP else text[: _CLIP - 1] + "…"


def diff_schemas(expected: Schema, actual: Schema) -> SchemaDiff:
    """The objects that differ between `expected` and `actual`. Pure."""
    old, new = expected.by_key(), actual.by_key()
    found: list[ObjectDiff] = []
    for key in sorted(old.keys() | new.keys()):
        was, now = old.get(key), new.get(key)
        if was is None and now is not None:
            found.append(ObjectDiff(now.type, now.name, "added", actual=now.sql))
        elif now is None and was is not None:
            found.append(ObjectDiff(was.type, was.name, "removed", expected=was.sql))
        elif was is not None and now is not None and was != now:
            found.append(_changed(was, now))
    return SchemaDiff(tuple(found))


def drift_diff(events: Iterable[Event], live: Schema) -> SchemaDiff | None:
    """How `live` differs from the schema the journal `events` last recorded. Pure.

    None when the journal cannot tell the recorded schema object by object.
    """
    recorded = recorded_schema(events)
    return diff_schemas(recorded, live) if recorded is not None else None


def _changed(was: SchemaObject, now: SchemaObject) -> ObjectDiff:
    plain = ObjectDiff(was.type, was.name, "changed", expected=was.sql, actual=now.sql)
    if was.type != "table":
        return plain
    old, new = TableShape.parse(was.source), TableShape.parse(now.source)
    if old is None or new is None:
        return plain
    old_cols = {n.lower(): (n, d) for n, d in old.columns}
    new_cols = {n.lower(): (n, d) for n, d in new.columns}
    common_old = [n for n, _ in old.columns if n.lower() in new_cols]
    common_new = [n for n, _ in new.columns if n.lower() in old_cols]
    reordered = None
    if [n.lower() for n in common_old] != [n.lower() for n in common_new]:
        reordered = Reorder(tuple(n for n, _ in old.columns), tuple(n for n, _ in new.columns))
    changed = tuple(
        ColumnChange(name, old_cols[name.lower()][1], new_cols[name.lower()][1])
        for name in common_new
        if _definition(old_cols[name.lower()]) != _definition(new_cols[name.lower()])
    )
    return attrs.evolve(
        plain,
        columns_added=tuple(n for n, _ in new.columns if n.lower() not in old_cols),
        columns_removed=tuple(n for n, _ in old.columns if n.lower() not in new_cols),
        columns_changed=changed,
        columns_reordered=reordered,
        constraints_added=tuple(c for c in new.constraints if c not in old.constraints),
        constraints_removed=tuple(c for c in old.constraints if c not in new.constraints),
        options=(old.options, new.options) if old.options != new.options else None,
    )


def _definition(column: tuple[str, str]) -> str:
    """A column's definition without its name (the name is matched case-insensitively)."""
    _name, definition = column
    rest = tokens(definition)[1:]
    return normalized(span(definition, rest))
