"""A Grocy-like migration set in which every migration has a `down`: the input of `check`.

Issue 13 timed `schemalog check` on Grocy's 248 real SQLite migrations, which cannot be
shipped here. `grocy_set(count, seed)` generates a set of the same character, drawn by
weight from what Grocy's migrations do:

- `ALTER TABLE t ADD c ...` (one to three columns, sometimes with a backfilling UPDATE);
- views replaced with a wider definition (`DROP VIEW v; CREATE VIEW v AS ...`), some over
  other views, and new views (joins to a parent table, aggregates);
- triggers: cascading deletes (`AFTER DELETE ON parent ... DELETE FROM child ...`),
  `BEFORE INSERT` checks raising an error, `AFTER INSERT` defaults;
- `CREATE TABLE` in Grocy's style (no foreign-key constraints, `row_created_timestamp`),
  some with seed rows; indexes;
- data changes (seed rows, `UPDATE ... WHERE c IS NULL`);
- table rebuilds (create `t__new`, copy, drop, rename, then the indexes, triggers and
  views that depend on the table again), about one migration in twenty-five.

Each `down` undoes its migration exactly as far as the schema goes (the dropped column,
the old view, the old table definition), so `check`'s up / verify / down / schema / up
round trip passes on every migration. The generator applies every migration, its down
and the migration again to an in-memory database and compares the normalized
`sqlite_master` before and after the down; a mismatch is a generator bug (ValueError).
The set for N migrations is the first N of one endless sequence, as in `generate.py`.
Standard library only.
"""

from __future__ import annotations

import random
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from generate import DEFAULT_SEED, Migration, cached_set, split_statements

__all__ = ["grocy_set"]

_NOUNS = [
    "product",
    "location",
    "quantity_unit",
    "shopping_list",
    "recipe",
    "chore",
    "battery",
    "task",
    "task_category",
    "equipment",
    "product_group",
    "meal_plan",
    "userfield",
    "userentity",
    "shopping_location",
    "barcode",
    "conversion",
    "api_key",
    "session",
    "permission",
    "stock_entry",
    "purchase",
    "consumption",
    "price_history",
    "store",
    "note",
    "label",
    "section",
    "calendar_entry",
    "charge_cycle",
]

_COLUMNS = [
    ("description", "TEXT"),
    ("note", "TEXT"),
    ("amount", "REAL"),
    ("price", "DECIMAL(15, 2)"),
    ("best_before_date", "DATE"),
    ("active", "TINYINT"),
    ("sort_number", "INTEGER"),
    ("picture_file_name", "TEXT"),
    ("default_quantity", "REAL"),
    ("period_days", "INTEGER"),
    ("track_date_only", "TINYINT"),
    ("due_date", "DATETIME"),
    ("done", "TINYINT"),
    ("assignment_type", "TEXT"),
    ("calories", "INTEGER"),
    ("servings", "INTEGER"),
    ("min_stock_amount", "INTEGER"),
    ("location_type", "TEXT"),
    ("show_on_stock_overview", "TINYINT"),
    ("cumulate_min_stock", "TINYINT"),
    ("tare_weight", "REAL"),
    ("external_id", "TEXT"),
    ("color", "TEXT"),
    ("rollover", "TINYINT"),
    ("interval_type", "TEXT"),
    ("factor", "REAL"),
    ("user_id", "INTEGER"),
    ("transaction_id", "TEXT"),
    ("correlation_id", "TEXT"),
    ("undone", "TINYINT"),
]

_DEFAULTS = {"TINYINT": "0", "INTEGER": "0", "REAL": "1", "TEXT": "''"}


@dataclass
class _Col:
    name: str
    type: str
    tail: str = ""  # constraints after the type (DEFAULT ..., NOT NULL, CHECK ...)

    def ddl(self) -> str:
        return f"{self.name} {self.type}{(' ' + self.tail) if self.tail else ''}"


