"""The canonical schema: what `schemalog schema` prints, what a schema file holds, and what the
journal says the schema was. Pure, except `read_schema`, which reads the connection it is given.

A schema is the application's objects (tables, indexes, triggers, views) ordered by type, then
name, each one statement normalised exactly as the fingerprint normalises it
(`engine.core.fingerprint.normalize_sql`); schemalog's own tables and SQLite's internal ones are
left out. So `Schema.fingerprint` is the schema fingerprint, and two schemas have the same
text exactly when their fingerprints are equal: "fingerprints differ" and "the dump differs"
never disagree.

The text form (a schema file) gives each object a header line, then its statement:

    -- schemalog schema: 2 objects, by type then name
    -- fingerprint 3f2a…

    -- index users_email on users
    CREATE UNIQUE INDEX users_email ON users(email);

    -- table users
    CREATE TABLE users(id INTEGER PRIMARY KEY,email TEXT);

What the journal says the schema was (`recorded_schema`) is folded from the `schema_changes`
of the events that record a schema (`step_applied`, `step_reverted`, `drift_detected` when
allowed): each holds, for every object the step added, removed or changed, its definition
before and after; `baseline_set` (and a `drift_detected` whose recorded schema was unknown)
holds the whole schema as `schema`, in the same form, as changes from an empty schema. The fold checks itself against the recorded fingerprints and answers None
when the events do not tell the whole story (journals written before `schema_changes`).
"""

from __future__ import annotations

import functools
import re
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from schemalog.engine.core.fingerprint import (
    EMPTY_FINGERPRINT,
    fingerprint_rows,
    normalize_sql,
    schema_rows,
)
from schemalog.journal.events import Event, Kind

__all__ = [
    "Row",
    "Schema",
    "SchemaChanges",
    "SchemaFileError",
    "SchemaObject",
    "expected_before",
    "parse_schema",
    "read_schema",
    "recorded_schema",
    "schema_changes",
    "schema_from_rows",
]

#: One row of `sqlite_master` as schemalog reads it: (type, name, table, sql as stored).
Row = tuple[str, str, str, "str | None"]
#: The `schema_changes` payload: [type, name, [table, sql] before or null, ... after or null].
SchemaChanges = list[list[Any]]

_TYPES = ("index", "table", "trigger", "view")
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_NAME = r'(?:[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"]|"")*")'
_HEADER = re.compile(rf"^-- ({'|'.join(_TYPES)}) ({_NAME})(?: on ({_NAME}))?[ \t]*$")

normalized = functools.lru_cache(maxsize=1 << 16)(normalize_sql)


class SchemaFileError(ValueError):
    """Raised by `parse_schema` for text that is not a schema file (names the line)."""


@attrs.frozen
class SchemaObject:
    """One object of a schema: `sql` is normalised (compared); `raw` is as SQLite stores it."""

    type: str
    name: str
    table: str
    sql: str
    raw: str = attrs.field(default="", eq=False, repr=False)

    @property
    def key(self) -> tuple[str, str]:
        """(type, name): what identifies the object."""
        return (self.type, self.name)

    @property
    def source(self) -> str:
        """The definition to take apart (the stored text, comments and all, when known)."""
        return self.raw or self.sql

    def header(self) -> str:
        """The object's header line in a schema file."""
        line = f"-- {self.type} {_quote(self.name)}"
        if self.type in ("index", "trigger"):
            line += f" on {_quote(self.table)}"
        return line


def _sorted(objects: Iterable[SchemaObject]) -> tuple[SchemaObject, ...]:
    return tuple(sorted(objects, key=lambda o: o.key))


