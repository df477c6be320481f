"""When checkpoints are written, and how they are checked (`schemalog help events Checkpoints`).

A checkpoint is an ordinary event of kind `checkpoint`, sealed into the chain like every
other: its `prev` is the hash of the event before it and its `hash` covers its payload, the
state replayed through that event (`journal.replay.checkpoint_payload`). Rule: at the end of
a run (`checkpoint_if_due`, called by the engine's `Run.finish`), when at least
`CHECKPOINT_INTERVAL` events have been appended since the last checkpoint, both stores agree
and nothing is open (no attempt, run, restore or lock record), one checkpoint is appended,
outside any transaction (the JSONL first, as for every such event). Failing to write one
never fails the command: it is an optimisation, and the next run tries again.

`verify` checks every checkpoint against the events before it (`mismatched_checkpoints`);
recovery does the same for a checkpoint found in the JSONL alone before copying it into the
table.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from schemalog.journal.errors import (
    JournalTableUnwritable,
    JournalUnavailable,
    JournalUnsettled,
    NeedsHuman,
)
from schemalog.journal.events import Draft, Event, Kind
from schemalog.journal.journal import Journal
from schemalog.journal.replay import checkpoint_mismatches, checkpoint_payload

__all__ = ["CHECKPOINT_INTERVAL", "checkpoint_if_due", "mismatched_checkpoints"]

#: Events after the last checkpoint at which the next run end writes a new one.
CHECKPOINT_INTERVAL = 256


def checkpoint_if_due(journal: Journal, run_id: str) -> Event | None:
    """Append a checkpoint if the rule above asks for one now; returns it, or None."""
    if journal.table_offline or journal.conn.in_transaction:
        return None
    if journal.head_seq - journal.checkpoint_seq < CHECKPOINT_INTERVAL:
        return None
    try:
        snap = journal.recent()
    except (NeedsHuman, JournalUnavailable, sqlite3.Error):
        return None
    events = snap.longest
    if not snap.consistency.consistent or snap.jsonl.torn is not None:
        return None
    if not events or events[-1].seq != journal.head_seq:
        return None
    payload = checkpoint_payload(events)
    if payload is None:
        return None
    try:
        return journal.append(Draft(run_id, Kind.CHECKPOINT, None, payload))
    except (JournalUnavailable, JournalTableUnwritable, JournalUnsettled):
        return None


def mismatched_checkpoints(
    events: Sequence[Event], *, only: set[int] | None = None
) -> list[tuple[int, str]]:
    """(seq, reason) for each checkpoint in `events` (from seq 1; only those in `only`) whose
    state is not the replay of the events before it. Pure."""
    return checkpoint_mismatches(events, only=only)
