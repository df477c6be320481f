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
from schemalog.journal.state import (
    AppliedMigration,
    Attempt,
    BackupRecord,
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


class _Fold:
    """Mutable accumulators of one replay; never escapes `replay`."""

    def __init__(self) -> None:
        self.version = 0
        self.fingerprint: str | None = None
        self.applied: dict[int, AppliedMigration] = {}
        # Plain dicts while folding (attrs.evolve per event is the costliest part of a
        # replay); frozen values are built once, in state().
        self.attempts: list[dict[str, Any]] = []
        self.open: dict[tuple[str, int], int] = {}
        self.runs: dict[str, dict[str, Any]] = {}
        self.lock: LockRecord | None = None
        self.backups: dict[str, BackupRecord] = {}
        self.pending_restore: RestoreRecord | None = None
        # Every record each version ever had, with its seq, and the seq of each backup:
        # a restore brings back the records that were in force when its backup was taken.
        self.history: dict[int, list[tuple[int, AppliedMigration]]] = {}
        self.backup_seq: dict[str, int] = {}

    def close_attempt(
        self, run_id: str, version: int | None, outcome: str, ts: str, error: Any
    ) -> None:
        index = self.open.pop((run_id, version), None) if version is not None else None
        if index is None:
            return
        self.attempts[index].update(outcome=outcome, finished_at=ts, error=error)

    def end_attempt(self, e: Event, outcome: str, error: Any) -> None:
        """Close the open attempt `e` ends; if it has none (its `step_started` was rolled back
        with a whole transaction), `e` stands for the whole attempt."""
        run_id = str(e.data.get("run_id", e.run_id))
        if (run_id, e.version) in self.open or e.version is None:
            self.close_attempt(run_id, e.version, outcome, e.ts, error)
            return
        if e.data.get("direction") is None or e.data.get("attempt_closed"):
            return
        self.attempts.append(
            {
                "run_id": run_id,
                "version": e.version,
                "direction": e.data.get("direction", "up"),
                "name": e.data.get("name", ""),
                "started_at": e.ts,
                "started_seq": e.seq,
                "outcome": outcome,
                "finished_at": e.ts,
                "error": error,
            }
        )

    def remember(self, seq: int, record: AppliedMigration) -> None:
        self.history.setdefault(record.version, []).append((seq, record))

    def in_force_at(self, seq: int, version: int) -> dict[int, AppliedMigration]:
        """The newest record of each version 1..`version` written before `seq`."""
        applied = {}
        for v in range(1, version + 1):
            for written, record in reversed(self.history.get(v, ())):
                if written < seq:
                    applied[v] = record
                    break
        return applied

    def finish_run(self, run_id: str, outcome: str, ts: str, error: Any) -> None:
        run = self.runs.get(run_id)
        if run is not None and run["outcome"] is None:
            run.update(outcome=outcome, finished_at=ts, error=error)

    def apply(self, e: Event) -> None:
        handler = _HANDLERS.get(e.kind)
        if handler is not None:  # recovery_*, journal_repaired: history only
            handler(self, e, e.data)

    def _on_run_started(self, e: Event, d: dict[str, Any]) -> None:
        self.runs.pop(e.run_id, None)  # a run id seen again is the latest run (dict order)
        self.runs[e.run_id] = {
            "run_id": e.run_id,
            "command": str(d.get("command", "")),
            "started_at": e.ts,
            "outcome": None,
            "finished_at": None,
            "error": None,
            "direction": d.get("direction"),
            "from_version": d.get("from_version"),
            "to_version": d.get("to_version"),
        }

    def _on_run_finished(self, e: Event, d: dict[str, Any]) -> None:
        self.finish_run(e.run_id, str(d.get("outcome", "succeeded")), e.ts, d.get("error"))

    def _on_lock_acquired(self, e: Event, d: dict[str, Any]) -> None:
        self.lock = LockRecord(e.run_id, d.get("pid"), d.get("host"), d.get("command"), e.ts)

    def _on_lock_released(self, e: Event, d: dict[str, Any]) -> None:
        self.lock = None

    def _on_backup_taken(self, e: Event, d: dict[str, Any]) -> None:
        self.backup_seq[d["id"]] = e.seq
        self.backups[d["id"]] = BackupRecord(
            id=d["id"],
            path=d.get("path", ""),
            version=d.get("version", 0),
            created_at=d.get("created_at", e.ts),
            size=d.get("size", 0),
            sha256=d.get("sha256", ""),
            verified=bool(d.get("verified", False)),
            compression=d.get("compression", "none"),
            run_id=e.run_id,
        )

    def _on_backup_verified(self, e: Event, d: dict[str, Any]) -> None:
        record = self.backups.get(d.get("id", ""))
        if record is not None:
            self.backups[record.id] = attrs.evolve(record, verified=True)

    def _on_backup_removed(self, e: Event, d: dict[str, Any]) -> None:
        self.backups.pop(d.get("id"), None)
        # A backup's file is gone with it: no restore can name it again, so its seq (and the
        # records only it needed) need not be kept (a checkpoint keeps no more either).
        self.backup_seq.pop(d.get("id"), None)

    def _on_restore_started(self, e: Event, d: dict[str, Any]) -> None:
        self.pending_restore = RestoreRecord(
            e.run_id, d.get("backup_id", ""), d.get("preserved"), e.ts
        )

    def _on_restore_failed(self, e: Event, d: dict[str, Any]) -> None:
        self.pending_restore = None

    def _on_backup_restored(self, e: Event, d: dict[str, Any]) -> None:
        self.pending_restore = None
        self.version = int(d.get("version", 0))
        taken = self.backup_seq.get(d.get("backup_id", ""))
        if taken is None:
            self.applied = {v: a for v, a in self.applied.items() if v <= self.version}
        else:
            self.applied = self.in_force_at(taken, self.version)
        self.fingerprint = d.get("fingerprint", self.fingerprint)

    def _on_step_started(self, e: Event, d: dict[str, Any]) -> None:
        self.attempts.append(
            {
                "run_id": e.run_id,
                "version": e.version or 0,
                "direction": d.get("direction", "up"),
                "name": d.get("name", ""),
                "started_at": e.ts,
                "started_seq": e.seq,
                "outcome": None,
                "finished_at": None,
                "error": None,
            }
        )
        self.open[(e.run_id, e.version or 0)] = len(self.attempts) - 1

    def _on_step_applied(self, e: Event, d: dict[str, Any]) -> None:
        self.close_attempt(e.run_id, e.version, "applied", e.ts, None)
        version = e.version or 0
        self.applied[version] = AppliedMigration(
            version=version,
            name=d.get("name", ""),
            checksum=d.get("checksum", ""),
            applied_at=e.ts,
            run_id=e.run_id,
            fingerprint_before=d.get("fingerprint_before"),
            fingerprint_after=d.get("fingerprint_after"),
            file=d.get("file"),
        )
        self.remember(e.seq, self.applied[version])
        self.version = version
        self.fingerprint = d.get("fingerprint_after", self.fingerprint)

    def _on_step_reverted(self, e: Event, d: dict[str, Any]) -> None:
        self.close_attempt(e.run_id, e.version, "reverted", e.ts, None)
        self.applied.pop(e.version or 0, None)
        self.version = int(d.get("to_version", (e.version or 1) - 1))
        self.fingerprint = d.get("fingerprint_after", self.fingerprint)

    def _on_step_failure(self, e: Event, d: dict[str, Any]) -> None:
        self.end_attempt(e, "failed", d.get("error"))

    def _on_rolled_back(self, e: Event, d: dict[str, Any]) -> None:
        self.close_attempt(e.run_id, e.version, "failed", e.ts, d.get("error"))

    def _on_attempt_interrupted(self, e: Event, d: dict[str, Any]) -> None:
        target = str(d.get("run_id", e.run_id))
        self.end_attempt(e, "interrupted", d.get("error"))
        if d.get("run_interrupted"):
            self.finish_run(target, "interrupted", e.ts, d.get("error"))

    def _on_drift_detected(self, e: Event, d: dict[str, Any]) -> None:
        if d.get("allowed"):
            self.fingerprint = d.get("actual", self.fingerprint)

    def _on_baseline_set(self, e: Event, d: dict[str, Any]) -> None:
        self.version = e.version or 0
        checksums = d.get("checksums", {})
        names = d.get("names", {})
        self.applied = {
            v: AppliedMigration(
                version=v,
                name=names.get(str(v), ""),
                checksum=checksums.get(str(v), ""),
                applied_at=e.ts,
                run_id=e.run_id,
                baselined=True,
            )
            for v in range(1, self.version + 1)
        }
        for record in self.applied.values():
            self.remember(e.seq, record)
        self.fingerprint = d.get("fingerprint", self.fingerprint)

    # -- checkpoints (docs/events.md, "Checkpoints") ------------------------------------------

    def payload(self, through: int) -> dict[str, Any] | None:
        """What a checkpoint after seq `through` holds, or None when the state is not quiet."""
        if self.lock is not None or self.pending_restore is not None:
            return None
        if any(a["outcome"] is None for a in self.attempts):
            return None
        if any(r["outcome"] is None for r in self.runs.values()):
            return None
        applied = {v: attrs.asdict(a) for v, a in sorted(self.applied.items())}
        records: list[list[Any]] = []
        for version, written in sorted(self._kept_history().items()):
            for seq, record in written:
                same = self.applied.get(version) == record
                records.append([seq, version if same else attrs.asdict(record)])
        last_run = list(self.runs.values())[-1] if self.runs else None
        return {
            "format": CHECKPOINT_FORMAT,
            "through": through,
            "version": self.version,
            "fingerprint": self.fingerprint,
            "applied": list(applied.values()),
            "records": records,
            "backups": [
                {**attrs.asdict(b), "seq": self.backup_seq.get(b.id)}
                for b in sorted(self.backups.values(), key=lambda b: (b.created_at, b.id))
            ],
            "last_run": dict(last_run) if last_run is not None else None,
        }

    def _kept_history(self) -> dict[int, list[tuple[int, AppliedMigration]]]:
        """The records a later restore or replay can still need: each version's newest, and
        the newest before each known backup was taken (`in_force_at`)."""
        taken = sorted(self.backup_seq[b] for b in self.backups if b in self.backup_seq)
        kept: dict[int, list[tuple[int, AppliedMigration]]] = {}
        for version, written in self.history.items():
            keep = {len(written) - 1}
            seqs = [seq for seq, _ in written]
            for at in taken:
                index = bisect.bisect_left(seqs, at) - 1
                if index >= 0:
                    keep.add(index)
            kept[version] = [written[i] for i in sorted(keep)]
        return kept

    @classmethod
    def from_payload(cls, event: Event) -> _Fold:
        """The fold a checkpoint event holds; raises JournalCorrupt when it cannot be read."""
        data = event.data
        try:
            if data.get("format") != CHECKPOINT_FORMAT or data.get("through") != event.seq - 1:
                msg = f"format {data.get('format')!r}, through {data.get('through')!r}"
                raise ValueError(msg)
            fold = cls()
            fold.version = int(data["version"])
            fold.fingerprint = data["fingerprint"]
            fold.applied = {int(a["version"]): AppliedMigration(**a) for a in data["applied"]}
            for seq, record in data["records"]:
                value = (
                    fold.applied[record] if isinstance(record, int) else AppliedMigration(**record)
                )
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
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            msg = f"the checkpoint at seq {event.seq} cannot be read ({exc})"
            raise JournalCorrupt(msg, hint="run `schemalog verify`") from exc
        return fold

    def state(self, seq: int, head_hash: str | None) -> State:
        return State(
            seq=seq,
            head_hash=head_hash,
            version=self.version,
            fingerprint=self.fingerprint,
            applied=tuple(self.applied[v] for v in sorted(self.applied)),
            attempts=tuple(Attempt(**a) for a in self.attempts),
            runs=tuple(RunRecord(**r) for r in self.runs.values()),
            lock=self.lock,
            backups=tuple(sorted(self.backups.values(), key=lambda b: (b.created_at, b.id))),
            pending_restore=self.pending_restore,
        )


_HANDLERS = {
    Kind.RUN_STARTED: _Fold._on_run_started,
    Kind.RUN_FINISHED: _Fold._on_run_finished,
    Kind.LOCK_ACQUIRED: _Fold._on_lock_acquired,
    Kind.LOCK_RELEASED: _Fold._on_lock_released,
    Kind.BACKUP_TAKEN: _Fold._on_backup_taken,
    Kind.BACKUP_VERIFIED: _Fold._on_backup_verified,
    Kind.BACKUP_REMOVED: _Fold._on_backup_removed,
    Kind.RESTORE_STARTED: _Fold._on_restore_started,
    Kind.BACKUP_RESTORED: _Fold._on_backup_restored,
    Kind.RESTORE_FAILED: _Fold._on_restore_failed,
    Kind.STEP_STARTED: _Fold._on_step_started,
    Kind.STEP_APPLIED: _Fold._on_step_applied,
    Kind.STEP_REVERTED: _Fold._on_step_reverted,
    Kind.VERIFICATION_FAILED: _Fold._on_step_failure,
    Kind.STEP_FAILED: _Fold._on_step_failure,
    Kind.ROLLED_BACK: _Fold._on_rolled_back,
    Kind.ATTEMPT_INTERRUPTED: _Fold._on_attempt_interrupted,
    Kind.DRIFT_DETECTED: _Fold._on_drift_detected,
    Kind.BASELINE_SET: _Fold._on_baseline_set,
}


def replay(events: Iterable[Event], *, until: int | None = None) -> State:
    """The state after every event with `seq <= until` (all events when `until` is None).

    Pure. When the first event is a checkpoint (any seq), the fold starts from the state it
    holds. Raises JournalChainBroken when the events are not 1, 2, 3, ... (or C, C+1, ...
    after a checkpoint at C) without gap, JournalCorrupt for a checkpoint it cannot read,
    and ValueError for an `until` before the checkpoint the events start with.
    """
    fold = _Fold()
    seq, head_hash = 0, None
    for event in events:
        if seq == 0 and event.seq != 1 and event.kind is Kind.CHECKPOINT:
            if until is not None and until < event.seq:
                msg = f"the state at seq {until} needs the events before the checkpoint"
                raise ValueError(msg)
            fold = _Fold.from_payload(event)
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
    return fold.payload(seq)


def checkpoint_mismatches(
    events: Iterable[Event], *, only: set[int] | None = None
) -> list[tuple[int, str]]:
    """(seq, reason) for every checkpoint among `events` (or those whose seq is in `only`)
    whose payload is not what the events before it give. `events` start at seq 1, or with a
    checkpoint (trusted; the later ones are checked against it). Pure."""
    problems: list[tuple[int, str]] = []
    fold, seq = _Fold(), 0
    for event in events:
        if seq == 0 and event.seq != 1 and event.kind is Kind.CHECKPOINT:
            fold, seq = _Fold.from_payload(event), event.seq
            continue
        if event.kind is Kind.CHECKPOINT and (only is None or event.seq in only):
            expected = fold.payload(seq)
            if expected is None:
                problems.append((event.seq, "written while an attempt or a run was open"))
            elif expected != event.data:
                problems.append((event.seq, "its state is not the replay of the events before it"))
        fold.apply(event)
        seq = event.seq
    return problems


def _fold_all(events: Iterable[Event]) -> tuple[_Fold, int]:
    """The fold after `events` (starting from a checkpoint when they do) and its last seq."""
    fold, seq = _Fold(), 0
    for event in events:
        if seq == 0 and event.seq != 1 and event.kind is Kind.CHECKPOINT:
            fold, seq = _Fold.from_payload(event), event.seq
            continue
        fold.apply(event)
        seq = event.seq
    return fold, seq
