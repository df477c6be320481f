"""The fold behind replay: how each event changes the state (private to `journal.replay`).

`Fold` holds plain mutable accumulators (attrs.evolve per event is the costliest part of a
replay); `state()` builds the frozen `State` once. It has no effects: the same events always
give the same state.
"""

from __future__ import annotations

from typing import Any

import attrs

from schemalog.journal.events import Event, Kind
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

__all__ = ["Fold"]


class Fold:
    """Mutable accumulators of one replay; never escapes `journal.replay`."""

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
        self.repairs: list[ChecksumRepair] = []
        self.keyed_since: int | None = None

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
                "checksum": str(e.data.get("checksum", "")),
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
                "checksum": str(d.get("checksum", "")),
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
            schema_changes=d.get("schema_changes"),
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

    def _on_checksum_accepted(self, e: Event, d: dict[str, Any]) -> None:
        version, old, new = e.version or 0, str(d.get("old", "")), str(d.get("new", ""))
        self.repairs.append(
            ChecksumRepair(e.run_id, version, old, new, str(d.get("reason", "")), e.ts)
        )
        record = self.applied.get(version)
        if record is not None and record.checksum == old:
            self.applied[version] = attrs.evolve(record, checksum=new)
        # A restore brings back the records of its time: they accept the repaired file too.
        if version in self.history:
            self.history[version] = [
                (seq, attrs.evolve(r, checksum=new) if r.checksum == old else r)
                for seq, r in self.history[version]
            ]

    def _on_journal_keyed(self, e: Event, d: dict[str, Any]) -> None:
        if self.keyed_since is None:
            self.keyed_since = e.seq

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
            repairs=tuple(self.repairs),
            keyed_since=self.keyed_since,
        )


_HANDLERS = {
    Kind.RUN_STARTED: Fold._on_run_started,
    Kind.RUN_FINISHED: Fold._on_run_finished,
    Kind.LOCK_ACQUIRED: Fold._on_lock_acquired,
    Kind.LOCK_RELEASED: Fold._on_lock_released,
    Kind.BACKUP_TAKEN: Fold._on_backup_taken,
    Kind.BACKUP_VERIFIED: Fold._on_backup_verified,
    Kind.BACKUP_REMOVED: Fold._on_backup_removed,
    Kind.RESTORE_STARTED: Fold._on_restore_started,
    Kind.BACKUP_RESTORED: Fold._on_backup_restored,
    Kind.RESTORE_FAILED: Fold._on_restore_failed,
    Kind.STEP_STARTED: Fold._on_step_started,
    Kind.STEP_APPLIED: Fold._on_step_applied,
    Kind.STEP_REVERTED: Fold._on_step_reverted,
    Kind.VERIFICATION_FAILED: Fold._on_step_failure,
    Kind.STEP_FAILED: Fold._on_step_failure,
    Kind.ROLLED_BACK: Fold._on_rolled_back,
    Kind.ATTEMPT_INTERRUPTED: Fold._on_attempt_interrupted,
    Kind.DRIFT_DETECTED: Fold._on_drift_detected,
    Kind.BASELINE_SET: Fold._on_baseline_set,
    Kind.CHECKSUM_ACCEPTED: Fold._on_checksum_accepted,
    Kind.JOURNAL_KEYED: Fold._on_journal_keyed,
}
