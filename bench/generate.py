"""Deterministic inputs for the benchmark: migration sets and populated databases.

Two generators, both seeded so that every run of the harness measures the same work:

- `migration_set(count, seed)` returns `count` migrations of a "typical application" as
  lists of plain SQL statements: tables with foreign keys, indexes, added, renamed and
  dropped columns, 12-step table rebuilds, views, triggers and small data changes. Each
  migration is valid after the ones before it (the generator applies every migration to
  an in-memory database, with foreign keys enforced, before it hands it out). The set for
  N migrations is the first N of one endless sequence, so the 50 set is a prefix of the
  200 set, which is a prefix of the 1000 set.
- `database(size_bytes, cache_dir)` returns the path of a cached database file holding a
  `payload` table of about that size (rollback-journal mode, `user_version` 0). The
  migrations never touch `payload`; migration 1 creates the application schema.

Standard library only. Run `python bench/generate.py --help` to write a set or a database
by hand.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "Migration",
    "database",
    "migration_set",
    "parse_size",
    "split_statements",
]

#: Tables owned by the benchmark data, never touched by a generated migration.
PAYLOAD_TABLE = "payload"

_NOUNS = [
    "user",
    "account",
    "invoice",
    "order",
    "item",
    "product",
    "customer",
    "supplier",
    "shipment",
    "payment",
    "address",
    "session",
    "device",
    "token",
    "project",
    "task",
    "comment",
    "tag",
    "note",
    "report",
    "event",
    "message",
    "channel",
    "team",
    "member",
    "role",
    "permission",
    "subscription",
    "plan",
    "coupon",
    "refund",
    "warehouse",
    "stock",
    "category",
    "review",
    "rating",
    "attachment",
    "folder",
    "document",
    "version",
    "setting",
    "profile",
    "contact",
    "lead",
    "deal",
    "ticket",
    "queue",
    "job",
    "schedule",
    "metric",
    "alert",
]

_ATTRS = [
    "name",
    "title",
    "status",
    "kind",
    "label",
    "code",
    "email",
    "phone",
    "city",
    "country",
    "region",
    "score",
    "amount",
    "total",
    "price",
    "quantity",
    "weight",
    "rank",
    "priority",
    "level",
    "flags",
    "notes",
    "summary",
    "source",
    "channel",
    "locale",
    "timezone",
    "currency",
    "reference",
    "external_id",
    "checksum",
    "color",
    "size",
    "state",
    "origin",
    "target",
    "mode",
    "format",
    "owner",
]

_TYPES = ("TEXT", "INTEGER", "REAL", "NUMERIC", "BLOB")

MAX_TABLES = 120
MAX_COLUMNS = 24


@dataclass(frozen=True)
class Migration:
    """One generated migration: its version, a file-name slug and its SQL statements.

    `foreign_keys_off` marks a table rebuild: tools that can should run it with
    `PRAGMA foreign_keys = OFF` (it is written to be safe with them on as well).
    `down` undoes it (empty: no down; only the Grocy-like set of `grocy.py` has them).
    """

    version: int
    name: str
    statements: tuple[str, ...]
    foreign_keys_off: bool = False
    description: str = ""
    down: tuple[str, ...] = ()

    @property
    def sql(self) -> str:
        """The statements as one script, one blank line between statements."""
        return "\n\n".join(self.statements) + "\n"

    @property
    def down_sql(self) -> str:
        """The down statements as one script ("" when there is no down)."""
        return "\n\n".join(self.down) + "\n" if self.down else ""


# --------------------------------------------------------------------------------------
# The schema model the generator keeps in step with the SQL it emits.


@dataclass
class _Column:
    name: str
    type: str
    notnull: bool = False
    default: str | None = None
    fk: str | None = None  # parent table name; references parent(id)

    def ddl(self) -> str:
        parts = [self.name, self.type]
        if self.notnull:
            parts.append("NOT NULL")
        if self.default is not None:
            parts.append(f"DEFAULT {self.default}")
        if self.fk:
            parts.append(f"REFERENCES {self.fk}(id) ON DELETE CASCADE")
        return " ".join(parts)


@dataclass
class _Index:
    name: str
    table: str
    columns: tuple[str, ...]
    where: str | None = None

    def ddl(self) -> str:
        sql = f"CREATE INDEX {self.name} ON {self.table} ({', '.join(self.columns)})"
        if self.where:
            sql += f" WHERE {self.where}"
        return sql + ";"


@dataclass
class _View:
    name: str
    tables: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]  # (table, column) pairs it reads
    sql: str


@dataclass
class _Trigger:
    name: str
    table: str
    column: str
    sql: str


@dataclass
class _Table:
    name: str
    columns: list[_Column]
    rows: int = 0

    def columns_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def ddl(self, name: str | None = None) -> str:
        body = ",\n    ".join(
            ["id INTEGER PRIMARY KEY"] + [c.ddl() for c in self.columns if c.name != "id"]
        )
        return f"CREATE TABLE {name or self.name} (\n    {body}\n);"


@dataclass
class _Schema:
    tables: dict[str, _Table] = field(default_factory=dict)
    indexes: dict[str, _Index] = field(default_factory=dict)
    views: dict[str, _View] = field(default_factory=dict)
    triggers: dict[str, _Trigger] = field(default_factory=dict)
    counter: int = 0

    def fresh(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}_{self.counter}"

    def app_tables(self) -> list[_Table]:
        return [t for n, t in self.tables.items() if n != "audit_log"]

    def children(self, table: str) -> list[str]:
        return [
            t.name
            for t in self.tables.values()
            if t.name != table and any(c.fk == table for c in t.columns)
        ]

    def referenced(self) -> set[tuple[str, str]]:
        """(table, column) pairs an index, view or trigger names (not safe to rename or drop)."""
        out = {(i.table, c) for i in self.indexes.values() for c in i.columns}
        out |= {tc for v in self.views.values() for tc in v.columns}
        out |= {(t.table, t.column) for t in self.triggers.values()}
        return out


def _value_expr(col: _Column, rnd: random.Random, row: str = "x") -> str:
    """An SQL expression giving a plausible value of `col`'s type for row number `row`."""
    if col.fk:
        return f"(SELECT min(id) FROM {col.fk})"
    if col.type == "TEXT":
        word = rnd.choice(_ATTRS)
        return f"'{word}-' || {row}"
    if col.type == "INTEGER":
        return f"({row} * {rnd.randint(3, 97)}) % {rnd.randint(100, 10000)}"
    if col.type == "REAL":
        return f"{row} * {rnd.randint(1, 999)}.25"
    if col.type == "NUMERIC":
        return f"{rnd.randint(1, 50)} + {row}"
    return "x'00ff'"


