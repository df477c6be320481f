"""Replay: the state of a database as its journal tells it, derived by a pure fold.

`replay(events, until=seq)` gives the state as it was right after event `seq`.
The fold uses private mutable accumulators for speed but has no effects: the
same events always give the same `State`.

A `checkpoint` event holds what the fold had built when it was written (`checkpoint_payload`):
replaying events that start with a checkpoint starts from its state. The state so derived
equals the one replayed from the first event, except that `attempts` and `runs` hold only
the history since the checkpoint (plus the last run before it); `history` and `replay
--until` read from the first event. `checkpoint_mismatches` checks checkpoints against the
events before them.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from typing import Any

import attrs

from schemalog.journal.errors import JournalChainBroken, JournalCorrupt
from schemalog.journal.events import Event, Kind
from schemalog.journal.fold import Fold
from schemalog.journal.state import (
    AppliedMigration,
    Attempt,
    BackupRecord,
    ChecksumRepair,
    LockRecord,
    RestoreRecord,
    RunRecord,
    State,
)

__all__ = [
    "CHECKPOINT_FORMAT",
    "AppliedMigration",
    "Attempt",
    "BackupRecord",
    "ChecksumRepair",
    "LockRecord",
    "RestoreRecord",
    "RunRecord",
    "State",
    "checkpoint_mismatches",
    "checkpoint_payload",
    "replay",
]

#: The layout of a checkpoint's payload this code writes and reads (its `format` key).
CHECKPOINT_FORMAT = 1


def replay(events: Iterable[Event], *, until: int | None = None) -> State:
    """The state after every event with `seq <= until` (all events when `until` is None).

    Pure. When the first event is a checkpoint (any seq), the fold starts from the state it
    holds. Raises JournalChainBroken when the events are not 1, 2, 3, ... (or C, C+1, ...
    after a checkpoint at C) without gap, JournalCorrupt for a checkpoint it cannot read,
    and ValueError for an `until` before the checkpoint the events start with.
    """
    fold = Fold()
    seq, head_hash = 0, None
    for event in events:
        if seq == 0 and event.seq != 1 and event.kind is Kind.CHECKPOINT:
            if until is not None and until < event.seq:
                msg = f"the state at seq {until} needs the events before the checkpoint"
                raise ValueError(msg)
            fold = _from_payload(event)
            seq, head_hash = event.seq, event.hash
            continue
        if until is not None and event.seq > until:
            break
        if event.seq != seq + 1:
            msg = f"journal sequence breaks at seq {event.seq} (expected {seq + 1})"
            raise JournalChainBroken(msg, hint="run `schemalog verify` to locate the damage")
        fold.apply(event)
        seq, head_hash = event.seq, event.hash
    return fold.state(seq, head_hash)


def checkpoint_payload(events: Iterable[Event]) -> dict[str, Any] | None:
    """The payload of a checkpoint written right after `events`, or None when the state is not
    quiet there (an attempt, a run, a restore or the lock record still open). Pure."""
    fold, seq = _fold_all(events)
    return _payload(fold, seq)


def checkpoint_mismatches(
    events: Iterable[Event], *, only: set[int] | None = None
) -> list[tuple[int, str]]:
    """(seq, reason) for every checkpoint among `events` (or those whose seq is in `only`)
    whose payload is not what the events before it give. `events` start at seq 1, or with a
    checkpoint (trusted; the later ones are checked against it). Pure."""
    problems: list[tuple[int, str]] = []
    fold, seq = Fold(), 0
    for event in events:
        if seq == 0 and event.seq != 1 and event.kind is Kind.CHECKPOINT:
            fold, seq = _from_payload(event), event.seq
            continue
        if event.kind is Kind.CHECKPOINT and (only is None or event.seq in only):
            expected = _payload(fold, seq)
            if expected is None:
                problems.append((event.seq, "written while an attempt or a run was open"))
            elif expected != event.data:
                problems.append((event.seq, "its state is not the replay of the events before it"))
        fold.apply(event)
        seq = event.seq
    return problems


def _fold_all(events: Iterable[Event]) -> tuple[Fold, int]:
    """The fold after `events` (starting from a checkpoint when they do) and its last seq."""
    fold, seq = Fold(), 0
    for event in events:
        if seq == 0 and event.seq != 1 and event.kind is Kind.CHECKPOINT:
            fold, seq = _from_payload(event), event.seq
            continue
        fold.apply(event)
        seq = event.seq
    return fold, seq


def _record(record: AppliedMigration) -> dict[str, Any]:
    """An applied record as a checkpoint holds it (without its `schema_changes`)."""
    return attrs.asdict(record, filter=lambda a, _: a.name != "schema_changes")


# -- checkpoints (`schemalog help events Checkpoints`) ----------------------------------------------


def _payload(fold: Fold, through: int) -> dict[str, Any] | None:
    """What a checkpoint after seq `through` holds, or None when the state is not quiet."""
    if fold.lock is not None or fold.pending_restore is not None:
        return None
    if any(a["outcome"] is None for a in fold.attempts):
        return None
    if any(r["outcome"] is None for r in fold.runs.values()):
        return None
    applied = {v: _record(a) for v, a in sorted(fold.applied.items())}
    records: list[list[Any]] = []
    for version, written in sorted(_kept_history(fold).items()):
        for seq, record in written:
            same = fold.applied.get(version) == record
            records.append([seq, version if same else _record(record)])
    last_run = list(fold.runs.values())[-1] if fold.runs else None
    last_id = last_run["run_id"] if last_run is not None else None
    return {
        "format": CHECKPOINT_FORMAT,
        "through": through,
        "version": fold.version,
        "fingerprint": fold.fingerprint,
        "applied": list(applied.values()),
        "records": records,
        "backups": [
            {**attrs.asdict(b), "seq": fold.backup_seq.get(b.id)}
            for b in sorted(fold.backups.values(), key=lambda b: (b.created_at, b.id))
        ],
        "last_run": dict(last_run) if last_run is not None else None,
        # The last run's attempts: what `up` tells a process that waited behind it.
        "last_attempts": [dict(a) for a in fold.attempts if a["run_id"] == last_id],
        "repairs": [attrs.asdict(r) for r in fold.repairs],
        "keyed_since": fold.keyed_since,
    }


def _kept_history(fold: Fold) -> dict[int, list[tuple[int, AppliedMigration]]]:
    """The records a later restore or replay can still need: each version's newest, and
    the newest before each known backup was taken (`in_force_at`)."""
    taken = sorted(fold.backup_seq[b] for b in fold.backups if b in fold.backup_seq)
    kept: dict[int, list[tuple[int, AppliedMigration]]] = {}
    for version, written in fold.history.items():
        keep = {len(written) - 1}
        seqs = [seq for seq, _ in written]
        for at in taken:
            index = bisect.bisect_left(seqs, at) - 1
            if index >= 0:
                keep.add(index)
        kept[version] = [written[i] for i in sorted(keep)]
    return kept


def _from_payload(event: Event) -> Fold:
    """The fold a checkpoint event holds; raises JournalCorrupt when it cannot be read."""
    data = event.data
    try:
        if data.get("format") != CHECKPOINT_FORMAT or data.get("through") != event.seq - 1:
            msg = f"format {data.get('format')!r}, through {data.get('through')!r}"
            raise ValueError(msg)
        fold = Fold()
        fold.version = int(data["version"])
        fold.fingerprint = data["fingerprint"]
        fold.applied = {int(a["version"]): AppliedMigration(**a) for a in data["applied"]}
        for seq, record in data["records"]:
            value = fold.applied[record] if isinstance(record, int) else AppliedMigration(**record)
            fold.remember(int(seq), value)
        for b in data["backups"]:
            fields = dict(b)
            seq = fields.pop("seq")
            fold.backups[fields["id"]] = BackupRecord(**fields)
            if seq is not None:
                fold.backup_seq[fields["id"]] = int(seq)
        if data["last_run"] is not None:
            run = dict(data["last_run"])
            RunRecord(**run)  # checks the fields
            fold.runs[run["run_id"]] = run
        for attempt in data["last_attempts"]:
            Attempt(**attempt)  # checks the fields
            fold.attempts.append(dict(attempt))
        fold.repairs = [ChecksumRepair(**r) for r in data["repairs"]]
        keyed = data["keyed_since"]
        fold.keyed_since = None if keyed is None else int(keyed)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        msg = f"the checkpoint at seq {event.seq} cannot be read ({exc})"
        raise JournalCorrupt(msg, hint="run `schemalog verify`") from exc
    return fold
