"""The in-database journal: table `schemalog_journal`, append-only by trigger.

The table's own layout is versioned in `schemalog_meta` (key `journal_layout`);
a database whose layout is newer than this code knows is refused, an older one is upgraded
step by step by the first command that writes (`_UPGRADES`). Layouts:

1. the table, its append-only triggers and `schemalog_meta`;
2. the partial index `schemalog_journal_checkpoints` over the seq of `checkpoint` events, so
   the last one is found without a scan (the journal may hold checkpoints from layout 2 on).

An append joins the caller's open transaction when there is one (so an event
commits or rolls back with the step it describes); otherwise it commits on its own.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Sequence

from schemalog.journal.codec import canonical, decode
from schemalog.journal.errors import JournalLayoutError
from schemalog.journal.events import Event, Kind
from schemalog.journal.store import ReadResult

__all__ = ["LAYOUT_VERSION", "TABLE", "TableStore"]

TABLE = "schemalog_journal"
META = "schemalog_meta"
LAYOUT_VERSION = 2

_COLUMNS = ("seq", "id", "ts", "run_id", "kind", "version", "data", "prev", "hash")
_KINDS = frozenset(k.value for k in Kind)

_CREATE = (
    f"""CREATE TABLE IF NOT EXISTS {TABLE} (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    ts TEXT NOT NULL,
    run_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    version INTEGER,
    data TEXT NOT NULL,
    prev TEXT NOT NULL,
    hash TEXT NOT NULL
)""",
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_no_update BEFORE UPDATE ON {TABLE}
BEGIN SELECT RAISE(ABORT, '{TABLE} is append-only'); END""",
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_no_delete BEFORE DELETE ON {TABLE}
BEGIN SELECT RAISE(ABORT, '{TABLE} is append-only'); END""",
    f"CREATE TABLE IF NOT EXISTS {META} (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    f"INSERT OR IGNORE INTO {META} (key, value) VALUES ('journal_layout', '{LAYOUT_VERSION}')",
)
_CHECKPOINT_INDEX = (
    f"CREATE INDEX IF NOT EXISTS {TABLE}_checkpoints ON {TABLE} (seq) WHERE kind = 'checkpoint'"
)
#: The statements that take a journal from layout N-1 to layout N.
_UPGRADES: dict[int, tuple[str, ...]] = {2: (_CHECKPOINT_INDEX,)}


class TableStore:
    """The journal table inside the database reached through `conn` (autocommit mode)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def exists(self) -> bool:
        """Whether the journal table exists. Read-only."""
        row = self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)
        ).fetchone()
        return row is not None

    def check_layout(self) -> int:
        """Raise JournalLayoutError if the table's shape or layout version is not ours; return
        the layout version. Read-only."""
        cols = tuple(r[1] for r in self.conn.execute(f"PRAGMA table_info({TABLE})"))
        if cols != _COLUMNS:
            msg = f"table {TABLE} has columns {', '.join(cols)}, expected {', '.join(_COLUMNS)}"
            raise JournalLayoutError(
                msg, hint="this database's journal was not written by schemalog"
            )
        return self._check_layout_version()

    def layout(self) -> int:
        """The stored layout version (1 when there is no record yet). Read-only."""
        if not self._has_meta():
            return 1
        row = self.conn.execute(f"SELECT value FROM {META} WHERE key = 'journal_layout'").fetchone()
        try:
            return int(row[0]) if row else 1
        except (TypeError, ValueError):
            return LAYOUT_VERSION + 1  # unreadable: treat as unknown, i.e. newer

    def _check_layout_version(self) -> int:
        layout = self.layout()
        if layout > LAYOUT_VERSION:
            msg = f"journal layout {layout} is newer than this schemalog knows ({LAYOUT_VERSION})"
            raise JournalLayoutError(msg, hint="upgrade schemalog before touching this database")
        return layout

    def ensure(self) -> None:
        """Create the table, its triggers and the layout record if missing; check the layout."""
        if not self.exists():
            self._check_layout_version()
            self._atomically([(stmt, ()) for stmt in (*_CREATE, _CHECKPOINT_INDEX)])
        else:
            layout = self.check_layout()
            if not self._has_meta():
                for stmt in _CREATE[3:]:
                    self.conn.execute(stmt)
            if layout < LAYOUT_VERSION:
                self._upgrade(layout)

    def _upgrade(self, layout: int) -> None:
        """Take the journal from `layout` to LAYOUT_VERSION, one layout at a time, atomically
        (inside the caller's transaction when one is open)."""
        statements: list[tuple[str, tuple]] = []
        for step in range(layout + 1, LAYOUT_VERSION + 1):
            statements += [(stmt, ()) for stmt in _UPGRADES[step]]
            statements.append(
                (f"UPDATE {META} SET value = ? WHERE key = 'journal_layout'", (str(step),))
            )
        self._atomically(statements)

    def _atomically(self, statements: Sequence[tuple[str, tuple]]) -> None:
        """Run `statements` in the caller's open transaction, or in one of their own."""
        own_tx = not self.conn.in_transaction
        if own_tx:
            self.conn.execute("BEGIN IMMEDIATE")
        try:
            for stmt, params in statements:
                self.conn.execute(stmt, params)
        except BaseException:
            if own_tx:
                self.conn.execute("ROLLBACK")
            raise
        if own_tx:
            self.conn.execute("COMMIT")

    def read(self) -> ReadResult:
        """Every row as an event, in seq order; empty if the table does not exist. Read-only."""
        if not self.exists():
            return ReadResult(events=(), exists=False)
        self.check_layout()
        rows = self.conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM {TABLE} ORDER BY seq")
        events = tuple(_decode_row(row) for row in rows)
        return ReadResult(events=events)

    def read_from(self, seq: int) -> ReadResult:
        """The rows from `seq` on as events, in seq order (see `read`). Read-only."""
        if not self.exists():
            return ReadResult(events=(), exists=False)
        self.check_layout()
        rows = self.conn.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM {TABLE} WHERE seq >= ? ORDER BY seq", (seq,)
        )
        return ReadResult(events=tuple(_decode_row(row) for row in rows))

    def last_checkpoint(self) -> Event | None:
        """The `checkpoint` event with the highest seq, found through its index; None when
        there is none, or the layout predates checkpoints. Read-only."""
        found = self.last_checkpoint_row()
        return found[0] if found is not None else None

    def last_checkpoint_row(self) -> tuple[Event, str] | None:
        """`last_checkpoint` and the canonical JSON text of its `data` as stored. Read-only."""
        if not self.exists() or self.check_layout() < 2:
            return None
        row = self.conn.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM {TABLE} WHERE kind = 'checkpoint' "
            "ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        return (_decode_row(row), row[6]) if row is not None else None

    def head(self) -> tuple[int, str] | None:
        """(seq, hash) of the last row, or None when there is none. Read-only."""
        if not self.exists():
            return None
        row = self.conn.execute(f"SELECT seq, hash FROM {TABLE} ORDER BY seq DESC LIMIT 1")
        found = row.fetchone()
        return (found[0], found[1]) if found is not None else None

    def last_seq(self) -> int:
        """The highest seq in the table (0 when empty or absent). Read-only."""
        if not self.exists():
            return 0
        return self.conn.execute(f"SELECT COALESCE(MAX(seq), 0) FROM {TABLE}").fetchone()[0]

    def append(self, events: Sequence[Event]) -> None:
        """Insert `events`; inside the caller's transaction if one is open, else atomically."""
        if not events:
            return
        rows = [_encode_row(e) for e in events]
        sql = (
            f"INSERT INTO {TABLE} ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
        )
        if self.conn.in_transaction:
            self.conn.executemany(sql, rows)
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.conn.executemany(sql, rows)
            self.conn.execute("COMMIT")
        except BaseException:
            _end(self.conn)  # SQLite may have rolled back already (disk full, I/O error)
            raise

    def _has_meta(self) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (META,)
        ).fetchone()
        return row is not None


