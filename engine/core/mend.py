"""Mending a damaged JSONL from the journal table. Pure.

After a power loss the JSONL can hold complete lines that hold no event: pages of the file
lost (zeros), garbled (random bytes) or never written, inside lines the table also holds or in
the unsynced tail (`DamagedRange`, from `JsonlStore.read`). The table holds a committed copy of
every event, so it can vouch for them:

- damage **before an event** of the JSONL is mended when every event missing there is one the
  table holds (the surviving lines are compared with the table as usual): the JSONL is
  rewritten with its surviving events and the missing ones from the table
  (`rewrite`, recovery's `rewrite_jsonl`);
- damage **after the last event** of the JSONL is a torn tail (the unsynced appends of an
  interrupted command): it is saved aside and cut, like a torn line, and the committed events
  the table holds after it are mirrored back;
- damage before JSONL events the table does not hold is the unsynced end of the interrupted
  command when those events are ones it may lose (`_MAY_LOSE`: a run's or the lock's records,
  never a restore's or a step's): the JSONL is cut before the damage, and the events after it
  are kept aside with the damaged file — the state a power cut that lost those pages outright
  leaves, which recovery already handles. Any other damage the table cannot vouch for is
  refused, naming the line: nothing can say what stood there.

`mend_jsonl` gives the journals as they will be once mended (`JsonlMend.snapshot`), so the rest
of the diagnosis (plausible tails, divergence, chain breaks) runs on them unchanged.
"""

from __future__ import annotations

from typing import Any

import attrs

from schemalog.journal.consistency import compare
from schemalog.journal.errors import JournalCorrupt, NeedsHuman
from schemalog.journal.events import Event, Kind
from schemalog.journal.journal import Snapshot
from schemalog.journal.store import DamagedRange, ReadResult, TornTail

__all__ = ["JsonlMend", "journal_view", "mend_jsonl"]


@attrs.frozen
class JsonlMend:
    """How a damaged JSONL is mended: the journals afterwards, and what the repair records."""

    snapshot: Snapshot  # both journals as they are once the JSONL is mended
    rewrite: bool  # damage before an event: the JSONL is rewritten (else: a tail is cut)
    damaged: tuple[DamagedRange, ...]
    restored: tuple[tuple[int, int], ...]  # (first, last) seqs filled in from the table
    dropped: tuple[int, ...] = ()  # seqs of an unsynced JSONL-only tail cut with the damage

    @property
    def detail(self) -> str:
        """One line for the plan: which lines, and what is done with them."""
        lines = ", ".join(d.lines for d in self.damaged)
        size = sum(len(d.data) for d in self.damaged)
        if not self.rewrite:
            return (
                f"JSONL line(s) {lines} at its end hold no event ({self.damaged[0].reason}, "
                f"{size} bytes, unsynced appends lost in a power cut): save them aside and cut them"
            )
        seqs = ", ".join(_span(a, b) for a, b in self.restored) or "none"
        lost = (
            f"; the unsynced events after them that the table never got (seq "
            f"{_span(self.dropped[0], self.dropped[-1])}) are cut with them"
            if self.dropped
            else ""
        )
        return (
            f"JSONL line(s) {lines} hold no event ({self.damaged[0].reason}, {size} bytes); the "
            f"journal table holds every event there (seq {seqs}): rewrite the JSONL from it"
            f"{lost}"
        )

    @property
    def record(self) -> dict[str, Any]:
        """The payload of the `journal_repaired` event (without `saved_to`)."""
        return {
            "what": "damaged_lines" if self.rewrite else "damaged_tail",
            "lines": [d.lines for d in self.damaged],
            "bytes": sum(len(d.data) for d in self.damaged),
            "restored_seqs": [list(r) for r in self.restored],
            "dropped_seqs": list(self.dropped),
        }