@dataclass
class _Table:
    name: str
    cols: list[_Col]
    parent: str | None = None  # Grocy style: a `<parent>_id` column, no constraint
    seeded: int = 0

    def ddl(self, name: str | None = None) -> str:
        body = ",\n\t".join(c.ddl() for c in self.cols)
        return f"CREATE TABLE {name or self.name} (\n\t{body}\n);"

    def col(self, name: str) -> _Col:
        return next(c for c in self.cols if c.name == name)


@dataclass
class _Obj:
    """A view, trigger or index: its SQL, the table it is on, the objects its SQL names."""

    kind: str  # "view" | "trigger" | "index"
    name: str
    sql: str
    on: str | None  # the table of a trigger or index
    deps: frozenset[str]
    columns: tuple[str, ...] = ()  # a view's output columns
    base: str | None = None  # a plain view's table (`_view_sql`), which it may widen
    width: int = 0  # how many of the base table's other columns it shows


@dataclass
class _Model:
    tables: dict[str, _Table] = field(default_factory=dict)
    objs: dict[str, _Obj] = field(default_factory=dict)
    counter: int = 0

    def fresh(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}_{self.counter}"

    def views(self) -> list[_Obj]:
        return [o for o in self.objs.values() if o.kind == "view"]

    def dependents(self, name: str) -> list[_Obj]:
        """Views and triggers that name `name`, directly or through views; in creation order."""
        found: set[str] = set()
        frontier = {name}
        while frontier:
            nxt = set()
            for o in self.objs.values():
                if o.kind != "index" and o.name not in found and o.deps & frontier:
                    found.add(o.name)
                    if o.kind == "view":
                        nxt.add(o.name)
            frontier = nxt
        return [o for o in self.objs.values() if o.name in found]


_Op = tuple[list[str], list[str], str]  # up statements, down statements, label