def _series(n: int) -> str:
    return f"WITH RECURSIVE seq(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM seq WHERE x < {n})"


# --------------------------------------------------------------------------------------
# Operations. Each returns (statements, description) and updates the model, or None
# when it does not apply to the current schema.


class _Generator:
    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)
        self.s = _Schema()

    # -- helpers ---------------------------------------------------------------------

    def _new_column(self, table: _Table, *, for_create: bool) -> _Column:
        rnd = self.rnd
        existing = {c.name for c in table.columns}
        stem = rnd.choice(_ATTRS)
        name = stem if stem not in existing else self.s.fresh(stem)
        typ = rnd.choices(_TYPES, weights=(45, 30, 8, 10, 7))[0]
        col = _Column(name, typ)
        roll = rnd.random()
        if typ != "BLOB" and roll < 0.35:
            col.notnull = True
            col.default = {"TEXT": "''", "INTEGER": "0", "REAL": "0.0", "NUMERIC": "0"}[typ]
        elif typ != "BLOB" and roll < 0.5:
            col.default = {"TEXT": "'n/a'", "INTEGER": "1", "REAL": "1.5", "NUMERIC": "10"}[typ]
        if for_create and typ == "TEXT" and rnd.random() < 0.15:
            col.notnull, col.default = True, "CURRENT_TIMESTAMP"
        return col

    def _pick(self, items: list):
        return self.rnd.choice(items) if items else None

    # -- operations ------------------------------------------------------------------

    def create_table(self, name: str | None = None) -> tuple[list[str], str] | None:
        rnd, s = self.rnd, self.s
        if name is None:
            if len(s.tables) >= MAX_TABLES:
                return None
            noun = rnd.choice(_NOUNS)
            name = f"{noun}s" if f"{noun}s" not in s.tables else s.fresh(f"{noun}s")
        table = _Table(name, [_Column("id", "INTEGER")])
        parents = s.app_tables()
        stmts: list[str] = []
        fk_col = None
        if parents and rnd.random() < 0.6:
            parent = rnd.choice(parents).name
            fk_col = _Column(f"{parent}_id", "INTEGER", fk=parent)
            table.columns.append(fk_col)
        for _ in range(rnd.randint(2, 6)):
            table.columns.append(self._new_column(table, for_create=True))
        table.columns.append(
            _Column("created_at", "TEXT", notnull=True, default="CURRENT_TIMESTAMP")
        )
        stmts.append(table.ddl())
        s.tables[name] = table
        if fk_col is not None:
            idx = _Index(f"ix_{name}_{fk_col.name}", name, (fk_col.name,))
            s.indexes[idx.name] = idx
            stmts.append(idx.ddl())
        rows = rnd.choice((0, 0, 5, 20, 50, 200))
        if rows:
            cols = [c for c in table.columns if c.name not in ("id", "created_at")]
            names = ", ".join(c.name for c in cols)
            exprs = ", ".join(_value_expr(c, rnd) for c in cols)
            stmts.append(f"INSERT INTO {name} ({names})\n{_series(rows)}\nSELECT {exprs} FROM seq;")
            table.rows = rows
        return stmts, f"create_{name}"

    def add_column(self) -> tuple[list[str], str] | None:
        rnd, s = self.rnd, self.s
        table = self._pick([t for t in s.app_tables() if len(t.columns) < MAX_COLUMNS])
        if table is None:
            return None
        parents = [t.name for t in s.app_tables() if t.name != table.name]
        if parents and rnd.random() < 0.15:
            parent = rnd.choice(parents)
            cname = f"{parent}_id"
            if cname in {c.name for c in table.columns}:
                cname = s.fresh(cname)
            col = _Column(cname, "INTEGER", fk=parent)
        else:
            col = self._new_column(table, for_create=False)
        table.columns.append(col)
        stmts = [f"ALTER TABLE {table.name} ADD COLUMN {col.ddl()};"]
        if table.rows and col.type != "BLOB" and rnd.random() < 0.5:
            stmts.append(
                f"UPDATE {table.name} SET {col.name} = {_value_expr(col, rnd, 'id')}"
                f" WHERE id % {rnd.randint(2, 5)} = 0;"
            )
        return stmts, f"add_{col.name}_to_{table.name}"

    def rename_column(self) -> tuple[list[str], str] | None:
        rnd, s = self.rnd, self.s
        used = s.referenced()
        candidates = [
            (t, c)
            for t in s.app_tables()
            for c in t.columns
            if c.name not in ("id", "created_at") and not c.fk and (t.name, c.name) not in used
        ]
        if not candidates:
            return None
        table, col = rnd.choice(candidates)
        old = col.name
        new = s.fresh(f"{rnd.choice(_ATTRS)}")
        col.name = new
        stmt = f"ALTER TABLE {table.name} RENAME COLUMN {old} TO {new};"
        return [stmt], f"rename_{table.name}_{old}"

    def drop_column(self) -> tuple[list[str], str] | None:
        rnd, s = self.rnd, self.s
        used = s.referenced()
        candidates = [
            (t, c)
            for t in s.app_tables()
            for c in t.columns
            if c.name not in ("id", "created_at") and not c.fk and (t.name, c.name) not in used
        ]
        if not candidates:
            return None
        table, col = rnd.choice(candidates)
        table.columns.remove(col)
        return [f"ALTER TABLE {table.name} DROP COLUMN {col.name};"], (
            f"drop_{col.name}_from_{table.name}"
        )

    def create_index(self) -> tuple[list[str], str] | None:
        rnd, s = self.rnd, self.s
        table = self._pick(s.app_tables())
        if table is None:
            return None
        cols = [c.name for c in table.columns if c.type != "BLOB" and c.name != "id"]
        if not cols:
            return None
        chosen = tuple(rnd.sample(cols, min(len(cols), rnd.choice((1, 1, 2)))))
        where = f"{chosen[0]} IS NOT NULL" if rnd.random() < 0.2 else None
        idx = _Index(s.fresh(f"ix_{table.name}_{chosen[0]}"), table.name, chosen, where)
        s.indexes[idx.name] = idx
        return [idx.ddl()], f"index_{table.name}_{chosen[0]}"

    def drop_index(self) -> tuple[list[str], str] | None:
        name = self._pick(sorted(self.s.indexes))
        if name is None:
            return None
        del self.s.indexes[name]
        return [f"DROP INDEX {name};"], f"drop_{name}"

    def create_view(self) -> tuple[list[str], str] | None:
        rnd, s = self.rnd, self.s
        joined = [t for t in s.app_tables() if any(c.fk for c in t.columns)]
        if joined and rnd.random() < 0.5:
            child = rnd.choice(joined)
            fk = rnd.choice([c for c in child.columns if c.fk])
            parent = s.tables[fk.fk]
            ccols = [c.name for c in child.columns if c.name != "id"][:3]
            pcols = [c.name for c in parent.columns if c.name != "id"][:2]
            name = s.fresh(f"v_{child.name}_with_{parent.name}")
            select = ", ".join(
                ["c.id"] + [f"c.{c}" for c in ccols] + [f"p.{c} AS parent_{c}" for c in pcols]
            )
            sql = (
                f"CREATE VIEW {name} AS\n    SELECT {select}\n    FROM {child.name} AS c\n"
                f"    LEFT JOIN {parent.name} AS p ON p.id = c.{fk.name};"
            )
            used = tuple([(child.name, c) for c in ccols] + [(child.name, fk.name)])
            used += tuple((parent.name, c) for c in pcols)
            view = _View(name, (child.name, parent.name), used, sql)
        else:
            table = self._pick(s.app_tables())
            if table is None:
                return None
            cols = [c.name for c in table.columns if c.name != "id"][:4]
            name = s.fresh(f"v_recent_{table.name}")
            sql = (
                f"CREATE VIEW {name} AS\n    SELECT id, {', '.join(cols)}\n"
                f"    FROM {table.name}\n    WHERE id > 0\n    ORDER BY id DESC;"
            )
            view = _View(name, (table.name,), tuple((table.name, c) for c in cols), sql)
        s.views[name] = view
        return [view.sql], f"view_{name}"

    def drop_view(self) -> tuple[list[str], str] | None:
        name = self._pick(sorted(self.s.views))
        if name is None:
            return None
        del self.s.views[name]
        return [f"DROP VIEW {name};"], f"drop_{name}"

    def create_trigger(self) -> tuple[list[str], str] | None:
        rnd, s = self.rnd, self.s
        table = self._pick(s.app_tables())
        if table is None:
            return None
        cols = [c.name for c in table.columns if c.name not in ("id",) and not c.fk]
        if not cols:
            return None
        col = rnd.choice(cols)
        name = s.fresh(f"trg_{table.name}_{col}_audit")
        sql = (
            f"CREATE TRIGGER {name}\nAFTER UPDATE OF {col} ON {table.name}\nBEGIN\n"
            f"    INSERT INTO audit_log (table_name, row_id, action, changed_at)\n"
            f"    VALUES ('{table.name}', NEW.id, 'update {col}', CURRENT_TIMESTAMP);\nEND;"
        )
        s.triggers[name] = _Trigger(name, table.name, col, sql)
        return [sql], f"audit_{table.name}_{col}"

    def data_change(self) -> tuple[list[str], str] | None:
        rnd, s = self.rnd, self.s
        table = self._pick([t for t in s.app_tables() if t.rows])
        if table is None:
            return None
        cols = [c for c in table.columns if c.name not in ("id", "created_at") and not c.fk]
        if rnd.random() < 0.3 or not cols:
            rows = rnd.randint(2, 10)
            ins = [c for c in table.columns if c.name not in ("id", "created_at")]
            names = ", ".join(c.name for c in ins)
            exprs = ", ".join(_value_expr(c, rnd) for c in ins)
            table.rows += rows
            stmt = f"INSERT INTO {table.name} ({names})\n{_series(rows)}\nSELECT {exprs} FROM seq;"
            return [stmt], f"seed_{table.name}"
        col = rnd.choice(cols)
        if col.type == "TEXT":
            expr = rnd.choice((f"lower({col.name})", f"trim({col.name})", "'fixed-' || id"))
        elif col.type == "BLOB":
            expr = "NULL" if not col.notnull else "x'00'"
        else:
            expr = f"coalesce({col.name}, 0) + {rnd.randint(1, 9)}"
        stmt = f"UPDATE {table.name} SET {col.name} = {expr} WHERE id % {rnd.randint(2, 7)} = 0;"
        return [stmt], f"fix_{table.name}_{col.name}"

    def rebuild_table(self) -> tuple[list[str], str] | None:
        """The 12-step rebuild: create new, copy, drop, rename, then recreate dependents.

        Only tables that no foreign key refers to are rebuilt, so the rebuild is safe
        with `foreign_keys` on or off.
        """
        rnd, s = self.rnd, self.s
        leaves = [t for t in s.app_tables() if not s.children(t.name)]
        table = self._pick(leaves)
        if table is None:
            return None
        old_cols = [c.name for c in table.columns]
        # The change a plain ALTER TABLE cannot make: tighten a column (NOT NULL with a
        # default), change its type, or drop a column that an index or view uses.
        plain = [c for c in table.columns if c.name not in ("id", "created_at") and not c.fk]
        change = "retype"
        if plain:
            col = rnd.choice(plain)
            roll = rnd.random()
            if roll < 0.4 and col.type != "BLOB":
                change = f"not_null_{col.name}"
                col.notnull = True
                col.default = {"TEXT": "''", "INTEGER": "0", "REAL": "0.0", "NUMERIC": "0"}[
                    col.type
                ]
                copy_expr = {col.name: f"coalesce({col.name}, {col.default})"}
            elif roll < 0.7 and len(plain) > 1:
                change = f"drop_{col.name}"
                table.columns.remove(col)
                copy_expr = {}
            else:
                change = f"retype_{col.name}"
                col.type = "TEXT" if col.type != "TEXT" else "NUMERIC"
                col.notnull, col.default = False, None
                copy_expr = {}
        else:
            copy_expr = {}
        new_cols = [c.name for c in table.columns]
        kept = [c for c in new_cols if c in old_cols]
        tmp = f"{table.name}__new"
        stmts: list[str] = []
        # Views reading the table are dropped first (RENAME re-checks every view) and
        # recreated afterwards when every column they read survived.
        views = [v for v in s.views.values() if table.name in v.tables]
        for v in views:
            stmts.append(f"DROP VIEW {v.name};")
        stmts.append(table.ddl(tmp))
        stmts.append(
            f"INSERT INTO {tmp} ({', '.join(kept)})\n"
            f"SELECT {', '.join(copy_expr.get(c, c) for c in kept)} FROM {table.name};"
        )
        stmts.append(f"DROP TABLE {table.name};")
        stmts.append(f"ALTER TABLE {tmp} RENAME TO {table.name};")
        for idx in [i for i in s.indexes.values() if i.table == table.name]:
            if all(c in new_cols for c in idx.columns):
                stmts.append(idx.ddl())
            else:
                del s.indexes[idx.name]
        for trg in [t for t in s.triggers.values() if t.table == table.name]:
            if trg.column in new_cols:
                stmts.append(trg.sql)
            else:
                del s.triggers[trg.name]
        for v in views:
            if all(c in s.tables[t].columns_names() for t, c in v.columns):
                stmts.append(v.sql)
            else:
                del s.views[v.name]
        return stmts, f"rebuild_{table.name}_{change}"

    # -- the sequence ----------------------------------------------------------------

    def initial(self) -> tuple[list[str], str]:
        stmts = [
            "CREATE TABLE audit_log (\n    id INTEGER PRIMARY KEY,\n    table_name TEXT NOT NULL,\n"
            "    row_id INTEGER,\n    action TEXT NOT NULL,\n    changed_at TEXT NOT NULL\n);",
            "CREATE INDEX ix_audit_log_table_row ON audit_log (table_name, row_id);",
        ]
        self.s.tables["audit_log"] = _Table(
            "audit_log",
            [
                _Column("id", "INTEGER"),
                _Column("table_name", "TEXT"),
                _Column("row_id", "INTEGER"),
                _Column("action", "TEXT"),
                _Column("changed_at", "TEXT"),
            ],
        )
        self.s.indexes["ix_audit_log_table_row"] = _Index(
            "ix_audit_log_table_row", "audit_log", ("table_name", "row_id")
        )
        for name in ("users", "accounts", "projects"):
            more, _ = self.create_table(name)
            stmts.extend(more)
        return stmts, "initial_schema"

    _OPS = (
        ("create_table", 18),
        ("add_column", 20),
        ("rename_column", 6),
        ("drop_column", 3),
        ("create_index", 12),
        ("drop_index", 3),
        ("create_view", 7),
        ("drop_view", 2),
        ("create_trigger", 6),
        ("data_change", 15),
        ("rebuild_table", 5),
    )

    def next_migration(self, version: int) -> Migration:
        if version == 1:
            stmts, name = self.initial()
            return Migration(1, name, tuple(stmts), description="Create the application schema.")
        names = [n for n, _ in self._OPS]
        weights = [w for _, w in self._OPS]
        steps = self.rnd.choices((1, 2, 3), weights=(60, 30, 10))[0]
        stmts: list[str] = []
        labels: list[str] = []
        rebuild = False
        while len(labels) < steps:
            op = self.rnd.choices(names, weights=weights)[0]
            if op == "rebuild_table" and labels:
                continue  # a rebuild is a migration of its own
            result = getattr(self, op)()
            if result is None:
                continue
            stmts.extend(result[0])
            labels.append(result[1])
            if op == "rebuild_table":
                rebuild = True
                break
        name = labels[0] if len(labels) == 1 else f"{labels[0]}_and_more"
        desc = "; ".join(labels)
        return Migration(version, _slug(name), tuple(stmts), rebuild, desc)