def mend_jsonl(snapshot: Snapshot) -> JsonlMend | NeedsHuman | None:
    """How the table mends the JSONL's damaged lines; None when it has none. Pure.

    Returns the refusal (JournalCorrupt, naming the first line) for damage before events the
    table does not hold, unless those events are an unsynced tail it may lose (see
    `_MAY_LOSE`). A broken table chain gives None: the table vouches for nothing, and the
    diagnosis refuses the break itself.
    """
    jsonl = snapshot.jsonl
    if not jsonl.damaged or snapshot.consistency.table_break is not None:
        return None
    table = snapshot.table.events
    before = {d.next_seq: d for d in jsonl.damaged if d.next_seq is not None}
    events: list[Event] = []
    restored: list[tuple[int, int]] = []
    dropped: tuple[Event, ...] = ()
    expect = 1
    for index, event in enumerate(jsonl.events):
        gap = before.get(event.seq)
        if gap is not None and event.seq > expect:
            if event.seq - 1 > len(table):
                # Damage over events the table lacks: what follows it is the unsynced end of
                # the interrupted command, or it is refused.
                dropped = jsonl.events[index:]
                if not all(e.kind in _MAY_LOSE for e in dropped):
                    return _unvouched(gap, table)
                break
            events.extend(table[expect - 1 : event.seq - 1])
            restored.append((expect, event.seq - 1))
        # A hole without damage in its place stays: the chain check refuses it (an edit).
        events.append(event)
        expect = event.seq + 1
    after = table[expect - 1 :]  # committed after the JSONL's last event: mirrored back
    if after:
        restored.append((after[0].seq, after[-1].seq))
    rewrite = bool(before)  # damage before an event (also where a tail is dropped)
    if rewrite:
        mended = ReadResult(events=tuple(events))
    else:
        tail = jsonl.damaged[-1]  # no damage before an event: the one range is the tail
        torn_data = jsonl.torn.data if jsonl.torn is not None else b""
        mended = ReadResult(events=tuple(events), torn=TornTail(tail.offset, tail.data + torn_data))
    view = Snapshot(
        table=snapshot.table,
        jsonl=mended,
        consistency=compare(table, mended.events, key=snapshot.key),
        key=snapshot.key,
    )
    return JsonlMend(
        snapshot=view,
        rewrite=rewrite,
        damaged=jsonl.damaged,
        restored=tuple(restored),
        dropped=tuple(e.seq for e in dropped),
    )


def journal_view(snapshot: Snapshot) -> tuple[Snapshot, NeedsHuman | None]:
    """The journals as read-only commands show them: mended from the table where it vouches
    for the JSONL's damage, and the refusal for damage it cannot vouch for. Pure."""
    mend = mend_jsonl(snapshot)
    if isinstance(mend, JsonlMend):
        return mend.snapshot, None
    return snapshot, mend


#: Events an interrupted command's unsynced JSONL tail may lose after a power cut: recovery
#: closes what they opened (runs, attempts, the lock record) and they record no change to the
#: database. Damage before any other event the table lacks (a restore's, a step's, a
#: baseline's) is refused: nothing can say what stood there.
_MAY_LOSE = frozenset(
    {
        Kind.RUN_STARTED,
        Kind.LOCK_ACQUIRED,
        Kind.RUN_FINISHED,
        Kind.LOCK_RELEASED,
        Kind.BACKUP_TAKEN,
        Kind.BACKUP_VERIFIED,
        Kind.RECOVERY_STARTED,
        Kind.RECOVERY_FINISHED,
        Kind.ATTEMPT_INTERRUPTED,
        Kind.JOURNAL_REPAIRED,
        Kind.JOURNAL_KEYED,
        Kind.CHECKPOINT,
    }
)


def _unvouched(damage: DamagedRange, table: tuple[Event, ...]) -> NeedsHuman:
    held = f"ends at seq {len(table)}" if table else "holds no event"
    return JournalCorrupt(
        f"JSONL line {damage.first_line} is {damage.reason} (lines {damage.lines}, "
        f"{len(damage.data)} bytes, before seq {damage.next_seq}), and the journal table "
        f"{held}: nothing vouches for the events that stood there",
        hint="keep both files as they are for inspection; see the recovery runbook "
        "(a damaged JSONL), `schemalog help recovery`",
    )


def _span(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}-{last}"