class _Grocy:
    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)
        self.m = _Model()
        self.version = 0

    # -- helpers -------------------------------------------------------------------

    def _table(self, *, with_parent: bool = False) -> _Table | None:
        pool = [t for t in self.m.tables.values() if not with_parent or t.parent]
        return self.rnd.choice(pool) if pool else None

    def _new_table(self, name: str, parent: str | None) -> _Table:
        cols = [
            _Col("id", "INTEGER", "NOT NULL PRIMARY KEY AUTOINCREMENT UNIQUE"),
            _Col("name", "TEXT", "NOT NULL UNIQUE"),
        ]
        if parent:
            cols.append(_Col(f"{parent}_id", "INTEGER"))
        for cname, ctype in self.rnd.sample(_COLUMNS, self.rnd.randint(1, 4)):
            tail = (
                f"NOT NULL DEFAULT {_DEFAULTS[ctype]}"
                if ctype in _DEFAULTS and (self.rnd.random() < 0.3)
                else ""
            )
            cols.append(_Col(cname, ctype, tail))
        cols.append(
            _Col("row_created_timestamp", "DATETIME", "DEFAULT (datetime('now', 'localtime'))")
        )
        return _Table(name, cols, parent)

    def _seed_rows(self, table: _Table, n: int) -> tuple[str, str]:
        names = [f"{table.name}-{self.version}-{i}" for i in range(n)]
        values = ", ".join(f"('{x}')" for x in names)
        quoted = ", ".join(f"'{x}'" for x in names)
        return (
            f"INSERT INTO {table.name} (name) VALUES {values};",
            f"DELETE FROM {table.name} WHERE name IN ({quoted});",
        )

    # -- operations ----------------------------------------------------------------

    def create_table(self) -> _Op | None:
        m, rnd = self.m, self.rnd
        if len(m.tables) >= 60:
            return None
        noun = rnd.choice(_NOUNS)
        name = f"{noun}s" if f"{noun}s" not in m.tables else m.fresh(f"{noun}s")
        parents = [t for t in m.tables if t != name]
        parent = rnd.choice(parents).rstrip("s") if parents and rnd.random() < 0.5 else None
        if parent is not None and f"{parent}s" not in m.tables:
            parent = None
        table = self._new_table(name, parent)
        m.tables[name] = table
        up = [table.ddl()]
        if rnd.random() < 0.35:
            ins, _ = self._seed_rows(table, rnd.randint(1, 6))
            up.append(ins)
            table.seeded += 1
        return up, [f"DROP TABLE {name};"], f"create_{name}"

    def add_columns(self) -> _Op | None:
        rnd = self.rnd
        table = self._table()
        if table is None or len(table.cols) > 30:
            return None
        up, down, added = [], [], []
        existing = {c.name for c in table.cols}
        for cname, ctype in rnd.sample(_COLUMNS, rnd.choice((1, 1, 1, 2, 3))):
            if cname in existing:
                cname = self.m.fresh(cname)
            tail = (
                f"DEFAULT {_DEFAULTS[ctype]}" if ctype in _DEFAULTS and rnd.random() < 0.4 else ""
            )
            col = _Col(cname, ctype, tail)
            table.cols.append(col)
            existing.add(cname)
            added.append(col)
            up.append(f"ALTER TABLE {table.name}\nADD {col.ddl()};")
        for col in reversed(added):
            down.append(f"ALTER TABLE {table.name} DROP COLUMN {col.name};")
        col = added[0]
        if col.type == "TEXT" and rnd.random() < 0.4:
            up.append(
                f"UPDATE {table.name}\nSET {col.name} = 'v{self.version}'\nWHERE {col.name} IS NULL;"
            )
        return up, down, f"add_{added[0].name}_to_{table.name}"

    def _view_sql(
        self, name: str, base: _Table, width: int
    ) -> tuple[str, frozenset[str], tuple[str, ...]]:
        """A view over `base` (joined to its parent when it has one) showing `width` columns
        besides id and name."""
        plain = [c.name for c in base.cols if c.name not in ("id", "name")]
        cols = plain[:width]
        select = ["\tb.id", "\tb.name"] + [f"\tb.{c}" for c in cols]
        out = ["id", "name", *cols]
        deps = {base.name}
        joins = ""
        parent = self.m.tables.get(f"{base.parent}s") if base.parent else None
        if parent is not None:
            select.append(f"\tp.name AS {base.parent}_name")
            out.append(f"{base.parent}_name")
            joins = f"\nLEFT JOIN {parent.name} p\n\tON b.{base.parent}_id = p.id"
            deps.add(parent.name)
        sql = (
            f"CREATE VIEW {name}\nAS\nSELECT\n"
            + ",\n".join(select)
            + f"\nFROM {base.name} b{joins};"
        )
        return sql, frozenset(deps), tuple(out)

    def create_view(self) -> _Op | None:
        rnd, m = self.rnd, self.m
        views = m.views()
        if views and rnd.random() < 0.25:
            # A view over a view, as Grocy's *_resolved views are.
            inner = rnd.choice(views)
            name = m.fresh(f"{inner.name.split('_')[0]}_resolved")
            cols = ", ".join(f"v.{c}" for c in inner.columns[:4])
            sql = (
                f"CREATE VIEW {name}\nAS\nSELECT\n\t{cols},\n\tCOUNT(*) AS row_count\n"
                f"FROM {inner.name} v\nGROUP BY {', '.join(f'v.{c}' for c in inner.columns[:4])};"
            )
            out = (*inner.columns[:4], "row_count")
            obj = _Obj("view", name, sql, None, frozenset({inner.name}), out)
        else:
            base = self._table()
            if base is None:
                return None
            name = m.fresh(f"{base.name}_view")
            width = rnd.randint(1, 3)
            sql, deps, out = self._view_sql(name, base, width)
            obj = _Obj("view", name, sql, None, deps, out, base.name, width)
        m.objs[name] = obj
        return [obj.sql], [f"DROP VIEW {name};"], f"view_{name}"

    def replace_view(self) -> _Op | None:
        """`DROP VIEW v; CREATE VIEW v AS <wider>`: Grocy's most common change to a view."""
        m = self.m
        candidates = [v for v in m.views() if v.base in m.tables]
        if not candidates:
            return None
        old = self.rnd.choice(candidates)
        sql, deps, out = self._view_sql(old.name, m.tables[old.base], old.width + 1)
        if sql == old.sql:
            return None  # the table has no column left to show
        m.objs[old.name] = _Obj("view", old.name, sql, None, deps, out, old.base, old.width + 1)
        return (
            [f"DROP VIEW {old.name};", sql],
            [f"DROP VIEW {old.name};", old.sql],
            f"replace_{old.name}",
        )

    def create_trigger(self) -> _Op | None:
        rnd, m = self.rnd, self.m
        roll = rnd.random()
        if roll < 0.4:
            child = self._table(with_parent=True)
            if child is None or f"{child.parent}s" not in m.tables:
                return None
            parent = m.tables[f"{child.parent}s"]
            name = m.fresh(f"cascade_{parent.name}_to_{child.name}")
            sql = (
                f"CREATE TRIGGER {name} AFTER DELETE ON {parent.name}\nBEGIN\n"
                f"\tDELETE FROM {child.name}\n\tWHERE {child.parent}_id = OLD.id;\nEND;"
            )
            obj = _Obj("trigger", name, sql, parent.name, frozenset({parent.name, child.name}))
        elif roll < 0.7:
            table = self._table()
            nums = [c for c in table.cols if c.type in ("REAL", "INTEGER") and c.name != "id"]
            if not nums:
                return None
            col = rnd.choice(nums)
            name = m.fresh(f"enforce_{col.name}_{table.name}")
            sql = (
                f"CREATE TRIGGER {name} BEFORE INSERT ON {table.name}\nBEGIN\n"
                f"\tSELECT CASE WHEN((\n\t\tSELECT 1\n\t\tWHERE NEW.{col.name} < 0\n\t) NOTNULL) "
                f"THEN RAISE(ABORT, '{col.name} must not be negative') END;\nEND;"
            )
            obj = _Obj("trigger", name, sql, table.name, frozenset({table.name}))
        else:
            table = self._table()
            texts = [c for c in table.cols if c.type == "TEXT" and c.name != "name"]
            if not texts:
                return None
            col = rnd.choice(texts)
            name = m.fresh(f"set_default_{col.name}_{table.name}")
            sql = (
                f"CREATE TRIGGER {name} AFTER INSERT ON {table.name}\nBEGIN\n"
                f"\tUPDATE {table.name}\n\tSET {col.name} = 'default'\n"
                f"\tWHERE id = NEW.id\n\t\tAND {col.name} IS NULL;\nEND;"
            )
            obj = _Obj("trigger", name, sql, table.name, frozenset({table.name}))
        m.objs[name] = obj
        return [sql], [f"DROP TRIGGER {name};"], name

    def create_index(self) -> _Op | None:
        table = self._table()
        if table is None:
            return None
        cols = [c.name for c in table.cols if c.name not in ("id", "name")]
        col = self.rnd.choice(cols)
        name = self.m.fresh(f"ix_{table.name}_{col}")
        sql = f"CREATE INDEX {name} ON {table.name} (\n\t{col}\n);"
        self.m.objs[name] = _Obj("index", name, sql, table.name, frozenset({table.name}))
        return [sql], [f"DROP INDEX {name};"], f"index_{table.name}_{col}"

    def data_change(self) -> _Op | None:
        rnd = self.rnd
        table = self._table()
        if table is None:
            return None
        texts = [
            c
            for c in table.cols
            if c.type == "TEXT" and c.name != "name" and "NOT NULL" not in c.tail
        ]
        if texts and rnd.random() < 0.5:
            col = rnd.choice(texts)
            mark = f"fixed-{self.version}"
            return (
                [f"UPDATE {table.name}\nSET {col.name} = '{mark}'\nWHERE {col.name} IS NULL;"],
                [f"UPDATE {table.name}\nSET {col.name} = NULL\nWHERE {col.name} = '{mark}';"],
                f"fix_{table.name}_{col.name}",
            )
        ins, delete = self._seed_rows(table, rnd.randint(1, 4))
        table.seeded += 1
        return [ins], [delete], f"seed_{table.name}"

    def rebuild_table(self) -> _Op | None:
        """The 12-step rebuild, both ways: the down rebuilds the old definition."""
        rnd = self.rnd
        table = self._table()
        if table is None:
            return None
        plain = [c for c in table.cols if c.name not in ("id", "name", "row_created_timestamp")]
        if not plain:
            return None
        col = rnd.choice(plain)
        old = _Table(table.name, [_Col(c.name, c.type, c.tail) for c in table.cols], table.parent)
        if col.type in ("REAL", "INTEGER") and "CHECK" not in col.tail:
            col.tail = (col.tail + f" CHECK({col.name} >= 0)").strip()
            copy = {}
            change = f"check_{col.name}"
        elif col.type == "TEXT" and "NOT NULL" not in col.tail:
            col.tail = "NOT NULL DEFAULT ''"
            copy = {col.name: f"IFNULL({col.name}, '')"}
            change = f"not_null_{col.name}"
        else:
            col.type = "TEXT" if col.type != "TEXT" else "NUMERIC"
            col.tail = ""
            copy = {}
            change = f"retype_{col.name}"
        up = self._rebuild_statements(table, old, copy)
        down = self._rebuild_statements(old, table, {})
        return up, down, f"rebuild_{table.name}_{change}"

    def _rebuild_statements(self, new: _Table, old: _Table, copy: dict[str, str]) -> list[str]:
        """Statements that turn table `old` into `new`, keeping every dependent object."""
        m = self.m
        deps = m.dependents(new.name)
        stmts = [f"DROP {o.kind.upper()} {o.name};" for o in reversed(deps) if o.on != new.name]
        tmp = f"{new.name}__new"
        names = [c.name for c in new.cols]
        stmts.append(new.ddl(tmp))
        stmts.append(
            f"INSERT INTO {tmp} ({', '.join(names)})\n"
            f"SELECT {', '.join(copy.get(c, c) for c in names)} FROM {old.name};"
        )
        stmts.append(f"DROP TABLE {old.name};")
        stmts.append(f"ALTER TABLE {tmp} RENAME TO {new.name};")
        stmts += [o.sql for o in m.objs.values() if o.kind == "index" and o.on == new.name]
        stmts += [o.sql for o in deps]
        return stmts

    # -- the sequence ----------------------------------------------------------------

    def initial(self) -> _Op:
        up, down = [], []
        for name, parent in (
            ("quantity_units", None),
            ("locations", None),
            ("products", "location"),
            ("stock_entrys", "product"),
            ("shopping_lists", "product"),
            ("recipes", None),
        ):
            t = self._new_table(name, parent)
            self.m.tables[name] = t
            up.append(t.ddl())
            down.insert(0, f"DROP TABLE {name};")
        view = _Obj(
            "view",
            "stock_current",
            "CREATE VIEW stock_current\nAS\nSELECT\n\ts.product_id,\n\tCOUNT(*) AS entries,\n"
            "\tMIN(s.row_created_timestamp) AS oldest\nFROM stock_entrys s\nGROUP BY s.product_id;",
            None,
            frozenset({"stock_entrys"}),
            ("product_id", "entries", "oldest"),
        )
        self.m.objs[view.name] = view
        up.append(view.sql)
        down.insert(0, "DROP VIEW stock_current;")
        return up, down, "initial_schema"

    _OPS = (
        ("add_columns", 28),
        ("replace_view", 18),
        ("create_table", 10),
        ("create_trigger", 16),
        ("data_change", 12),
        ("create_view", 8),
        ("create_index", 4),
        ("rebuild_table", 4),
    )

    def next_migration(self) -> Migration:
        self.version += 1
        if self.version == 1:
            up, down, label = self.initial()
            return Migration(
                1, label, tuple(up), description="Create the schema.", down=tuple(down)
            )
        names = [n for n, _ in self._OPS]
        weights = [w for _, w in self._OPS]
        steps = self.rnd.choices((1, 2, 3), weights=(55, 30, 15))[0]
        ups: list[str] = []
        downs: list[list[str]] = []
        labels: list[str] = []
        rebuild = False
        while len(labels) < steps:
            op = self.rnd.choices(names, weights=weights)[0]
            if op == "rebuild_table" and labels:
                continue  # a rebuild is a migration of its own
            result = getattr(self, op)()
            if result is None:
                continue
            ups += result[0]
            downs.append(result[1])
            labels.append(result[2])
            if op == "rebuild_table":
                rebuild = True
                break
        down = [s for part in reversed(downs) for s in part]
        label = labels[0] if len(labels) == 1 else f"{labels[0]}_and_more"
        slug = "".join(ch if ch.isalnum() else "_" for ch in label.lower()).strip("_")[:48]
        return Migration(
            self.version, slug.rstrip("_"), tuple(ups), rebuild, "; ".join(labels), tuple(down)
        )