def _slug(name: str, limit: int = 48) -> str:
    out = "".join(ch if ch.isalnum() else "_" for ch in name.lower()).strip("_")
    return out[:limit].rstrip("_")


def split_statements(script: str) -> list[str]:
    """Split an SQL script into complete statements with `sqlite3.complete_statement`."""
    out: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf.strip())
            buf = ""
    if buf.strip() and not all(
        ln.strip().startswith("--") or not ln.strip() for ln in buf.splitlines()
    ):
        msg = f"incomplete SQL statement at end of script: {buf.strip()[:80]!r}"
        raise ValueError(msg)
    return out


def _validate(conn: sqlite3.Connection, m: Migration) -> None:
    """Apply `m` in one transaction with foreign keys enforced; raise if anything fails."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for stmt in split_statements(m.sql):
            conn.execute(stmt)
        problems = conn.execute("PRAGMA foreign_key_check").fetchall()
        if problems:
            msg = f"migration {m.version} {m.name}: foreign key check failed: {problems[:3]}"
            raise ValueError(msg)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _check_model(conn: sqlite3.Connection, schema: _Schema, m: Migration, *, columns: bool) -> None:
    """Raise ValueError when the generator's model and the real schema disagree."""
    real = {
        (typ, name)
        for typ, name in conn.execute(
            "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
        )
    }
    model = {("table", n) for n in schema.tables}
    model |= {("index", n) for n in schema.indexes}
    model |= {("view", n) for n in schema.views}
    model |= {("trigger", n) for n in schema.triggers}
    if real != model:
        msg = f"after migration {m.version} ({m.name}) the model drifted: {real ^ model}"
        raise ValueError(msg)
    for t in schema.tables.values() if columns else ():
        cols = [r[1] for r in conn.execute(f"PRAGMA table_info({t.name})")]
        if cols != t.columns_names():
            msg = f"after migration {m.version}: {t.name} has {cols}, model {t.columns_names()}"
            raise ValueError(msg)