@attrs.frozen
class Schema:
    """The canonical schema: objects ordered by (type, name)."""

    objects: tuple[SchemaObject, ...] = attrs.field(default=(), converter=_sorted)

    @property
    def fingerprint(self) -> str:
        """The schema fingerprint (the same as `schema_fingerprint` of the database)."""
        return fingerprint_rows((o.type, o.name, o.table, o.sql) for o in self.objects)

    def rows(self) -> list[Row]:
        """The objects as `schema_rows` gives them (the stored text when known)."""
        return [(o.type, o.name, o.table, o.source) for o in self.objects]

    def by_key(self) -> dict[tuple[str, str], SchemaObject]:
        """The objects keyed by (type, name)."""
        return {o.key: o for o in self.objects}

    def __len__(self) -> int:
        return len(self.objects)

    def text(self) -> str:
        """The schema file text (see the module docstring)."""
        noun = "object" if len(self.objects) == 1 else "objects"
        lines = [
            f"-- schemalog schema: {len(self.objects)} {noun}, by type then name",
            f"-- fingerprint {self.fingerprint}",
        ]
        for obj in self.objects:
            lines += ["", obj.header(), obj.sql + ";"]
        return "\n".join(lines) + "\n"


def _quote(name: str) -> str:
    return name if _PLAIN.fullmatch(name) else '"' + name.replace('"', '""') + '"'