# --------------------------------------------------------------------------------------
# Validation and the cached set

_WS = re.compile(r"\s+")
_PUNCT = re.compile(r" ?([(),]) ?")
_QUOTED = re.compile(r'"([A-Za-z_][A-Za-z0-9_]*)"')


def _schema(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """sqlite_master without SQLite's own objects, whitespace and identifier quotes normalized."""
    rows = conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY 1, 2"
    )
    return [
        (t, n, _QUOTED.sub(r"\1", _PUNCT.sub(r"\1", _WS.sub(" ", s or "")))) for t, n, s in rows
    ]


def _apply(conn: sqlite3.Connection, sql: str, m: Migration, what: str) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        for stmt in split_statements(sql):
            conn.execute(stmt)
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        conn.execute("ROLLBACK")
        msg = f"grocy migration {m.version} ({m.name}): {what} fails: {exc}\n{sql}"
        raise ValueError(msg) from exc


def _validate(conn: sqlite3.Connection, m: Migration) -> None:
    """Up, down, up again; raise ValueError unless the down restores the schema exactly."""
    before = _schema(conn)
    _apply(conn, m.sql, m, "up")
    after = _schema(conn)
    _apply(conn, m.down_sql, m, "down")
    if _schema(conn) != before:
        diff = set(_schema(conn)) ^ set(before)
        msg = f"grocy migration {m.version} ({m.name}): down does not restore the schema: {diff}"
        raise ValueError(msg)
    _apply(conn, m.sql, m, "up again")
    if _schema(conn) != after:
        msg = f"grocy migration {m.version} ({m.name}): up again gives another schema"
        raise ValueError(msg)


def grocy_set(
    count: int, seed: int = DEFAULT_SEED, cache_dir: Path | None = None
) -> list[Migration]:
    """The first `count` migrations of the Grocy-like sequence for `seed`, each validated.

    Cached like `generate.migration_set` (keyed by count, seed and this file's hash).
    Raises ValueError when a generated migration or its down does not work (a bug here).
    """

    def build() -> list[Migration]:
        gen = _Grocy(seed)
        conn = sqlite3.connect(":memory:", isolation_level=None)
        out = []
        for _ in range(count):
            m = gen.next_migration()
            _validate(conn, m)
            out.append(m)
        conn.close()
        return out

    return cached_set("grocy", count, seed, cache_dir, Path(__file__), build)