_SET_CACHE: dict[tuple[str, int, int], list[Migration]] = {}


DEFAULT_SEED = 20240601


def cached_set(
    kind: str,
    count: int,
    seed: int,
    cache_dir: Path | None,
    source: Path,
    build: Callable[[], list[Migration]],
) -> list[Migration]:
    """`build()`, remembered in this process and, with `cache_dir`, in a JSON file.

    The file is keyed by `kind`, count, seed and a hash of `source` (the generator's own
    file), so an edit of the generator invalidates it.
    """
    key = (kind, count, seed)
    if key in _SET_CACHE:
        return _SET_CACHE[key]
    cached = None
    if cache_dir is not None:
        digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
        cached = cache_dir / f"{kind}-{count}-seed{seed}-{digest}.json"
        if cached.exists():
            out = [
                Migration(
                    **{**d, "statements": tuple(d["statements"]), "down": tuple(d.get("down", ()))}
                )
                for d in json.loads(cached.read_text())
            ]
            _SET_CACHE[key] = out
            return out
    out = build()
    _SET_CACHE[key] = out
    if cached is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp")
        tmp.write_text(json.dumps([m.__dict__ for m in out], indent=1))
        os.replace(tmp, cached)
    return out


def migration_set(
    count: int, seed: int = DEFAULT_SEED, cache_dir: Path | None = None
) -> list[Migration]:
    """The first `count` migrations of the sequence for `seed`, each validated in order.

    With `cache_dir`, the set is read from (or written to) a JSON file keyed by count,
    seed and a hash of this generator's source, so an edit here invalidates the cache.
    Raises ValueError when a generated migration fails to apply (a generator bug).
    """

    def build() -> list[Migration]:
        gen = _Generator(seed)
        conn = sqlite3.connect(":memory:", isolation_level=None)
        conn.execute("PRAGMA foreign_keys = ON")
        out: list[Migration] = []
        for version in range(1, count + 1):
            m = gen.next_migration(version)
            try:
                _validate(conn, m)
            except sqlite3.Error as exc:
                msg = f"generated migration {version} ({m.name}) does not apply: {exc}\n{m.sql}"
                raise ValueError(msg) from exc
            _check_model(conn, gen.s, m, columns=version % 25 == 0 or version == count)
            out.append(m)
        conn.close()
        return out

    return cached_set("set", count, seed, cache_dir, Path(__file__), build)


