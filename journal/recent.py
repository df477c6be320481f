"""Reading only the recent part of the journal: from the last checkpoint both stores hold.

A command needs the current state, and a checkpoint holds it as of its seq (see
`journal.replay` and `schemalog help events Checkpoints`), so `read_from_checkpoint` reads each store
from its last checkpoint on: the table through the partial index on checkpoints, the JSONL
by scanning backwards from its end. The checkpoint is trusted when both stores hold it,
identical, at the same seq, its hash matches its content (which covers the state it holds and
`prev`, the hash of the event before it), and its payload can be read; the events after it
are chain-checked from it. In any other case (no checkpoint yet, one store behind or ahead,
damage) the caller reads both stores whole, and recovery works as without checkpoints.

`TailMemo` is the same idea inside one process: what it verified last time is trusted while
neither store has changed since (the table's last seq and hash, the JSONL's size, times and
last bytes), so a repeated call reads nothing.
"""

from __future__ import annotations

import hmac
from typing import Any

import attrs

from schemalog.journal.chain import digest
from schemalog.journal.codec import canonical, unstructure
from schemalog.journal.consistency import compare
from schemalog.journal.errors import NeedsHuman
from schemalog.journal.events import Event
from schemalog.journal.jsonl import JsonlStore
from schemalog.journal.replay import State, replay
from schemalog.journal.snapshot import Snapshot
from schemalog.journal.table import TableStore

__all__ = ["TailMemo", "read_from_checkpoint"]


def read_from_checkpoint(
    table: TableStore, jsonl: JsonlStore, *, key: bytes | None = None
) -> Snapshot | None:
    """Both stores from the last checkpoint they share (see the module docstring), or None
    when they share none that can be trusted. Read-only.

    With a journal `key`, a checkpoint in the keyed part of the chain is checked under it
    (HMAC-SHA-256), and the events after it are checked as keyed."""
    row = table.last_checkpoint_row()
    if row is None:
        return None
    checkpoint, data_text = row
    line, body = _texts(checkpoint, data_text)
    since = checkpoint.data.get("keyed_since")
    keyed = isinstance(since, int) and since <= checkpoint.seq
    if keyed and key is None:
        return None  # read whole: the chain check names the missing key
    if not hmac.compare_digest(
        digest(body.encode("utf-8"), key if keyed else None), checkpoint.hash
    ):
        return None
    found = jsonl.last_checkpoint(expect=(checkpoint, line.encode("utf-8")))
    if found is None or found[2] != checkpoint:
        return None
    try:
        replay([checkpoint])  # its payload can be read
    except NeedsHuman:
        return None
    # The checkpoint is decoded and checked: each store is read, and chain-checked, from the
    # event after it.
    t, j = table.read_from(checkpoint.seq + 1), jsonl.read_from(found[1])
    if j.damaged:
        return None  # read whole: recovery mends the JSONL from the table
    cons = compare(
        t.events,
        j.events,
        start_seq=checkpoint.seq + 1,
        start_prev=checkpoint.hash,
        key=key,
        keyed=keyed,
    )
    t = attrs.evolve(t, events=(checkpoint, *t.events))
    j = attrs.evolve(j, events=(checkpoint, *j.events))
    return Snapshot(table=t, jsonl=j, consistency=cons, base=checkpoint, key=key)


def _texts(event: Event, data_text: str) -> tuple[str, str]:
    """(its canonical line, the canonical text its hash covers) of an event whose `data` has
    the canonical text `data_text`, without encoding the data again (keys are sorted, so the
    line is `{"data":...,"hash":...,"id":...}` and the hashed text lacks only `hash`)."""
    fields = unstructure(event)
    rest = canonical({k: v for k, v in fields.items() if k not in ("data", "hash")})
    head = '{"data":' + data_text
    return f"{head},{canonical('hash')}:{canonical(event.hash)},{rest[1:]}", f"{head},{rest[1:]}"


class TailMemo:
    """The last healthy snapshot one process read of one database's journal, with its state.

    Kept by the caller between commands (the library's `Migrator` keeps one). `matches` is
    true while the table's last (seq, hash) and the JSONL's identity, size, times and last
    4 KiB are what they were when the snapshot was read: the stores are append-only and
    hash-chained, so the same last event means the same journal.
    """

    def __init__(self) -> None:
        # One tuple, replaced whole: a reader never sees one call's key with another's snapshot.
        self._held: tuple[Any, Snapshot, list[State]] | None = None

    @property
    def snapshot(self) -> Snapshot | None:
        """The remembered snapshot, if any."""
        held = self._held
        return held[1] if held is not None else None

    @staticmethod
    def key(table: TableStore, jsonl: JsonlStore) -> Any:
        """What identifies both stores' content now. Read-only."""
        return (table.head(), jsonl.fingerprint())

    def lookup(self, key: Any) -> Snapshot | None:
        """The remembered snapshot if the stores are unchanged since it was read, else None."""
        held = self._held
        return held[1] if held is not None and key is not None and held[0] == key else None

    def matches(self, key: Any) -> bool:
        """Whether the stores are unchanged since the remembered snapshot was read."""
        return self.lookup(key) is not None

    def remember(self, key: Any, snapshot: Snapshot) -> None:
        """Keep `snapshot` (read right after `key` was taken) if both stores agreed in it."""
        healthy = snapshot.consistency.consistent and snapshot.jsonl.torn is None
        self._held = (key, snapshot, []) if healthy else None

    def state(self, snapshot: Snapshot) -> State:
        """`replay(snapshot.longest)`, computed once for the remembered snapshot."""
        held = self._held
        if held is None or snapshot is not held[1]:
            return replay(snapshot.longest)
        if not held[2]:
            held[2].append(replay(snapshot.longest))
        return held[2][0]