def _end(conn: sqlite3.Connection) -> None:
    """Roll back the transaction this store opened, if SQLite has not already."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _encode_row(event: Event) -> tuple:
    return (
        event.seq,
        event.id,
        event.ts,
        event.run_id,
        event.kind.value,
        event.version,
        canonical(event.data),
        event.prev,
        event.hash,
    )


def _decode_row(row: tuple) -> Event:
    seq, id_, ts, run_id, kind, version, data, prev, hash_ = row
    try:
        data_obj = json.loads(data)
    except (TypeError, ValueError):
        data_obj = data  # let decode() report it with the seq
    else:
        if canonical(data_obj) != data:
            data_obj = data  # an edited row: not the canonical text we wrote
        elif (
            type(seq) is int
            and (version is None or type(version) is int)
            and all(type(v) is str for v in (id_, ts, run_id, kind, prev, hash_))
            and kind in _KINDS
            and isinstance(data_obj, dict)
        ):
            # Every column has the exact type and the data its canonical text: the event is
            # what `decode` would give, built without encoding the whole row twice more.
            return Event(seq, id_, ts, run_id, Kind(kind), version, data_obj, prev, hash_)
    fields = {
        "seq": seq,
        "id": id_,
        "ts": ts,
        "run_id": run_id,
        "kind": kind,
        "version": version,
        "data": data_obj,
        "prev": prev,
        "hash": hash_,
    }
    return decode(canonical(fields), where=f"{TABLE} seq {seq}")