# --------------------------------------------------------------------------------------
# Databases


_UNITS = {"kb": 1000, "mb": 1000**2, "gb": 1000**3, "kib": 1024, "mib": 1024**2, "gib": 1024**3}


def parse_size(text: str) -> int:
    """Bytes in a size such as `10MB`, `1GB`, `512KiB` or `1000000`."""
    t = text.strip().lower().replace(" ", "")
    for unit in sorted(_UNITS, key=len, reverse=True):
        if t.endswith(unit):
            return int(float(t[: -len(unit)]) * _UNITS[unit])
    return int(t)


def size_label(size: int) -> str:
    """A short label for a byte count: 10MB, 100MB, 1GB."""
    if size >= 1000**3 and size % 1000**3 == 0:
        return f"{size // 1000**3}GB"
    if size >= 1000**2 and size % 1000**2 == 0:
        return f"{size // 1000**2}MB"
    return f"{size}B"


_ROW_BYTES = 1040  # about what one payload row takes on disk, page overhead included


def _build_database(path: Path, size: int, seed: int) -> None:
    rnd = random.Random(seed)
    notes = [
        " ".join(rnd.choice(_NOUNS + _ATTRS) for _ in range(rnd.randint(20, 60)))
        for _ in range(997)
    ]
    kinds = ("created", "updated", "paid", "shipped", "refunded", "closed")
    rows = max(1, size // _ROW_BYTES)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute(
        f"CREATE TABLE {PAYLOAD_TABLE} (\n    id INTEGER PRIMARY KEY,\n    account INTEGER NOT NULL,"
        "\n    kind TEXT NOT NULL,\n    created_at TEXT NOT NULL,\n    note TEXT,\n    body BLOB\n)"
    )
    base = 1_700_000_000
    batch = 20_000

    def rows_from(start: int, stop: int):
        for i in range(start, stop):
            yield (
                i,
                rnd.randrange(50_000),
                kinds[i % len(kinds)],
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base + i * 37)),
                notes[i % len(notes)],
                rnd.randbytes(600),
            )

    conn.execute("BEGIN")
    for start in range(1, rows + 1, batch):
        conn.executemany(
            f"INSERT INTO {PAYLOAD_TABLE} VALUES (?, ?, ?, ?, ?, ?)",
            rows_from(start, min(rows + 1, start + batch)),
        )
    conn.execute(f"CREATE INDEX ix_{PAYLOAD_TABLE}_account ON {PAYLOAD_TABLE} (account)")
    conn.execute("COMMIT")
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()