def _unquote(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name


def schema_from_rows(rows: Iterable[Row]) -> Schema:
    """The schema of `sqlite_master` rows (type, name, table, sql). Pure."""
    return Schema(
        tuple(SchemaObject(t, n, tb, normalized(s or ""), s or "") for t, n, tb, s in rows)
    )


def read_schema(conn: sqlite3.Connection) -> Schema:
    """The schema `conn` sees now. Read-only."""
    return schema_from_rows(schema_rows(conn))


def parse_schema(text: str) -> Schema:
    """The schema a schema file holds (the text `Schema.text` writes). Pure.

    Lines before the first object header may only be comments or blank. Each statement is
    normalised again, so a re-indented file compares equal. Raises SchemaFileError naming
    the line when the text is not a schema file.
    """
    objects: list[SchemaObject] = []
    header: tuple[str, str, str, int] | None = None
    body: list[str] = []

    def close() -> None:
        if header is None:
            return
        kind, name, table, line = header
        sql = "\n".join(body).strip().rstrip(";").rstrip()
        if not sql:
            msg = f"line {line}: the {kind} {name} has no statement"
            raise SchemaFileError(msg)
        objects.append(SchemaObject(kind, name, table, normalized(sql), sql))

    for number, line in enumerate(text.splitlines(), start=1):
        match = _HEADER.match(line)
        if match is None:
            if header is not None:
                body.append(line)
            elif line.strip() and not line.lstrip().startswith("--"):
                msg = f"line {number}: SQL before the first object header (`-- table NAME`)"
                raise SchemaFileError(msg)
            continue
        close()
        kind, name = match[1], _unquote(match[2])
        if kind in ("index", "trigger") and match[3] is None:
            msg = f"line {number}: the {kind} header names no table (`-- {kind} NAME on TABLE`)"
            raise SchemaFileError(msg)
        table = _unquote(match[3]) if match[3] is not None else name
        header, body = (kind, name, table, number), []
    close()
    seen: set[tuple[str, str]] = set()
    for obj in objects:
        if obj.key in seen:
            msg = f"the {obj.type} {obj.name} appears twice"
            raise SchemaFileError(msg)
        seen.add(obj.key)
    return Schema(tuple(objects))


# --- what a step changed, and the schema the journal records ---------------------------------


def _as_map(rows: Iterable[Row]) -> dict[tuple[str, str], tuple[str, str]]:
    return {(t, n): (tb, s or "") for t, n, tb, s in rows}


def _map_rows(objects: Mapping[tuple[str, str], tuple[str, str]]) -> list[Row]:
    return [(t, n, *objects[(t, n)]) for t, n in sorted(objects)]


def _map_schema(objects: Mapping[tuple[str, str], tuple[str, str]]) -> Schema:
    return schema_from_rows(_map_rows(objects))


def schema_changes(before: Sequence[Row], after: Sequence[Row]) -> SchemaChanges:
    """The `schema_changes` payload from `before` to `after` (rows as `schema_rows` gives). Pure.

    One entry per object added, removed or changed (by its normalised definition):
    `[type, name, [table, sql] or None before, [table, sql] or None after]`, sorted by key.
    """
    touched = {(row[0], row[1]) for row in set(before).symmetric_difference(after)}
    if not touched:  # the common case of a data migration: one set comparison
        return []
    old = {(t, n): (tb, s or "") for t, n, tb, s in before if (t, n) in touched}
    new = {(t, n): (tb, s or "") for t, n, tb, s in after if (t, n) in touched}
    changes: SchemaChanges = []
    for key in sorted(touched):
        was, now = old.get(key), new.get(key)
        if was == now:
            continue
        if was and now and was[0] == now[0] and normalized(was[1]) == normalized(now[1]):
            continue
        changes.append([key[0], key[1], list(was) if was else None, list(now) if now else None])
    return changes


def _apply(objects: dict[tuple[str, str], tuple[str, str]], changes: Any, side: int) -> None:
    """Set each object of `changes` to its definition on `side` (2 before, 3 after)."""
    if not isinstance(changes, list):
        raise TypeError("schema_changes is not a list")
    for entry in changes:
        key = (str(entry[0]), str(entry[1]))
        value = entry[side]
        if value is None:
            objects.pop(key, None)
        else:
            objects[key] = (str(value[0]), str(value[1]))


def expected_before(after_up: Sequence[Row], changes: Any, fingerprint: str) -> Schema | None:
    """The schema before a migration's `up`, from the schema after it and its `schema_changes`.

    Pure. None when `changes` is missing or does not lead back to `fingerprint` (the schema
    recorded before `up`): then what differs cannot be named.
    """
    objects = _as_map(after_up)
    try:
        _apply(objects, changes, 2)
    except (TypeError, IndexError, KeyError, ValueError):
        return None
    if fingerprint_rows(_map_rows(objects)) != fingerprint:
        return None
    return _map_schema(objects)


def _recorded_fingerprint(event: Event) -> str | None:
    """The schema fingerprint an event records (as replay reads it), or None."""
    data, kind = event.data, event.kind
    if kind in (Kind.STEP_APPLIED, Kind.STEP_REVERTED):
        value = data.get("fingerprint_after")
    elif kind in (Kind.BASELINE_SET, Kind.BACKUP_RESTORED):
        value = data.get("fingerprint")
    elif kind == Kind.DRIFT_DETECTED and data.get("allowed"):
        value = data.get("actual")
    else:
        return None
    return value if isinstance(value, str) else None


def recorded_schema(events: Iterable[Event]) -> Schema | None:
    """The schema the journal last recorded, object by object; None when it cannot be told.

    Pure. Folds the `schema_changes` of the events that record a schema; a restore brings
    back the objects last seen with the restored fingerprint. Every step is checked against
    its recorded fingerprint, so a gap in the story (events without `schema_changes`)
    gives None rather than a wrong answer.
    """
    objects: dict[tuple[str, str], tuple[str, str]] | None = {}
    fingerprint: str | None = None
    seen: dict[str, dict[tuple[str, str], tuple[str, str]]] = {EMPTY_FINGERPRINT: {}}
    for event in events:
        new = _recorded_fingerprint(event)
        if new is None:
            continue
        changes = event.data.get("schema_changes")
        snapshot = event.data.get("schema")
        if snapshot is not None:  # the whole schema, as changes from an empty one
            objects = {}
            changes = snapshot
        if objects is not None and changes is not None:
            try:
                _apply(objects, changes, 3)
            except (TypeError, IndexError, KeyError, ValueError):
                objects = None
        elif new != fingerprint:
            objects = None
        if objects is None or fingerprint_rows(_map_rows(objects)) != new:
            objects = dict(seen[new]) if new in seen else None
        if objects is not None:
            seen[new] = dict(objects)
        fingerprint = new
    if fingerprint is None or objects is None:
        return None
    return _map_schema(objects)