def database(size: int, cache_dir: Path, seed: int = 7) -> Path:
    """A cached database of about `size` bytes; built (atomically) on first use.

    The file name is keyed by size, seed and a hash of the code that builds it, so a
    change to that code builds a new file; delete old ones by hand.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    recipe = inspect.getsource(_build_database) + repr((_ROW_BYTES, PAYLOAD_TABLE))
    digest = hashlib.sha256(recipe.encode()).hexdigest()[:8]
    path = cache_dir / f"payload-{size_label(size)}-seed{seed}-{digest}.db"
    if path.exists():
        return path
    tmp = path.with_suffix(".tmp")
    for p in (tmp, Path(str(tmp) + "-journal")):
        p.unlink(missing_ok=True)
    _build_database(tmp, size, seed)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def main(argv: list[str] | None = None) -> int:
    """Write a migration set as JSON, or build a cached database, for inspection."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    ps = sub.add_parser("set", help="print a migration set as JSON")
    ps.add_argument("count", type=int)
    ps.add_argument("--seed", type=int, default=DEFAULT_SEED)
    pg = sub.add_parser("grocy", help="print the Grocy-like set (with downs, grocy.py) as JSON")
    pg.add_argument("count", type=int)
    pg.add_argument("--seed", type=int, default=DEFAULT_SEED)
    pd = sub.add_parser("db", help="build (or reuse) a cached database and print its path")
    pd.add_argument("size", help="e.g. 10MB, 100MB, 1GB")
    pd.add_argument("--cache", type=Path, default=Path(__file__).parent / "work" / "dbs")
    args = p.parse_args(argv)
    if args.what in ("set", "grocy"):
        if args.what == "grocy":
            from grocy import grocy_set

            ms = grocy_set(args.count, args.seed)
        else:
            ms = migration_set(args.count, args.seed)
        print(json.dumps([m.__dict__ for m in ms], indent=1))
    else:
        t0 = time.perf_counter()
        path = database(parse_size(args.size), args.cache)
        print(f"{path} {path.stat().st_size / 1e6:.1f} MB in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
